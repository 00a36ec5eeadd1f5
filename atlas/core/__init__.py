"""The ingestion worker (``atlas core``): settings from the rendered config, the
content database's schema, scheduling, fetching, parsing, storing, and the
process loop that ties them together with the resilience policies."""
