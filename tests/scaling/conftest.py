"""The scaling proof reuses the fault suite's helpers (tests/faults/rebond_faultkit.py)."""

from tests.faults.rebond_faultkit import folder

__all__ = ["folder"]
