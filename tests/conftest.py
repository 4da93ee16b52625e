"""Cross-service fixtures: the four services running as real processes on a real broker."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

SERVICES = ("intake", "router", "notifier", "events")


@pytest.fixture(scope="session")
def settings_classes() -> dict[str, type[Any]]:
    """Each service's settings class, by service name (what decides if it starts)."""
    from rebond_events.settings import EventsSettings
    from rebond_intake.settings import IntakeSettings
    from rebond_notifier.settings import NotifierSettings
    from rebond_router.settings import RouterSettings

    return {
        "intake": IntakeSettings, "router": RouterSettings,
        "notifier": NotifierSettings, "events": EventsSettings,
    }  # fmt: skip


@pytest.fixture(scope="session")
def kafkactl() -> ModuleType:
    """deploy/kafka/kafkactl.py, the local Kafka's launcher."""
    from deploy.kafka import kafkactl

    return kafkactl


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


#: Each service's own store, in the test's folder (never the checkout's .run/).
_STORES = {
    "intake": ("DATABASE_URL", "sqlite+aiosqlite:///{dir}/intake.sqlite3"),
    "router": ("DATABASE_URL", "sqlite+aiosqlite:///{dir}/router.sqlite3"),
    "notifier": ("DATABASE_URL", "sqlite+aiosqlite:///{dir}/notifier.sqlite3"),
    "events": ("DATABASE_URL", "sqlite:///{dir}/events.sqlite3"),
}


def start_service(
    name: str,
    bootstrap: str,
    log_dir: Path,
    sasl: dict[str, str] | None = None,
    **env: str | None,
) -> RunningService:
    """Start `python -m rebond_<name>` on a free port, configured by environment only.

    `sasl` (from `kafka_secure.sasl(principal)`) makes it connect through the SASL listener with
    that principal, so the ACLs apply to it as in production.
    """
    port = _free_port()
    prefix = name.upper()
    log = log_dir / f"{name}-{port}.log"
    store_key, store_url = _STORES[name]
    connection = {f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    if sasl is not None:
        connection |= {
            f"{prefix}_KAFKA_SECURITY_PROTOCOL": sasl["security_protocol"],
            f"{prefix}_KAFKA_SASL_MECHANISM": sasl["sasl_mechanism"],
            f"{prefix}_KAFKA_SASL_USERNAME": sasl["sasl_plain_username"],
            f"{prefix}_KAFKA_SASL_PASSWORD": sasl["sasl_plain_password"],
        }
    process = subprocess.Popen(
        [sys.executable, "-m", f"rebond_{name}"],
        env={
            **os.environ,
            **connection,
            f"{prefix}_PORT": str(port),
            f"{prefix}_ENVIRONMENT": "test",
            f"{prefix}_{store_key}": store_url.format(dir=log_dir, port=port),
            **{f"{prefix}_{key.upper()}": value for key, value in env.items() if value is not None},
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


@pytest.fixture(scope="module")
def running_services(_kafka_broker: Any) -> Iterator[dict[str, RunningService]]:
    """intake, router, notifier and events, each its own process, all ready.

    On the secured local broker each connects with its own principal, so the registry's ACLs
    apply to the whole pipeline as they do in production.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="rebond-services-"))
    secure = _kafka_broker.secure
    started = {
        name: start_service(
            name,
            secure.bootstrap if secure else _kafka_broker.bootstrap,
            log_dir,
            sasl=secure.sasl(name) if secure else None,
            rate_limit_per_minute="0" if name == "intake" else None,
        )
        for name in SERVICES
    }
    try:
        for service in started.values():
            wait_ready(service)
        yield started
    finally:
        for service in started.values():
            stop_service(service)


@pytest.fixture
def launch() -> Iterator[Callable[..., RunningService]]:
    """Start services for one test (`launch(name, bootstrap, folder, sasl=..., **env)`), each
    waited for until ready and stopped when the test ends."""
    started: list[RunningService] = []

    def _launch(name: str, bootstrap: str, folder: Path, **kwargs: Any) -> RunningService:
        service = start_service(name, bootstrap, folder, **kwargs)
        started.append(service)
        wait_ready(service)
        return service

    try:
        yield _launch
    finally:
        for service in started:
            stop_service(service)
