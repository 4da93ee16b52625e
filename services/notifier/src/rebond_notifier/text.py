"""Text from data on its way into an e-mail header or a terminal.

A conference title, a first name or a message is written by someone outside; in a header a line
break starts a new header (or makes the message unbuildable), and on a terminal an escape
sequence moves the cursor, rewrites the title or hides what follows. The characters that do this
are Unicode's controls (`Cc`: C0, DEL and C1, whose U+009B is a CSI on some terminals), format
characters (`Cf`: bidirectional overrides that reorder what is shown, zero-width characters),
line and paragraph separators (`Zl`, `Zp`) and lone surrogates (`Cs`).
"""

import json
import re
import unicodedata

_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SPACES = re.compile(" {2,}")


def _is_control(character: str) -> bool:
    return unicodedata.category(character) in _CONTROL_CATEGORIES


def has_controls(value: str) -> bool:
    """Whether `value` holds any character that can break a header or drive a terminal."""
    # `isprintable` is false for all of them (and for some harmless spaces): a fast first look.
    return not value.isprintable() and any(_is_control(c) for c in value)


def one_line(value: str) -> str:
    """`value` fit for a header: line breaks and other controls become a space, format
    characters go, runs of spaces become one."""
    if not has_controls(value):
        return value
    kept = "".join(map(_for_header, value))
    return _SPACES.sub(" ", kept).strip()


def _for_header(character: str) -> str:
    if not _is_control(character):
        return character
    return "" if unicodedata.category(character) == "Cf" else " "


def escape_controls(text: str) -> str:
    """`text` with each such character shown as its JSON escape (`\\u001b`, `\\u202e`, `\\n`):
    visible to the reader, inert on a terminal, and still valid inside a JSON string."""
    if text.isprintable():
        return text
    return "".join(json.dumps(c)[1:-1] if _is_control(c) else c for c in text)
