"""Alert notifications: what is sent (``model``), how it reads (``templates``), where
it goes (``channels``), and how it gets there durably (``outbox``, ``delivery``),
with a record of everything (``store``, ``history``).

Secrets (an SMTP password, a webhook URL) come from environment variables named in
the config; ``redact`` keeps their values out of every message, log line, metric
and database row. Errors are those of :mod:`atlas.errors` (``DeliveryError`` and
its permanent / temporary subclasses).
"""
