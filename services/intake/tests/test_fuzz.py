"""API fuzzing: schemathesis over intake's OpenAPI (examples, coverage, fuzzing, and stateful
sequences through its links: submit → status → erasure → status); no 5xx, and every answer as
the document describes it."""

from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from rebond_intake.app import build
from rebond_intake.settings import IntakeSettings
from rebond_testing.fuzzing import examples

from .conftest import FakePublisher, FakeStore

#: Every built-in check but one: `positive_data_acceptance` expects every request the schema
#: allows to succeed, and intake refuses (422, naming the field) what the contract's rules
#: forbid and a JSON schema cannot say (a department outside the region, contact details
#: without consent to share them, the chosen channel left empty).
CONFIG = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {"enabled": False}}})
#: Answers by phase (examples, coverage, fuzzing or stateful), operation and status.
CALLS: Counter[tuple[str, str, int]] = Counter()


def _app() -> Any:
    """Intake with the fakes of conftest.py; built at import, as schemathesis reads the schema
    at collection time."""
    settings = IntakeSettings(rate_limit_per_minute=0)
    return build(settings, publisher=FakePublisher(), store=FakeStore()).web


schema = schemathesis.openapi.from_asgi("/openapi.json", _app(), config=CONFIG)


@schema.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    CALLS[(case.meta.phase.name, case.operation.label, response.status_code)] += 1


@pytest.fixture(scope="module", autouse=True)
def _stop_the_app() -> Iterator[None]:
    yield
    shutdown_lifespans()


@schema.parametrize()
@hypothesis.settings(
    max_examples=examples(250), deadline=None, suppress_health_check=list(HealthCheck),
    database=None, derandomize=True,
)  # fmt: skip
def test_every_operation_answers_as_documented(case: Any) -> None:
    """Whatever is sent to any operation: never a 5xx, and the answer conforms to the document."""
    response = case.call_and_validate()
    assert "Traceback" not in response.text


#: Calls chained through the document's links: a submission → its status → its erasure (with
#: the secret the submission returned) → its status again.
TestStateful = schema.as_state_machine().TestCase
#: Generation only, as schemathesis runs its own stateful phase: a scenario replayed to shrink
#: it meets the store as the previous scenarios left it, so it would not replay the same.
#: Derandomized, the same 60 sequences in every run: drawn afresh, one serial run of `make
#: check`'s tests reached no accepted erasure in 60 (2026-12-07). These reach 21 statuses and
#: 9 erasures. All 60 in `make check` too: a quarter of them reach a single erasure, a margin
#: any change to the document could take away.
TestStateful.settings = hypothesis.settings(
    max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None,
    phases=[hypothesis.Phase.generate], derandomize=True,
    stateful_step_count=6,
)  # fmt: skip


def test_the_runs_tried_enough_and_reached_real_submissions() -> None:
    """The runs above tried every operation, with four times one operation's examples or more
    in all (1,000 in `make test`, 248 in `make check`), and the sequences followed the links
    to real submissions: their status found, their erasure accepted."""
    operations = {result.ok().label for result in schema.get_all_operations()}
    unit = Counter({k: n for k, n in CALLS.items() if k[0] != "stateful"})
    assert operations == {label for _, label, _ in unit}, sorted(unit)
    assert sum(unit.values()) >= 4 * examples(250), unit
    reached = {label for phase, label, status in CALLS if phase == "stateful" and status < 300}
    assert {
        "POST /v1/submissions",
        "GET /v1/submissions/{reference}",
        "POST /v1/submissions/{reference}/erasure",
    } <= reached, str(sorted(CALLS.items()))


@pytest.mark.parametrize("depth", [900, 5000])
def test_deeply_nested_json_gets_a_4xx(make_client, depth) -> None:  # type: ignore[no-untyped-def]
    """JSON nested deeper than the parser's recursion limit is refused with a 4xx, never a 5xx."""
    raw = b'{"distress":' + b"[" * depth + b"]" * depth + b"}"
    reply = make_client().post(
        "/v1/submissions", content=raw, headers={"content-type": "application/json"}
    )
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
