"""The `Allow` header of a `405`, listing every method the path takes.

Starlette answers a method a path does not take with the methods of the *first* route whose
path matched (`GET /v1/events` and `POST /v1/events` are two routes: a `PUT` is told `Allow:
GET` only). A client, a cache or a scanner then has a wrong picture of the resource; RFC 9110
says `Allow` lists the methods the target resource supports, so it is computed over all of them.
"""

from collections.abc import Iterable, MutableMapping
from typing import Any

from starlette.routing import BaseRoute, Match


def allowed_methods(routes: Iterable[BaseRoute], scope: MutableMapping[str, Any]) -> str:
    """`Allow` for `scope`'s path: the methods of every route whose path matches it."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))
