"""W3C Trace Context on the wire: the `traceparent` header every HTTP request and Kafka record
of a flow may carry (https://www.w3.org/TR/trace-context/).

Part of the header contract like the `ce_*` attributes: a service reads the incoming
`traceparent` (HTTP header or Kafka record header), continues its trace with a span of its own,
and writes `traceparent` on every record it publishes, so one trace id follows a questionnaire
from intake to the association's referral. It holds random identifiers, never personal data.
"""

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HEADER = "traceparent"
_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceParent:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits: the span that sends this header
    sampled: bool = True

    @classmethod
    def parse(cls, value: str | bytes | None) -> "TraceParent | None":
        """The header's trace and parent span, or None when absent or malformed."""
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        match = _PATTERN.match((value or "").strip().lower())
        if match is None:
            return None
        version, trace_id, span_id, flags = match.groups()
        if version == "ff" or set(trace_id) == {"0"} or set(span_id) == {"0"}:
            return None
        return cls(trace_id, span_id, bool(int(flags, 16) & 1))

    @classmethod
    def start(cls) -> "TraceParent":
        """A new trace (nothing came in)."""
        return cls(secrets.token_hex(16), new_span_id())

    def child(self) -> "TraceParent":
        """A new span of the same trace."""
        return TraceParent(self.trace_id, new_span_id(), self.sampled)

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


def new_span_id() -> str:
    return secrets.token_hex(8)


def from_headers(
    headers: Mapping[str, str | bytes] | Iterable[tuple[str, bytes]],
) -> TraceParent | None:
    """The `traceparent` among HTTP or Kafka headers (case-insensitive name), if valid."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name.lower() == HEADER:
            return TraceParent.parse(value)
    return None
