"""The fault suite's fixtures live in `rebond_faultkit` (tests/scaling and tests/cluster use them too)."""

from tests.faults.rebond_faultkit import folder, hooks, module_broker, own_broker, smtp

__all__ = ["folder", "hooks", "module_broker", "own_broker", "smtp"]
