"""The scaling proof reuses the fault suite's helpers (tests/faults/rebond_faultkit.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))

from rebond_faultkit import folder  # type: ignore[import-not-found]

__all__ = ["folder"]
