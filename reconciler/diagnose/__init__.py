"""``atlas doctor``: what is wrong with this host, and how to fix it.

``gather`` reads the facts through the reconciler's seams (the Runtime, the state
database, git, the file system); ``checks`` judges them, purely, into one ``Finding``
per check (ok, problem or unknown, with the fix for a problem). Facts the platform
owns (the backups folder) come in from the caller, which may read them.
"""
