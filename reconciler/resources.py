"""Locations of the files Atlas ships beside its code: schemas/, systemd/, templates/."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = PROJECT_ROOT / "schemas"
SYSTEMD_TEMPLATE_DIR = PROJECT_ROOT / "systemd"
MESSAGE_TEMPLATE_DIR = PROJECT_ROOT / "templates"
EXAMPLE_MANIFESTS = PROJECT_ROOT / "manifests"
