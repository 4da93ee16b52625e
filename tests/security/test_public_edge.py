"""Intake and events as their `python -m` entry points serve them (real uvicorn, real sockets):
the client is decided by <PREFIX>_TRUSTED_PROXIES alone, whatever FORWARDED_ALLOW_IPS says, and
the operators' paths answer on the internal port only. The console, staff-facing, the same."""

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from rebond_coordination.__main__ import build_server as console_server
from rebond_coordination.settings import CoordinationSettings
from rebond_events.__main__ import build_server as events_server
from rebond_events.settings import EventsSettings
from rebond_intake.__main__ import build_server as intake_server
from rebond_intake.settings import IntakeSettings
from rebond_testing import free_port
from rebond_testing.pages import form_csrf
from rebond_testing.serving import running

Serving = tuple[uvicorn.Server, list[socket.socket]]


def _intake(tmp: Path, **edge: Any) -> tuple[Serving, str]:
    settings = IntakeSettings(
        environment="test", port=free_port(), data_dir=tmp,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",  # nobody there: 503s, no matter
        **edge,
    )  # fmt: skip
    return intake_server(settings), "/v1/submissions"


def _events(tmp: Path, **edge: Any) -> tuple[Serving, str]:
    settings = EventsSettings(
        environment="test", port=free_port(), database_url=f"sqlite:///{tmp / 'events.db'}",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        **edge,
    )  # fmt: skip
    return events_server(settings), "/v1/events"


SERVICES: dict[str, Callable[..., tuple[Serving, str]]] = {"intake": _intake, "events": _events}


@contextmanager
def served(serving: Serving) -> Iterator[str]:
    """The server running in a thread; its public base URL."""
    server, sockets = serving
    with running(server, sockets):
        yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}"


def _posts(url: str, forwarded: list[str]) -> list[int]:
    """One POST (an empty JSON object: refused as invalid, but counted) per X-Forwarded-For."""
    with httpx.Client() as client:
        return [
            client.post(url, json={}, headers={"x-forwarded-for": hop}).status_code
            for hop in forwarded
        ]


@pytest.mark.parametrize("service", SERVICES)
def test_uvicorn_cannot_be_told_to_believe_a_forged_header(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With FORWARDED_ALLOW_IPS=* and no trusted proxy, made-up X-Forwarded-For addresses from
    one connection still share one bucket: the third request is refused."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    serving, path = SERVICES[service](tmp_path, rate_limit_per_minute=1, rate_limit_burst=2)
    with served(serving) as base:
        codes = _posts(base + path, ["198.51.100.1", "198.51.100.2", "198.51.100.3"])
    assert codes[:2] != [429, 429] and codes[2] == 429, codes


@pytest.mark.parametrize("service", SERVICES)
def test_behind_a_trusted_proxy_each_client_has_its_bucket(service: str, tmp_path: Path) -> None:
    """With the proxy trusted (<PREFIX>_TRUSTED_PROXIES), each forwarded client is counted alone."""
    serving, path = SERVICES[service](
        tmp_path, rate_limit_per_minute=1, rate_limit_burst=2, trusted_proxies="127.0.0.0/8"
    )
    with served(serving) as base:
        first = _posts(base + path, ["198.51.100.1"] * 3)
        second = _posts(base + path, ["198.51.100.2"] * 3)
    assert first[2] == second[2] == 429 and 429 not in first[:2] + second[:2], (first, second)


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_answer_on_the_internal_port_only(service: str, tmp_path: Path) -> None:
    """With <PREFIX>_INTERNAL_PORT, /metrics and /openapi.json are served there and not on the
    public port; the public pages stay where they were."""
    internal = free_port()
    serving, _ = SERVICES[service](tmp_path, internal_port=internal)
    with served(serving) as base, httpx.Client() as client:
        assert client.get(f"{base}/metrics").status_code == 404
        assert client.get(f"{base}/openapi.json").status_code == 404
        assert client.get(f"{base}/healthz").status_code == 200
        assert client.get(f"http://127.0.0.1:{internal}/metrics").status_code == 200
        assert client.get(f"http://127.0.0.1:{internal}/openapi.json").status_code == 200
        assert "server" not in client.get(f"{base}/healthz").headers


def test_the_consoles_metrics_answer_on_its_internal_port_and_uvicorn_believes_no_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console as `python -m rebond_coordination` serves it: `/metrics` on
    COORDINATION_INTERNAL_PORT only (not to whoever its authenticating proxy lets in), and with
    FORWARDED_ALLOW_IPS=* and no trusted proxy, made-up X-Forwarded-For addresses from one
    connection share one sign-in bucket: the second attempt is refused."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    internal = free_port()
    settings = CoordinationSettings(
        environment="test", port=free_port(), internal_port=internal,
        database_url=f"sqlite:///{tmp_path / 'console.db'}",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", sign_in_per_minute=1,
        sign_in_burst=1,
    )  # fmt: skip
    with served(console_server(settings)) as base, httpx.Client() as client:
        assert client.get(f"{base}/metrics").status_code == 404
        assert client.get(f"http://127.0.0.1:{internal}/metrics").status_code == 200
        assert client.get(f"{base}/healthz").status_code == 200
        statuses = []
        for hop in ["198.51.100.1", "198.51.100.2"]:
            csrf = form_csrf(client.get(f"{base}/connexion").text)
            reply = client.post(
                f"{base}/connexion",
                data={"email": "x@rebond.test", "password": "p", "csrf": csrf},
                headers={"x-forwarded-for": hop},
            )
            statuses.append(reply.status_code)
    assert statuses == [401, 429], statuses
