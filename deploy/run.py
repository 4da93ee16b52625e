"""`make run`: start Kafka and the four services locally; Ctrl-C stops everything it started.

Logs go to .run/logs/<service>.log (JSON lines); Kafka's to .run/kafka/kafka.log.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / ".run"
SERVICES = {"intake": 8000, "router": 8001, "notifier": 8002, "events": 8003}


def _load_kafkactl():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "kafkactl", REPO / "deploy" / "kafka" / "kafkactl.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def main() -> int:
    kafkactl = _load_kafkactl()
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    data_dir = RUN / "kafka"
    started_kafka = kafkactl.start(
        port, port + 1, data_dir, int(os.environ.get("KAFKA_PARTITIONS", "3"))
    )
    logs = RUN / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name, service_port in SERVICES.items():
            prefix = name.upper()
            env = {
                f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
                f"{prefix}_PORT": str(service_port),
            }
            children[name] = subprocess.Popen(
                [sys.executable, "-m", f"rebond_{name}"],
                env={**os.environ, **env},
                stdout=(logs / f"{name}.log").open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop them in order
            )
        deadline = time.monotonic() + 60
        while not stopping and time.monotonic() < deadline:
            if all(_ready(p) for p in SERVICES.values()):
                break
            time.sleep(0.3)
        for name, service_port in SERVICES.items():
            state = "ready" if _ready(service_port) else "NOT READY"
            print(
                f"  {name:9} http://127.0.0.1:{service_port}  {state}  logs: {logs / (name + '.log')}"
            )
        print(
            "\nRebond runs. Intake listens on http://127.0.0.1:8000 — try:\n"
            "  curl -X POST http://127.0.0.1:8000/v1/submissions -H 'content-type: application/json' "
            "-d @contracts/examples/questionnaire.v1.json\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(
                        f"{name} exited with code {child.returncode}; see {logs / (name + '.log')}"
                    )
                    stopping = True
            time.sleep(0.5)
    finally:
        print("\nStopping…", flush=True)
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if started_kafka:
            kafkactl.stop(data_dir)
        print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
