"""The monitoring agent (``atlas monitor``): the composition root that puts
:mod:`atlas.monitoring` (collectors and the rule engine) and :mod:`atlas.alerting`
(channels, outbox, delivery) together.

* ``settings`` — the typed ``monitoring.json``: components, intervals, paths, and
  the ``Alerting`` part (rules and channels) read by :mod:`atlas.alerting.settings`;
* ``agent`` — the loop: collect, evaluate, store, notify, publish; SIGHUP reload;
* ``service`` — ``atlas monitor``: the agent wired to this process (environment,
  sd_notify, systemctl, signals);
* ``admin`` — what the operator verbs do with the agent's config and database
  (``atlas alerts list|history|test``, which maintenance file).

Nothing below imports this package: ``monitoring`` knows nothing of alerting or of
the agent, ``alerting`` nothing of the agent.
"""
