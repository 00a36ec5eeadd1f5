"""Atlas: a content-ingestion platform (feeds, pages, text → SQLite → HTTP API),
operated from git by the reconciler. This package is the platform (data plane) and
the ``atlas`` command line; see DESIGN.md §1."""

__version__ = "0.1.0"
