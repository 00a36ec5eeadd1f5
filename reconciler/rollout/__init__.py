"""Progressive delivery: the blue-green rollout engine (``bluegreen``), the HTTP seam it
measures replicas through (``replicas``) and the rollout record in the state database
(``record``). Judging measurements is pure and lives in ``reconciler.analysis``."""
