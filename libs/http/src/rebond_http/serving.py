"""How a service with a public edge is served: uvicorn, one app, one or two listening sockets.

* uvicorn's proxy-headers handling is off (`proxy_headers=False`): with it on, uvicorn rewrites
  the request's client from `X-Forwarded-For` for any peer in `FORWARDED_ALLOW_IPS` (an
  environment variable an operator may set to `*`), before our guard sees it. Only
  `rebond_http.clients` decides who the client is, from `<PREFIX>_TRUSTED_PROXIES`.
* With an internal port (`<PREFIX>_INTERNAL_PORT`) the same app also listens there; the
  operators' paths (`/metrics`, `/openapi.json`) answer only on that socket
  (`rebond_http.internal`). One process and one event loop serve both: the metrics are the
  app's own, and a second server would need a second lifespan.
* No `Server` header: it tells a scanner which software to try first, and nobody else needs it.
"""

import socket
from dataclasses import dataclass
from typing import Any, Protocol

import uvicorn


class Listening(Protocol):
    """Where a service listens: its settings (`EdgeSettings` and the service's host and port)."""

    host: str
    port: int
    internal_host: str
    internal_port: int | None


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


@dataclass
class Serving:
    """A uvicorn server and the sockets it will listen on (already bound: a port in use fails
    here, before the app starts)."""

    server: uvicorn.Server
    sockets: list[socket.socket]

    def run(self) -> None:
        self.server.run(sockets=self.sockets)


def serving(app: Any, where: Listening, **options: Any) -> Serving:
    """The server of `app` on `where.host:where.port`, and on the internal port when set.
    `options` go to `uvicorn.Config` (loop, http); proxy headers stay off, and uvicorn
    neither configures logging (the service did) nor logs each request (no personal data)."""
    config = uvicorn.Config(
        app,
        host=where.host,
        port=where.port,
        proxy_headers=False,
        server_header=False,
        log_config=None,
        access_log=False,
        **options,
    )
    sockets = [_listen(where.host, where.port)]
    if where.internal_port is not None:
        sockets.append(_listen(where.internal_host, where.internal_port))
    return Serving(uvicorn.Server(config), sockets)
