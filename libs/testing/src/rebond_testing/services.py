"""Rebond's services as real processes (`python -m rebond_<name>`), configured by environment
only, as an operator runs them: for the end-to-end, fault and scaling tests."""

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import httpx
import yaml

from rebond_testing.ports import LOOPBACK, free_port
from rebond_testing.waiting import until

SERVICES = ("intake", "router", "notifier", "events")

#: Each service's own store, in the test's folder (never the checkout's .run/).
STORES = {
    "intake": ("DATABASE_URL", "sqlite+aiosqlite:///{dir}/intake.sqlite3"),
    "router": ("DATABASE_URL", "sqlite+aiosqlite:///{dir}/router.sqlite3"),
    "notifier": ("DATABASE_URL", "sqlite+aiosqlite:///{dir}/notifier.sqlite3"),
    "events": ("DATABASE_URL", "sqlite:///{dir}/events.sqlite3"),
    "coordination": ("DATABASE_URL", "sqlite:///{dir}/coordination.sqlite3"),
}


@dataclass
class RunningService:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


#: Each association's weekly capacity for the routers tests start (hard, as in production). A
#: test router reads `questionnaires.completed` from its beginning, so it decides every
#: questionnaire earlier tests left on the session's broker, and fault tests post thousands in
#: minutes: production's capacities (12 a week for 60 000 rebonds) would be full at once and
#: every case queued. Hard capacity itself is the router's own tests' business.
TEST_WEEKLY_CAPACITY = 100_000


def roomy_directory(folder: Path) -> Path:
    """The router's production directory with `TEST_WEEKLY_CAPACITY` for every association,
    and without antennas, written in `folder`. The pipeline's tests post the example
    questionnaire (Gironde, 33) and count each association's e-mails at its own address; the
    shipped example antenna (60 000 rebonds' Gironde) would take them. Antennas are the
    router's, notifier's and console's own tests' business."""
    directory = yaml.safe_load((files("rebond_router") / "directory.yaml").read_text())
    for association in directory["associations"]:
        association["weekly_capacity"] = TEST_WEEKLY_CAPACITY
        association.pop("antennas", None)
    path = folder / "directory.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True, sort_keys=False))
    return path


def start_service(
    name: str,
    bootstrap: str,
    log_dir: Path,
    sasl: Mapping[str, str] | None = None,
    **env: str | None,
) -> RunningService:
    """Start `python -m rebond_<name>` on a free port; `env` gives its settings by name
    (`group_id="…"` sets `<NAME>_GROUP_ID`), None leaving one at its default. A router gets
    `roomy_directory` unless `directory_path` is given.

    `sasl` (from `kafka_secure.sasl(principal)`) makes it connect through the SASL listener with
    that principal, so the ACLs apply to it as in production.
    """
    port = free_port()
    prefix = name.upper()
    if name == "router" and "directory_path" not in env:
        env = {**env, "directory_path": str(roomy_directory(log_dir))}
    log = log_dir / f"{name}-{port}.log"
    store_key, store_url = STORES[name]
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
    return RunningService(name, f"http://{LOOPBACK}:{port}", process, log)


def wait_ready(service: RunningService, timeout_s: float = 60.0) -> None:
    """Return once `service` answers `/readyz` with 200; raise with its log's end if it exits
    or is not ready within `timeout_s`."""

    def ready() -> bool:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited: {service.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if not until(ready, timeout_s):
        raise TimeoutError(
            f"{service.name} not ready in {timeout_s}s: {service.log.read_text()[-2000:]}"
        )


def stop_service(service: RunningService) -> None:
    """SIGTERM (a graceful stop), SIGKILL after 20 s."""
    service.process.terminate()
    try:
        service.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@contextmanager
def running(
    bootstrap: str,
    folder: Path,
    sasl: Mapping[str, Mapping[str, str]] | None = None,
    settings: Mapping[str, Mapping[str, str]] | None = None,
    names: tuple[str, ...] = SERVICES,
) -> Iterator[dict[str, RunningService]]:
    """`names` started together (each under its principal's `sasl[name]` when given, with
    `settings[name]`), waited for in turn (they start meanwhile), stopped at the end."""
    started: dict[str, RunningService] = {}
    try:
        for name in names:
            started[name] = start_service(
                name,
                bootstrap,
                folder,
                sasl=sasl[name] if sasl is not None else None,
                **(settings or {}).get(name, {}),
            )
        for service in started.values():
            wait_ready(service)
        yield started
    finally:
        for service in started.values():
            stop_service(service)
