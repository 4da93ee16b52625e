"""Text that is not text: found at the edge, before any route sees it.

Three things are text that is not text:

* a JSON body that is not UTF-8 (JSON is UTF-8, RFC 8259), which FastAPI answers with a `400`
  that no route documents;
* a JSON `\\ud800` escape (a lone UTF-16 surrogate): valid JSON, decoded by the parser into a
  Python string that raises `UnicodeEncodeError` wherever it is encoded (an HMAC, a database);
* a percent-encoded byte sequence that is not UTF-8 (`%ED%A0%80`, the UTF-8-like form of a
  surrogate; `%FF`) in the path, the query string or a form body: Starlette decodes it into
  U+FFFD replacement characters, so the value silently differs from what was sent.

The last two reach handlers as `str` that cannot be encoded back to UTF-8, compared as ASCII, or
are not what was sent. Rather than guard every `encode()` and `compare_digest()` behind each
route, the edge refuses all three, for every route at once, with the location of each faulty value (`["query", "token"]`,
`["body", "contact", "first_name"]`), so the answer is a 4xx naming the field.

The checks cost next to nothing on ordinary requests: a path or query without `%` or non-ASCII
bytes is not decoded here, nor is a JSON body parsed unless it holds a surrogate escape.
"""

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

Loc = tuple[str | int, ...]

#: A JSON escape of a UTF-16 surrogate (high or low); pairs are fine once parsed, lone ones not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _utf8(raw: bytes) -> str | None:
    """`raw` percent-decoded as strict UTF-8; None when it is not UTF-8."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _plain(raw: bytes) -> bool:
    return b"%" not in raw and raw.isascii()


def path_errors(raw_path: bytes) -> list[Loc]:
    """`[("path",)]` when the percent-decoded path is not UTF-8 (the route is not known yet)."""
    if _plain(raw_path) or _utf8(raw_path) is not None:
        return []
    return [("path",)]


def urlencoded_errors(raw: bytes, where: str) -> list[Loc]:
    """One location per `name=value` pair of a query string or a form body that is not UTF-8,
    named by its (decoded) parameter name."""
    if _plain(raw):
        return []
    errors: list[Loc] = []
    for pair in raw.split(b"&"):
        name, _, value = pair.replace(b"+", b" ").partition(b"=")
        decoded = _utf8(name)
        if decoded is None:
            errors.append((where, unquote_to_bytes(name).decode("utf-8", "replace")))
        elif _utf8(value) is None:
            errors.append((where, decoded))
    return errors


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _walk(value: Any, loc: Loc, found: list[Loc]) -> None:
    if isinstance(value, str):
        if _unencodable(value):
            found.append(loc)
    elif isinstance(value, dict):
        for key, item in value.items():
            if _unencodable(key):
                found.append((*loc, key.encode("utf-8", "replace").decode("utf-8")))
            else:
                _walk(item, (*loc, key), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*loc, index), found)


def json_errors(body: bytes) -> list[Loc]:
    """`[("body",)]` for a JSON body that is not UTF-8 (JSON is UTF-8: RFC 8259), else the
    location of every string (or key) holding a lone surrogate. A body that does not parse is
    left to the application, which says so in its own words."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return [("body",)]
    if _SURROGATE_ESCAPE.search(body) is None:
        return []
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return []
    found: list[Loc] = []
    _walk(document, ("body",), found)
    return found
