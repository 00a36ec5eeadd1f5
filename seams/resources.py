"""Where the data files Atlas ships beside its code are: schemas, unit and message
templates, the example manifests. The one place that knows; everything else asks here."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = PROJECT_ROOT / "schemas"
MANIFEST_SCHEMA_DIR = SCHEMA_DIR / "v1"
CONFIG_SCHEMA_DIR = SCHEMA_DIR / "config"
SYSTEMD_TEMPLATE_DIR = PROJECT_ROOT / "systemd"
MESSAGE_TEMPLATE_DIR = PROJECT_ROOT / "templates"
ALERT_TEMPLATE_DIR = MESSAGE_TEMPLATE_DIR / "alerts"
EXAMPLE_MANIFESTS = PROJECT_ROOT / "manifests"
