"""An app served over real HTTP for a test: on a free port, or on the one it was built for."""

import urllib.request
from typing import Any

import pytest

from rebond_testing.ports import LOOPBACK, free_port
from rebond_testing.serving import served


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering every request `ok`, its lifespan acknowledged."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return bytes(reply.read())


def test_an_app_is_served_on_a_free_port_until_the_block_ends() -> None:
    with served(_ok) as url:
        assert url.startswith(f"http://{LOOPBACK}:")
        assert _get(url) == b"ok"
    with pytest.raises(OSError):  # refused: nothing listens there any more
        _get(url)


def test_an_app_that_knows_its_address_is_served_on_the_port_it_was_built_for() -> None:
    port = free_port()
    with served(_ok, port=port) as url:
        assert url == f"http://{LOOPBACK}:{port}"
        assert _get(url) == b"ok"
