"""Background jobs (``atlas services run``, started by atlas-services.timer):
dead-letter retries, online backups of the content database, database upkeep."""
