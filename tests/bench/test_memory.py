"""The memory breakdown puts each import's memory on its own step.

The report says where a service's memory goes from the growth of the resident set at each
import of a fresh interpreter; a module that holds 40 MB must show as 40 MB on its step, not
on another, nor vanish.
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.memory import LIBRARIES

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "memory.py"


def test_the_ladder_puts_a_module_s_memory_on_its_own_step(tmp_path: Path) -> None:
    """A module holding 40 MB grows the last step by at least that; the libraries come first."""
    (tmp_path / "heavy_service.py").write_text('HELD = b"x" * (40 << 20)\n')
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "heavy_service"],
        cwd=SCRIPT.parent, env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    steps = json.loads(done.stdout.splitlines()[-1])
    names = [step["step"] for step in steps]
    assert names[0] == "interpreter" and names[-1] == "heavy_service"
    assert names[1:-1] == [m for m in LIBRARIES if m in names]  # in order, none skipped here
    rss = [step["rss_mb"] for step in steps]
    assert rss[-1] - rss[-2] >= 39
    assert all(b >= a - 1 for a, b in itertools.pairwise(rss))  # imports only add
