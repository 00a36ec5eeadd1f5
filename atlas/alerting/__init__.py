"""Alert notifications: what is sent, how it reads, where it goes, and how it gets
there durably, with a record of everything. Used by :mod:`atlas.agent`; built on
:mod:`atlas.monitoring` (the engine's ``Rule`` and ``Group``), never the reverse.

* ``model`` — the channel-independent ``Notification`` (and the Alertmanager
  webhook body); ``templates`` — Jinja2 for annotations and messages;
* ``channels`` — email, webhook and Slack: each module owns its settings
  dataclass, how its config block is read, and its ``Channel``; the package holds
  what they share (``Channel``, ``RedactingChannel``, ``secret``);
* ``settings`` — ``ChannelSettings`` and ``Alerting`` (rules and channels, the
  part of the config re-read on SIGHUP), read by ``alerting_from_dict``;
* ``routing`` — which notifications an evaluation's groups make, per channel;
* ``outbox`` — durable, retried notifications; ``delivery`` — ``build_channel``
  and the worker draining the outbox; ``store`` — the agent's ``monitoring.db``;
  ``history`` — its read-only views; ``smtp`` — the SMTP seam.

Secrets (an SMTP password, a webhook URL) come from environment variables named in
the config; ``redact`` keeps their values out of every message, log line, metric
and database row. Errors are those of :mod:`atlas.errors` (``DeliveryError`` and
its permanent / temporary subclasses).
"""
