"""API fuzzing: schemathesis over the events service's OpenAPI (examples, coverage, fuzzing, and
stateful sequences through its links); no 5xx, every answer as the document describes it."""

import tempfile
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy import create_engine

from rebond_events import scheduling
from rebond_events.app import build
from rebond_events.conferences import Conferences
from rebond_events.models import EventIn
from rebond_events.settings import EventsSettings, hash_api_key
from rebond_events.store import apply, migrate
from rebond_events.tables import metadata
from rebond_sql.types import utc_now
from rebond_testing.fuzzing import examples

from .conftest import FakeSink

KEY = "fuzz-organiser-key"
HEADERS = {"X-API-Key": KEY}
_FOLDER = tempfile.TemporaryDirectory(prefix="rebond-events-fuzz-")
#: Conferences made before the run, for the sequences to start from.
SEEDED: list[str] = []
#: Answers by phase (examples, coverage, fuzzing or stateful), operation and status.
CALLS: Counter[tuple[str, str, int]] = Counter()


def _app() -> Any:
    """The service on a fresh SQLite file, events to a fake sink. Built at import: schemathesis
    reads the schema when pytest collects this module."""
    url = f"sqlite:///{Path(_FOLDER.name) / 'events.db'}"
    migrate(url)
    settings = EventsSettings(
        environment="test", database_url=url, migrate_on_start=False,
        organiser_keys={"second-souffle": hash_api_key(KEY)}, rate_limit_per_minute=0,
        outbox_interval_s=3600,
    )  # fmt: skip
    app = build(settings, send=FakeSink().send).web
    _seed(app.state.conferences)
    return app


def _seed(conferences: Conferences) -> None:
    """An empty store but for three upcoming conferences (their ids in SEEDED, the same in
    every scenario and run: the listing's order and the links' values with them), written by
    the scheduling use case on a connection of its own (this runs outside the app's event
    loop)."""
    engine = create_engine(conferences.store.database.url)
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
            SEEDED.clear()
            for city, department in (("Lille", "59"), ("Arras", "62"), ("Calais", "62")):
                event = EventIn(**_REAL_EVENT, city=city, department=department)
                schedule = partial(
                    scheduling.schedule, announce=conferences.announce, clock=utc_now,
                    organiser="second-souffle", data=event,
                    new_id=partial(str, uuid.uuid5(uuid.NAMESPACE_URL, f"fuzz:{city}")),
                )  # fmt: skip
                SEEDED.append(apply(connection, schedule, utc_now()).value.id)
    finally:
        engine.dispose()


#: Every built-in check but one: `positive_data_acceptance` expects every request the schema
#: allows to succeed, and the service refuses (422, naming the field) what business rules forbid
#: and a JSON schema cannot say: consent must be given, a department lies in its region, a
#: conference ends after it starts, a name has no digits or links.
CONFIG = SchemathesisConfig.from_dict(
    {"headers": HEADERS, "checks": {"positive_data_acceptance": {"enabled": False}}}
)
IN_A_MONTH = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
#: A conference the service accepts: in the future, its department in its region.
_REAL_EVENT = {
    "title": "Rebondir", "kind": "conference", "venue_address": "1 rue Nationale",
    "region": "32", "starts_at": IN_A_MONTH, "ends_at": IN_A_MONTH + timedelta(hours=2),
    "capacity": 3,
}  # fmt: skip
APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@schema.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    CALLS[(case.meta.phase.name, case.operation.label, response.status_code)] += 1


@schema.hook
def map_case(context: Any, case: Any) -> Any:
    """Half the schema-valid listings, conferences, changes and registrations made realistic
    (a listing without filters, which shows the seeded conferences; a conference in the future,
    a department of its region; a change to one such; a name and consent, to a conference that
    exists), so that the runs create and change real resources and the sequences follow links
    to them; the other half, and every invalid case, stay as generated. A change keeps the
    conference the link led to: only its body is made real."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    label = case.operation.label
    if label == "GET /v1/events":
        if case.query and not zlib.crc32(repr(sorted(case.query.items())).encode()) % 2:
            case.query = {}
        return case
    body = case.body
    if not isinstance(body, dict) or zlib.crc32(repr(sorted(body.items())).encode()) % 2:
        return case
    if label in ("POST /v1/events", "PATCH /v1/events/{event_id}"):
        case.body = {
            **body, **_REAL_EVENT, "city": "Lille", "department": "59",
            "starts_at": IN_A_MONTH.isoformat(), "ends_at": _REAL_EVENT["ends_at"].isoformat(),
        }  # fmt: skip
    elif label == "POST /v1/events/{event_id}/registrations":
        digest = zlib.crc32(repr(body).encode())
        case.body = {**body, "name": "Claire", "email": f"p{digest}@example.org", "consent": True}
        case.path_parameters = {"event_id": SEEDED[digest % len(SEEDED)]}
    return case


@pytest.fixture(scope="module", autouse=True)
def _stop_the_app() -> Iterator[None]:
    yield
    shutdown_lifespans()
    _FOLDER.cleanup()


@schema.parametrize()
@hypothesis.settings(
    max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck),
    database=None,
)  # fmt: skip
def test_every_operation_answers_as_documented(case: Any) -> None:
    """Whatever is sent to any operation: never a 5xx, and the answer conforms to the document."""
    case.call_and_validate()


#: The sequences explore the conferences' operations only: the stories' and the peers' have no
#: links to follow, and would share the scenarios' steps (a run could then miss a conference's
#: cancellation); they are fuzzed above, and their flows tested in test_stories and test_peers.
CONFERENCE_OPERATIONS = schema.include(path_regex=r"^/v1/(events|registrations)")


class Sequences(CONFERENCE_OPERATIONS.as_state_machine()):  # type: ignore[misc]
    """Calls chained through the document's links (and those schemathesis infers from the
    listing): a conference → its page, change, registration → the organiser's list → a
    registration's cancellation, the conference's cancellation."""

    def setup(self) -> None:
        """Each scenario starts from the same store: what happens in it then depends on what it
        sends alone, which Hypothesis requires of the data it generates."""
        _seed(APP.state.conferences)


class TestStateful(Sequences.TestCase):  # type: ignore[misc,valid-type]
    def runTest(self) -> None:
        """The sequences, run again in a fresh session when Hypothesis finds that a scenario it
        replays drew differently: each registration gets a new id, so a link followed again
        draws another value. That is the store's doing, not a finding about the service
        (schemathesis's own engine starts a fresh session then too); any other error fails the
        test."""
        for attempt in range(3):
            try:
                super().runTest()
                return
            except FlakyStrategyDefinition:
                if attempt == 2:
                    raise


#: Generation only, as schemathesis runs its own stateful phase: a scenario replayed to shrink
#: it meets the store as the previous scenarios left it, so it would not replay the same.
#: Derandomized: the same scenarios in every run (from the same seeded store), so whether they
#: reach each operation's success, which `test_the_runs_reached_real_resources` checks, is
#: settled by the code and not by a draw. Drawn afresh, how often a sequence reaches a change
#: varies from run to run: `PATCH` answered 200 from 2 to 15 times in the runs measured, and in
#: one of four runs (issue 19's session 6) not at all.
TestStateful.settings = hypothesis.settings(
    max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck),
    database=None,
    phases=[hypothesis.Phase.generate], derandomize=True,
    stateful_step_count=8,
)  # fmt: skip


def test_the_runs_reached_real_resources() -> None:
    """The runs above tried every operation and created conferences; the sequences followed
    links to real conferences and registrations (found, changed, registered to: not 404)."""
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert operations == {label for phase, label, _ in CALLS if phase != "stateful"}, CALLS
    assert any(call[1:] == ("POST /v1/events", 201) for call in CALLS), CALLS
    reached = {label for phase, label, status in CALLS if phase == "stateful" and status < 300}
    assert {
        "GET /v1/events/{event_id}",
        "PATCH /v1/events/{event_id}",
        "POST /v1/events/{event_id}/registrations",
        "GET /v1/events/{event_id}/registrations",
        "POST /v1/events/{event_id}/cancel",
    } <= reached, str(sorted(CALLS.items()))
