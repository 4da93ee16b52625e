"""Reviewed data files: YAML read into a pydantic model, with errors that name the place.

The contacts directory and intake's crisis lexicon are data that people of the grouping edit
and review, not code. A mistake in them must stop the loader with a message a maintainer can
act on (`national.3114.phone.value: …`), never pass silently nor end in a traceback, so every
such file goes through `load_yaml_model`.
"""

from collections.abc import Sequence
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def place(raw: object, loc: Sequence[int | str]) -> str:
    """The dotted path of an error, naming list items by their `id` when they have one.

    `national.3114.phone.value` rather than `national.0.phone.value`: the id is what a
    maintainer searches the file for.
    """
    parts: list[str] = []
    node = raw
    for part in loc:
        label = str(part)
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, dict) and "id" in node:
                label = str(node["id"])
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            node = None
        parts.append(label)
    return ".".join(parts) or "<root>"


def yaml_mapping(
    text: str, origin: str, error: type[ValueError], expected: str
) -> dict[str, object]:
    """`text` parsed as YAML, which must be a mapping (of `expected`, named in the error);
    else `error`, naming `origin`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        raise error(f"{origin}: not valid YAML: {problem}") from problem
    if not isinstance(raw, dict):
        raise error(f"{origin}: expected a mapping with {expected}")
    return raw


def load_yaml_model(text: str, model: type[M], origin: str, error: type[ValueError]) -> M:
    """Parse `text` as a mapping and validate it as `model`; raise `error` naming each problem."""
    raw = yaml_mapping(text, origin, error, ", ".join(model.model_fields))
    try:
        return model.model_validate(raw)
    except ValidationError as invalid:
        problems = "; ".join(f"{place(raw, e['loc'])}: {e['msg']}" for e in invalid.errors())
        raise error(f"{origin}: {problems}") from invalid
