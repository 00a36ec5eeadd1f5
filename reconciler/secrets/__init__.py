"""Encrypted secrets: Fernet values and key files (``keys``), the Secrets document as a
file to edit (``document``), what the ``atlas secrets`` commands do (``ops``), and how
the build stage opens values (``sources``). No value ever leaves ``SecretValue`` but
through ``reveal()``."""
