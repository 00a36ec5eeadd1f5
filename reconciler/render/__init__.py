"""Render: the desired state → the files and units a host should have. Pure.

``desired`` holds what rendering produces (files, directories, unit specs); the
``components`` table says, per component, what its config, unit and env file hold.
"""
