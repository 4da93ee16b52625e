"""Operators' paths off the public port (`rebond_http.private`) and HSTS (`guard`), on a real
uvicorn server listening on two real sockets."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from rebond_http.guard import SecurityHeaders
from rebond_http.private import PrivateRoutes, server
from rebond_testing import free_port


def _app(*, internal_port: int | None, public: bool, hsts_max_age_s: int = 0) -> Starlette:
    async def ok(_request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route(p, ok) for p in ("/metrics", "/openapi.json", "/page")])
    app.add_middleware(PrivateRoutes, internal_port=internal_port, public=public)
    app.add_middleware(SecurityHeaders, hsts_max_age_s=hsts_max_age_s)
    return app


@asynccontextmanager
async def serving(
    *, internal: bool, public: bool = False, hsts_max_age_s: int = 0
) -> AsyncIterator[tuple[str, str | None]]:
    """The app on a public port (and an internal one): their base URLs."""
    port, internal_port = free_port(), (free_port() if internal else None)
    app = _app(internal_port=internal_port, public=public, hsts_max_age_s=hsts_max_age_s)
    uvicorn_server, sockets = server(
        app, host="127.0.0.1", port=port, internal_port=internal_port, log_config=None,
        lifespan="off",
    )  # fmt: skip
    task = asyncio.create_task(uvicorn_server.serve(sockets=sockets))
    try:
        async with asyncio.timeout(10):
            while True:  # uvicorn has no event for it
                if uvicorn_server.started:
                    break
                await asyncio.sleep(0.02)
        yield (
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{internal_port}" if internal_port else None,
        )
    finally:
        uvicorn_server.should_exit = True
        await task


async def test_with_an_internal_port_metrics_and_openapi_answer_only_there() -> None:
    """`/metrics` and `/openapi.json` are 404 on the public port, 200 on the internal one; a
    Host header naming the internal port does not open them on the public socket."""
    async with serving(internal=True) as (public, internal), httpx.AsyncClient() as client:
        assert internal is not None
        for path in ("/metrics", "/openapi.json"):
            assert (await client.get(public + path)).status_code == 404
            assert (await client.get(internal + path)).status_code == 200
        forged = {"host": internal.removeprefix("http://")}
        assert (await client.get(public + "/metrics", headers=forged)).status_code == 404
        assert (await client.get(public + "/page")).status_code == 200


@pytest.mark.parametrize(("public", "status"), [(False, 404), (True, 200)])
async def test_without_an_internal_port_they_answer_only_when_public(
    public: bool, status: int
) -> None:
    """No internal port: the operators' paths answer on the one port only outside production."""
    async with serving(internal=False, public=public) as (url, _), httpx.AsyncClient() as client:
        assert (await client.get(url + "/metrics")).status_code == status
        assert (await client.get(url + "/page")).status_code == 200


@pytest.mark.parametrize(("max_age", "expected"), [(0, None), (31536000, "max-age=31536000")])
async def test_hsts_only_when_set(max_age: int, expected: str | None) -> None:
    """`Strict-Transport-Security` goes out only when configured, beside the other headers,
    also on a refused private path."""
    async with (
        serving(internal=False, hsts_max_age_s=max_age) as (url, _),
        httpx.AsyncClient() as client,
    ):
        for path in ("/page", "/metrics"):
            reply = await client.get(url + path)
            assert reply.headers.get("strict-transport-security") == expected
            assert reply.headers["referrer-policy"] == "no-referrer"
            assert reply.headers["x-content-type-options"] == "nosniff"
