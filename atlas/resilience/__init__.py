"""Resilience for talking to other hosts: an adaptive per-host rate limit
(``ratelimit``), a per-host circuit breaker (``breaker``), retries of temporary
failures with capped exponential backoff and full jitter (``retry``), and the
dead-letter queue of what still fails (``dlq``). Time comes from a
``seams.clock.Clock`` passed in, so every policy is testable without sleeping."""
