"""The monitoring agent (``atlas monitor``): it collects system metrics, scrapes and
health-checks every Atlas component, evaluates the AlertRules rendered into
``monitoring.json`` and hands notifications to :mod:`atlas.alerting`.

Pure parts (no I/O): ``samples`` (series and selectors), ``derive`` (rates and
quantiles from two scrapes), ``health.verdict``, ``rules`` (the alert lifecycle),
``units.parse_show``. Seams to the outside, each a small Protocol passed in:
``clock.Clock``, ``http.Http``, ``units.UnitStates``; the SMTP seam lives in
``atlas.alerting.smtp``. Errors are those of :mod:`atlas.errors`.
"""
