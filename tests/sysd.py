"""The private systemd user manager used by the tests lives in atlas.usermanager."""

from atlas.usermanager import ManagerUnavailable, PrivateManager, why_unavailable

__all__ = ["ManagerUnavailable", "PrivateManager", "why_unavailable"]
