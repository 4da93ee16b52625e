"""Operators' paths kept off the public port, for any service: `/metrics` (traffic, error rates,
consumer lag) and the API description (`/openapi.json`, and `/docs`, `/redoc` where a service
has them). Neither is for the people the service's pages are for.

* With an internal port (`<PREFIX>_INTERNAL_PORT`) they answer only on it: `serve` makes the
  same app listen on both sockets (one process, one lifespan, one metrics registry).
* Without one they answer on the public port in development and test, and nowhere in
  production (`public=False`).

The port a request came in on is the local address of the socket that accepted it
(`scope["server"]`, which uvicorn reads from the socket), so no request header can claim it.
"""

import json
import socket
from typing import Any, Protocol

import uvicorn

from rebond_http.guard import ASGIApp, Receive, Scope, Send

PRIVATE_PATHS = frozenset({"/metrics", "/openapi.json", "/docs", "/redoc"})
_NOT_FOUND = json.dumps({"error": "not_found", "message": "Introuvable. (Not found.)"}).encode()


class PrivateRoutes:
    """`404` for the private paths unless the request came in on the internal port (or, when
    there is none, unless `public`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        internal_port: int | None,
        public: bool,
        paths: frozenset[str] = PRIVATE_PATHS,
    ) -> None:
        self.app = app
        self.internal_port = internal_port
        self.public = public
        self.paths = paths

    def allowed(self, scope: Scope) -> bool:
        if self.internal_port is None:
            return self.public
        server = scope.get("server")
        return server is not None and server[1] == self.internal_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_NOT_FOUND)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _NOT_FOUND})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port`, bound now: a port in use fails before the app starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def server(
    app: Any,
    *,
    host: str,
    port: int,
    internal_host: str = "127.0.0.1",
    internal_port: int | None = None,
    **options: Any,
) -> tuple[uvicorn.Server, list[socket.socket]]:
    """The uvicorn server of `app` and the sockets it is to serve: `host:port`, and
    `internal_host:internal_port` when given. `options` go to `uvicorn.Config` (but
    `proxy_headers`, always off). Run it with `server.run(sockets=...)` (or `await
    server.serve(sockets=...)`)."""
    sockets = [bind(host, port)]
    if internal_port is not None:
        sockets.append(bind(internal_host, internal_port))
    # uvicorn's proxy-headers handling stays off whatever the caller or FORWARDED_ALLOW_IPS
    # says: with it, uvicorn rewrites the request's client from `X-Forwarded-For` for any
    # peer in FORWARDED_ALLOW_IPS (`*` trusts everyone) before the app sees it; only
    # `rebond_http.clients` decides who the client is, from <PREFIX>_TRUSTED_PROXIES. No
    # `Server` header either: it tells a scanner which software to try first.
    options = {"server_header": False, **options, "proxy_headers": False}
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options)), sockets


class Listening(Protocol):
    """Where a service listens, as its settings say (`host`, `port`, and the internal port)."""

    host: str
    port: int
    internal_host: str
    internal_port: int | None


def server_for(
    app: Any, where: Listening, **options: Any
) -> tuple[uvicorn.Server, list[socket.socket]]:
    """`server` on the addresses `where` (a service's settings) names, without uvicorn's own
    logging configuration or access log (the service logs, and no path or client goes in it)."""
    return server(
        app,
        host=where.host,
        port=where.port,
        internal_host=where.internal_host,
        internal_port=where.internal_port,
        **{"log_config": None, "access_log": False, **options},
    )
