"""The notifier as `python -m rebond_notifier` serves it (`build_server`: real uvicorn, real
sockets): an answer link's token, in the path, is written to no access log."""

import logging
from pathlib import Path

import httpx
import pytest

from rebond_notifier.__main__ import build_server
from rebond_notifier.settings import NotifierSettings
from rebond_testing import free_port
from rebond_testing.serving import running

TOKEN = "a-token-that-must-stay-out-of-the-logs"
#: The test's own client, which logs its requests.
CLIENT_LOGGERS = {"httpx", "httpcore"}


def test_an_answer_links_token_goes_to_no_access_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A request for an answer page (here a refused token) and a probe are served, and no
    record the server logged (uvicorn's own lines are there) holds their paths."""
    settings = NotifierSettings(
        environment="test", port=free_port(), internal_port=free_port(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'log.sqlite3'}",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",  # nobody there: the pages serve
    )  # fmt: skip
    server, sockets = build_server(settings)
    assert [s.getsockname()[1] for s in sockets] == [settings.port, settings.internal_port]
    caplog.set_level(logging.DEBUG)
    with running(server, sockets), httpx.Client() as client:
        base = f"http://127.0.0.1:{settings.port}"
        page = client.get(f"{base}/reponse/{TOKEN}")
        alive = client.get(f"{base}/healthz")
    assert page.status_code < 500 and alive.status_code == 200
    served = [r for r in caplog.records if r.name.partition(".")[0] not in CLIENT_LOGGERS]
    assert served and not [
        r for r in served if TOKEN in r.getMessage() or "/healthz" in r.getMessage()
    ]
