"""The `Allow` header of a `405`, listing every method the path takes.

Starlette answers a method a path does not take with the methods of the *first* route whose
path matched (`GET /v1/events` and `POST /v1/events` are two routes: a `PUT` is told `Allow:
GET` only), and FastAPI's included routers hide their routes behind one entry. A client, a cache
or a scanner then has a wrong picture of the resource; RFC 9110 says `Allow` lists the methods
the target resource supports. So each method is asked of the routes themselves (a route
matches a request fully only when both its path and method do), whatever they are made of.
"""

from collections.abc import Iterable, MutableMapping
from typing import Any

from starlette.routing import BaseRoute, Match

#: The methods the services route (OPTIONS is answered by CORS, where configured).
METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(routes: Iterable[BaseRoute], scope: MutableMapping[str, Any]) -> str:
    """`Allow` for `scope`'s path: each method some route takes on it."""
    routes = list(routes)
    return ", ".join(
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    )
