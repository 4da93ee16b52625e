"""Cross-service fixtures: the four services running as real processes on a real broker."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SERVICES = ("intake", "router", "notifier", "events")


@dataclass
class RunningService:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(name: str, bootstrap: str, log_dir: Path, **env: str) -> RunningService:
    """Start `python -m rebond_<name>` on a free port, configured by environment only."""
    port = _free_port()
    prefix = name.upper()
    log = log_dir / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", f"rebond_{name}"],
        env={
            **os.environ,
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            f"{prefix}_PORT": str(port),
            f"{prefix}_ENVIRONMENT": "test",
            **{f"{prefix}_{key.upper()}": value for key, value in env.items()},
        },
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return RunningService(name, f"http://127.0.0.1:{port}", process, log)


def wait_ready(service: RunningService, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited: {service.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(
        f"{service.name} not ready in {timeout_s}s: {service.log.read_text()[-2000:]}"
    )


def stop_service(service: RunningService) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@pytest.fixture(scope="session")
def running_services(kafka_bootstrap: str) -> Iterator[dict[str, RunningService]]:
    """intake, router, notifier and events, each its own process, all ready."""
    log_dir = Path(tempfile.mkdtemp(prefix="rebond-services-"))
    started = {name: start_service(name, kafka_bootstrap, log_dir) for name in SERVICES}
    try:
        for service in started.values():
            wait_ready(service)
        yield started
    finally:
        for service in started.values():
            stop_service(service)
