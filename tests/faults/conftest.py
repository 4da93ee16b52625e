"""The fault suite's fixtures live in `rebond_faultkit` (tests/scaling uses them too)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rebond_faultkit import folder, hooks, module_broker, own_broker, smtp

__all__ = ["folder", "hooks", "module_broker", "own_broker", "smtp"]
