"""Where the data files Atlas ships beside its code are: schemas, unit and message
templates, the example manifests, the monitoring rules and dashboards. The one place
that knows; everything else asks here.

An installed wheel carries them in the package, as ``seams/_data/<folder>`` (setup.py
puts them there), found through ``importlib.resources``; a checkout, or an editable
install of one, reads the top-level folders of the repository where they are. Wheels
are installed unzipped, so each is a real folder (a ``Path``: Jinja2's loaders and the
schema registry read files).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# the folder that holds the packages: a checkout, or an installation's site-packages
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _data_root() -> Path:
    packaged = Path(str(files("seams").joinpath("_data")))
    if packaged.is_dir():
        return packaged
    checkout = PROJECT_ROOT
    if (checkout / "schemas").is_dir():
        return checkout
    raise RuntimeError(
        f"Atlas's data files are missing: neither {packaged} (an installed wheel) nor "
        f"{checkout}/schemas (a checkout) exists; reinstall Atlas from its wheel"
    )


DATA_ROOT = _data_root()
SCHEMA_DIR = DATA_ROOT / "schemas"
MANIFEST_SCHEMA_DIR = SCHEMA_DIR / "v1"
CONFIG_SCHEMA_DIR = SCHEMA_DIR / "config"
SYSTEMD_TEMPLATE_DIR = DATA_ROOT / "systemd"
MESSAGE_TEMPLATE_DIR = DATA_ROOT / "templates"
ALERT_TEMPLATE_DIR = MESSAGE_TEMPLATE_DIR / "alerts"
EXAMPLE_MANIFESTS = DATA_ROOT / "manifests"
# Prometheus rules and Grafana dashboards for operators to load (monitoring/README.md)
MONITORING_DIR = DATA_ROOT / "monitoring"
