"""``atlas reconcile --watch``: the HTTP endpoint (``server``: /metrics, /healthz and the
signed git webhook), the refs watcher of a local repository (``refs``), and the daemon
that wires them around the reconcile loop (``daemon``)."""
