"""Cross-service fixtures: the four services running as real processes on a real broker
(`rebond_testing.services`, whose names are imported from here by the fault and cluster tests
too), the services' settings classes, and the local Kafka's launcher."""

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rebond_testing.services import (
    SERVICES,
    RunningService,
    start_service,
    stop_service,
    wait_ready,
)

__all__ = ["SERVICES", "RunningService", "start_service", "stop_service", "wait_ready"]


@pytest.fixture(scope="session")
def settings_classes() -> dict[str, type[Any]]:
    """Each service's settings class, by service name (what decides if it starts)."""
    from rebond_coordination.settings import CoordinationSettings
    from rebond_events.settings import EventsSettings
    from rebond_intake.settings import IntakeSettings
    from rebond_notifier.settings import NotifierSettings
    from rebond_router.settings import RouterSettings

    return {
        "intake": IntakeSettings, "router": RouterSettings,
        "notifier": NotifierSettings, "events": EventsSettings,
        "coordination": CoordinationSettings,
    }  # fmt: skip


@pytest.fixture(scope="session")
def kafkactl() -> ModuleType:
    """deploy/kafka/kafkactl.py, the local Kafka's launcher."""
    from deploy.kafka import kafkactl

    return kafkactl


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
