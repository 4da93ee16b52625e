"""Operators' paths kept off the public port: `/metrics` and the API description.

`/metrics` tells anyone the traffic, the error rate and the consumer lag; `/openapi.json` maps
every route, the organisers' included. Neither is for the public:

* with an internal port (`<PREFIX>_INTERNAL_PORT`), they answer only on it;
* without one, they answer on the public port in development and test, and nowhere in
  production (`public=False`).

The port a request came in on is the local address of the socket that accepted it
(`scope["server"]`, set by uvicorn from the socket itself), which no request header can change.
"""

from rebond_http.guard import ASGIApp, Receive, Scope, Send, reply

#: The paths served to operators only (FastAPI's documentation pages are off in every service).
INTERNAL_PATHS = frozenset({"/metrics", "/openapi.json", "/docs", "/redoc"})


class InternalRoutes:
    """404 for `INTERNAL_PATHS` unless the request came in on the internal port (or, without
    one, unless `public`)."""

    def __init__(self, app: ASGIApp, *, internal_port: int | None, public: bool) -> None:
        self.app = app
        self.internal_port = internal_port
        self.public = public

    def _allowed(self, scope: Scope) -> bool:
        if self.internal_port is None:
            return self.public
        server = scope.get("server")
        return server is not None and server[1] == self.internal_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in INTERNAL_PATHS and not self._allowed(scope):
            await reply(
                send, 404, {"error": "not_found", "message": "Introuvable. (Not found.)"}, []
            )
            return
        await self.app(scope, receive, send)
