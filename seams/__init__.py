"""What both halves of Atlas use to touch the host, shared so that each exists once.

The reconciler (control plane) and the platform (data plane) never import each
other's internals; both import this package, which imports neither:

* ``clock``      wall time and monotonic time, named apart, and sleeping
* ``systemd``    ``systemctl`` invocation and the one ``systemctl show`` parser
* ``notify``     the sd_notify protocol (READY=1, WATCHDOG=1, STATUS=…)
* ``httpserver`` the small HTTP server behind /metrics, /healthz and the git webhook
* ``fsio``       files replaced atomically (temp file, fsync, rename, fsync folder)
* ``resources``  where the data files Atlas ships (schemas, templates) are
* ``testing``    in-memory doubles of these seams for fast tests
"""
