"""Atlas reconciler: the control plane that turns a git repository of manifests
into running systemd services.

It never imports the ``atlas`` platform package (an import-linter contract in
pyproject.toml enforces that). The stages of one reconcile live in modules named
for them: source → load → validate → build → render → observe → plan → apply →
verify → record. See DESIGN.md §2.
"""
