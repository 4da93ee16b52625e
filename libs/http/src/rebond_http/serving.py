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
from typing import Any

import uvicorn


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


def serving(
    app: Any,
    *,
    host: str,
    port: int,
    internal_host: str = "127.0.0.1",
    internal_port: int | None = None,
    **options: Any,
) -> Serving:
    """The server of `app` on `host:port`, and on `internal_host:internal_port` when given.
    `options` go to `uvicorn.Config` (loop, http, log settings); proxy headers stay off."""
    config = uvicorn.Config(
        app, host=host, port=port, proxy_headers=False, server_header=False, **options
    )
    sockets = [_listen(host, port)]
    if internal_port is not None:
        sockets.append(_listen(internal_host, internal_port))
    return Serving(uvicorn.Server(config), sockets)
