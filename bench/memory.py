"""Where a service's memory goes: what its imports take, before it serves anything.

    python memory.py rebond_notifier.app      (prints one JSON line)

A fresh interpreter imports, one at a time, the libraries the services are built on, then the
contracts (every payload model: pydantic builds each one's validator and serializer when the
class is made), then the service's own modules (its `app`, the composition root: what
`python -m rebond_<name>` imports before it serves, as its `__main__` imports nothing of the
service before the command line is read), and reads its resident set (/proc/self/status)
after each step. Each step's growth is what that import adds beyond what the steps before it
already brought in, so the order matters for shared dependencies (pydantic is counted once,
under pydantic). The bench sets these beside the same service running: started and idle, then
after the soak and the preload, so the rest of its memory is what starting (connections,
threads, app objects) and serving (caches, arenas, stores) add.
"""

import importlib
import json
import subprocess
import sys
from pathlib import Path

from bench.procfs import memory

#: In the order imported; one missing is skipped (a service need not use every one).
LIBRARIES = (
    "pydantic",
    "sqlalchemy",
    "starlette",
    "fastapi",
    "uvicorn",
    "aiokafka",
    "faststream.kafka",
    "structlog",
    "prometheus_client",
    "opentelemetry.sdk.trace",
    "rebond_contracts.topics",
)


def ladder(service_module: str) -> list[dict[str, float | str]]:
    """In this process: RSS (MB) at start, then after each of LIBRARIES and `service_module`."""
    steps: list[dict[str, float | str]] = [{"step": "interpreter", "rss_mb": memory_mb()}]
    for module in (*LIBRARIES, service_module):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        steps.append({"step": module, "rss_mb": memory_mb()})
    return steps


def memory_mb() -> float:
    return memory(int(Path("/proc/self").resolve().name)).rss_mb


def import_ladder(service: str) -> list[dict[str, float | str]]:
    """`ladder` of `rebond_<service>.app`, in a fresh interpreter of its own."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), f"rebond_{service}.app"],
        cwd=Path(__file__).parent, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    steps: list[dict[str, float | str]] = json.loads(done.stdout.splitlines()[-1])
    return steps


if __name__ == "__main__":
    print(json.dumps(ladder(sys.argv[1])))
