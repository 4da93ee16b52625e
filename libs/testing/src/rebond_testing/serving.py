"""An ASGI app served over real HTTP for a test: uvicorn on a free loopback port, in a thread
(or a service's own server, as its entry point builds it); waiting until a service in the
test's own process is ready, and what its probes say once its store is lost."""

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from rebond_testing.ports import LOOPBACK, free_port
from rebond_testing.waiting import until_async


@contextmanager
def served(app: Any, timeout_s: float = 30.0, port: int | None = None) -> Iterator[str]:
    """`app` listening on `port` (a free one when None) until the block ends; yields its base
    URL. Its lifespan runs as a real server runs it (started before the first request, ended at
    exit). An app that must know its own address before it is built (a public URL in its
    settings) is given the port it was built for."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=LOOPBACK, port=port, log_config=None, access_log=False)
    )
    with running(server, timeout_s=timeout_s):
        yield f"http://{LOOPBACK}:{port}"


@contextmanager
def running(
    server: uvicorn.Server, sockets: list[socket.socket] | None = None, timeout_s: float = 30.0
) -> Iterator[None]:
    """`server` serving (on `sockets`, those a service's `build_server` bound, when given) in a
    thread, from when it has started until the block ends."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it served (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {timeout_s} s")
            time.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)


async def ready_within(client: httpx.AsyncClient, within_s: float = 30.0) -> bool:
    """Whether the service `client` talks to (an app in this process, through
    `httpx.ASGITransport`) answers `/readyz` with 200 within `within_s`: it has connected
    what it needs (Kafka, its store). The caller asserts, naming the service."""

    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    return await until_async(ready, within_s, every_s=0.2)


async def store_loss_seen(
    client: httpx.AsyncClient, lose: Callable[[], Awaitable[None]], kafka: str
) -> None:
    """Assert what a ready service's probes say around `lose()` (its store closed): `/readyz`
    200 naming both lines before, 503 naming the store after, `/healthz` alive throughout.
    `kafka` is the Kafka line's answer while Kafka is there ("connected", "not used")."""
    ready = await client.get("/readyz")
    await lose()
    gone = await client.get("/readyz")
    alive = await client.get("/healthz")
    assert (ready.status_code, ready.json()) == (200, {"kafka": kafka, "store": "ready"})
    assert (gone.status_code, gone.json()) == (503, {"kafka": kafka, "store": "unreachable"})
    assert alive.json() == {"status": "alive"}
