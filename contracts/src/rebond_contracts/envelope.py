"""The event envelope: CloudEvents 1.0 attributes plus a correlation id and the schema version.

On Kafka every event uses the CloudEvents Kafka protocol binding in *binary* mode: the record
value is the JSON payload (`data`) and each attribute travels as a `ce_<name>` header, with
`content-type` for `datacontenttype`. A consumer in any language (kcat, Java, Node) reads the
value as plain JSON and the headers as strings.
"""

import builtins
import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Generic, Literal, TypeVar
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

DataT = TypeVar("DataT", bound=BaseModel)

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"
_ATTRIBUTES = (
    "id",
    "source",
    "type",
    "specversion",
    "time",
    "subject",
    "correlationid",
    "schemaversion",
)


class EnvelopeError(ValueError):
    """A record that is not a valid event of the expected type and version."""


class Envelope(BaseModel, Generic[DataT]):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=lambda: str(uuid4()))
    source: str = Field(examples=["/rebond/intake"])
    type: str = Field(examples=["fr.rebond.questionnaire.completed"])
    specversion: Literal["1.0"] = SPECVERSION
    time: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str = Field(description="The submission reference.")
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    correlationid: str = Field(description="Carried unchanged from the first event of a flow.")
    schemaversion: int = Field(ge=1)
    data: DataT

    def kafka_headers(self) -> dict[str, str]:
        """The binary-mode headers: `ce_<attribute>` and `content-type`."""
        headers = {f"ce_{name}": _header_text(getattr(self, name)) for name in _ATTRIBUTES}
        headers["content-type"] = self.datacontenttype
        return headers

    def kafka_value(self) -> bytes:
        return self.data.model_dump_json(exclude_none=False).encode()

    @classmethod
    def from_kafka(
        cls,
        value: bytes | None,
        headers: Mapping[str, str | bytes] | Iterable[tuple[str, bytes]],
        payload: builtins.type[DataT],
    ) -> "Envelope[DataT]":
        """Read a binary-mode record; raises `EnvelopeError` naming what is wrong."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        attrs = {
            name[3:]: raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            for name, raw in pairs
            if name.startswith("ce_")
        }
        missing = [name for name in _ATTRIBUTES if name not in attrs]
        if missing:
            raise EnvelopeError(
                f"missing CloudEvents headers: {', '.join('ce_' + m for m in missing)}"
            )
        if value is None:
            raise EnvelopeError("empty record value")
        try:
            data = payload.model_validate_json(value)
            return envelope_class(payload).model_validate({**attrs, "data": data})
        except ValidationError as error:
            raise EnvelopeError(_describe(error)) from error


@functools.cache
def envelope_class(payload: builtins.type[BaseModel]) -> builtins.type["Envelope[Any]"]:
    """`Envelope[payload]`, built once: pydantic's own lookup of a parametrised model costs
    tens of microseconds on every call, which shows at thousands of events a second."""
    return Envelope[payload]  # type: ignore[valid-type]


def _header_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}"
        for item in error.errors(include_url=False)
    )
