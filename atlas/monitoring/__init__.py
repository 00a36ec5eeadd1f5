"""Watching the platform: collectors and the alert rule engine, with no I/O of
their own beyond the seams passed in. The agent that runs them (``atlas monitor``)
is :mod:`atlas.agent`; what it sends, and how, is :mod:`atlas.alerting`. This
package imports neither.

* What to watch: ``component.Component`` (a component's units and endpoints).
* Collectors: ``collect`` (one collection: the rest at once, on a small pool),
  ``collect_system`` (host metrics via psutil), ``health`` (units and the health
  URL), ``scrape`` (a component's ``/metrics``), ``units`` (systemd, through
  ``seams.systemd``), ``http`` (the ``Http`` seam, on httpx).
* Pure parts: ``samples`` (series and selectors), ``derive`` (rates and quantiles
  from two scrapes), ``health.verdict``, ``rules`` (``Rule`` and the alert
  lifecycle).
* Out: ``exporter`` (the agent's own metric families), ``server`` (its
  ``/metrics`` and ``/healthz`` routes on ``seams.httpserver``). Env files: ``seams.envfile``.

Seams to the outside, each passed in: ``seams.clock.Clock``, ``http.Http``,
``units.UnitStates``. Errors are those of :mod:`atlas.errors`.
"""
