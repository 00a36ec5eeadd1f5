"""Atlas: a content-ingestion platform (feeds, pages, text → SQLite → HTTP API),
operated from git by the reconciler. This package is the platform (data plane) and
the ``atlas`` command line; see DESIGN.md §1.

Layers, top to bottom; a package imports only from rows below its own (and from
``seams``, which both halves share, and the reconciler only in ``cli``/``commands``)::

    cli | demo
    commands                      argument parsing and printing
    agent                         the monitoring agent's composition root
    alerting                      channels, outbox, templates, delivery, store
    monitoring | api | services   collectors and rules; the HTTP API; backups, upkeep
    core                          ingestion
    resilience                    rate limits, breakers, retries, dead letters
    db | config | maintenance | httpmetrics | logs | usermanager
    errors
"""

__version__ = "0.1.0"
