"""What a use case refuses, for the HTTP layer to say (404, 403, 409, 410, 422)."""

from typing import Any


class NotFound(Exception):
    """No such conference or registration."""


class Forbidden(Exception):
    """The conference belongs to another organiser, or a cancellation link is not valid."""


class Conflict(Exception):
    """The conference is cancelled or already started."""


class Expired(Exception):
    """A cancellation link whose conference has ended, or of an earlier registration."""


class InvalidChange(Exception):
    """An update that would leave the conference invalid; `errors` name the fields."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid change")
        self.errors = errors
