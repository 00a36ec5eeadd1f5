"""The reconciler's seams to the host: where things live (``paths``), one reconcile at a
time (``lock``), the service manager (``runtime``), HTTP health probes (``probe``), how
a unit file change is classified (``unitfile``), and in-memory doubles for fast tests
(``testing``, never used by Atlas itself)."""
