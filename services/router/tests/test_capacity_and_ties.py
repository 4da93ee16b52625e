"""Hard capacity and the directory's written tie-break (issue 21), table-tested without Kafka."""

from typing import Any

import pytest
import yaml

from rebond_contracts.associations import AssociationId as A
from rebond_contracts.questionnaire import Need, QuestionnaireV1, Stage
from rebond_router.directory import DEFAULT_PATH, Directory, DirectoryError, parse_directory
from rebond_router.rules import decide, decide_distress
from rebond_router.scoring import rank

from .conftest import NOW, answers, submitted

SOS, SOUFFLE, SIXTY, RECREER = (
    A.SOS_ENTREPRENEUR,
    A.SECOND_SOUFFLE,
    A.SOIXANTE_MILLE_REBONDS,
    A.RE_CREER,
)
#: After a liquidation in Île-de-France, wanting to start again: 60 000 rebonds, Re-créer and
#: Second Souffle are suitable (in that order when all have room: the first two tie, and 60 000
#: rebonds is the specialist).
RESTART = QuestionnaireV1.model_validate(
    answers(
        situation__stage=Stage.AFTER_LIQUIDATION.value,
        situation__region="11",
        situation__department=None,
        situation__company_size="1-9",
        needs=[Need.NEW_BUSINESS.value],
    )
)


def changed(directory: Directory, **fields: dict[str, Any]) -> Directory:
    """`directory` with some associations' fields changed (`sixty={"capacity": "soft"}`)."""
    ids = {"sixty": SIXTY, "recreer": RECREER, "souffle": SOUFFLE, "sos": SOS}
    by_id = {ids[name]: change for name, change in fields.items()}
    return directory.model_copy(
        update={
            "associations": [
                a.model_copy(update=by_id.get(a.id, {})) for a in directory.associations
            ]
        }
    )


@pytest.mark.parametrize(
    ("loads", "changes", "ranked", "full_ones"),
    [
        ({}, {}, [SIXTY, RECREER, SOUFFLE], []),
        # One place left: still a candidate, with fewer capacity points.
        ({SIXTY: 11}, {}, [RECREER, SIXTY, SOUFFLE], []),
        # At its weekly capacity (12), hard by default: nothing new while others have room.
        ({SIXTY: 12}, {}, [RECREER, SOUFFLE], [SIXTY]),
        ({SIXTY: 40}, {}, [RECREER, SOUFFLE], [SIXTY]),
        ({SIXTY: 12, RECREER: 5}, {}, [SOUFFLE], [SIXTY, RECREER]),
        ({SIXTY: 12, RECREER: 5, SOUFFLE: 20}, {}, [], [SIXTY, RECREER, SOUFFLE]),
        # Marked soft: a full week only costs it the capacity points.
        ({SIXTY: 12}, {"sixty": {"capacity": "soft"}}, [RECREER, SIXTY, SOUFFLE], []),
        # A capacity of zero takes nobody.
        ({}, {"recreer": {"weekly_capacity": 0}}, [SIXTY, SOUFFLE], [RECREER]),
    ],
)
def test_a_full_association_gets_nothing_new_unless_marked_soft(
    directory: Directory,
    loads: dict[A, int],
    changes: dict[str, dict[str, Any]],
    ranked: list[A],
    full_ones: list[A],
) -> None:
    """Hard capacity leaves out an association at its weekly capacity (`capacity`); soft does not."""
    ranking = rank(RESTART, changed(directory, **changes), loads)
    assert [c.association for c in ranking.candidates] == ranked
    assert {a for a, why in ranking.excluded.items() if why == "capacity"} == set(full_ones)
    assert ranking.full is bool(full_ones)


@pytest.mark.parametrize(
    ("loads", "unrouted", "cause"),
    [
        ({SIXTY: 12, SOUFFLE: 20}, False, "no_candidate"),
        ({SIXTY: 12, SOUFFLE: 20, RECREER: 5}, True, "no_capacity"),
    ],
)
def test_when_every_suitable_association_is_full_the_case_goes_to_the_queue(
    directory: Directory, loads: dict[A, int], unrouted: bool, cause: str
) -> None:
    """No suitable association with room: no referral, the human queue (cause `no_capacity`)
    with a copy of what the person shared, for a coordinator to assign."""
    person = submitted(
        situation__stage="after_liquidation",
        situation__region="11",
        situation__department=None,
        needs=["new_business"],
    )
    routing = decide("event-1", person, NOW, directory, loads)
    assert routing.unrouted is unrouted
    assert (routing.decision.referral is None) is unrouted
    if unrouted:
        assert routing.cause == cause
        assert routing.queued is not None and routing.queued.contact.first_name == "Claire"


def pair(tie_break: list[str], **fields: dict[str, Any]) -> Directory:
    """Two associations that score the same for `RESTART` unless `fields` say otherwise:
    Second Souffle listed first, then SOS Entrepreneur; an antenna and national reach earn the
    same points, so that only the tie-break tells them apart."""
    base = {
        "name": "", "stages": ["after_liquidation"], "needs": ["new_business"],
        "regions": [], "national": True, "company_sizes": ["1-9"], "weekly_capacity": 10,
        "response_deadline_days": 10, "reminder_days_before_deadline": 2,
    }  # fmt: skip
    document = {
        "version": "test",
        "weights": {
            "need": 2,
            "antenna_in_region": 1,
            "national": 1,
            "size_fit": 1,
            "capacity": 1,
            "distress": 10,
        },
        "tie_break": tie_break,
        "associations": [
            {**base, "id": "second-souffle", "name": "Second Souffle", **fields.get("souffle", {})},
            {**base, "id": "sos-entrepreneur", "name": "SOS Entrepreneur", **fields.get("sos", {})},
        ],
    }
    return parse_directory(yaml.safe_dump(document))


DEFAULT = ["specialist", "region_antenna", "capacity_left", "directory_order"]


@pytest.mark.parametrize(
    ("tie_break", "fields", "loads", "first", "rule"),
    [
        # Nothing sets them apart but the file: the directory's order, said so.
        (DEFAULT, {}, {}, SOUFFLE, "directory_order"),
        # The specialist (fewer stages, the person's among them) before the generalist.
        (
            DEFAULT,
            {"souffle": {"stages": ["after_liquidation", "pre_procedure"]}},
            {},
            SOS,
            "specialist",
        ),
        # An antenna in the region before national reach.
        (DEFAULT, {"sos": {"regions": ["11"], "national": False}}, {}, SOS, "region_antenna"),
        # More places left (the same share: 10 of 20 and 5 of 10).
        (DEFAULT, {"sos": {"weekly_capacity": 20}}, {SOS: 10, SOUFFLE: 5}, SOS, "capacity_left"),
        # The directory's order of criteria decides which one counts first.
        (
            ["capacity_left", "specialist", "directory_order"],
            {"sos": {"stages": ["after_liquidation", "pre_procedure"], "weekly_capacity": 20}},
            {SOS: 10, SOUFFLE: 5},
            SOS,
            "capacity_left",
        ),
        (
            DEFAULT,
            {"sos": {"stages": ["after_liquidation", "pre_procedure"], "weekly_capacity": 20}},
            {SOS: 10, SOUFFLE: 5},
            SOUFFLE,
            "specialist",
        ),
        (
            ["directory_order"],
            {"souffle": {"stages": ["after_liquidation", "unsure"]}},
            {},
            SOUFFLE,
            "directory_order",
        ),
    ],
)
def test_a_tie_is_broken_by_the_directorys_written_rule_and_said(
    tie_break: list[str],
    fields: dict[str, dict[str, Any]],
    loads: dict[A, int],
    first: A,
    rule: str,
) -> None:
    """Equal scores are ordered by the directory's `tie_break`, and the one placed first says
    which criterion did it, in French and English, naming both associations."""
    ranking = rank(RESTART, pair(tie_break, **fields), loads)
    winner, runner_up = ranking.candidates
    assert winner.score.total == runner_up.score.total
    assert winner.association is first
    [reason] = [r for r in winner.reasons if r.code.startswith("tie_break_")]
    assert reason.code == f"tie_break_{rule}"
    assert reason.fr.startswith("à score égal, ") and reason.en.startswith("at equal score, ")
    names = {SOUFFLE: "Second Souffle", SOS: "SOS Entrepreneur"}
    assert names[first] in reason.fr and names[runner_up.association] in reason.en
    assert not [r for r in runner_up.reasons if r.code.startswith("tie_break_")]


def test_no_tie_no_tie_break_reason(directory: Directory) -> None:
    """A candidate ahead on points carries no tie-break reason."""
    ranking = rank(RESTART, directory, {RECREER: 1})
    assert ranking.candidates[0].score.total > ranking.candidates[1].score.total
    assert all(
        not r.code.startswith("tie_break_") for c in ranking.candidates[:1] for r in c.reasons
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(tie_break=["specialist", "region_antenna"]),
            "field 'tie_break': Value error, must end with directory_order",
        ),
        (
            lambda d: d.update(tie_break=["specialist", "specialist", "directory_order"]),
            "field 'tie_break': Value error, names a criterion twice",
        ),
        (lambda d: d.update(tie_break=["alphabetical", "directory_order"]), "field 'tie_break.0'"),
        (
            lambda d: d["associations"][2].update(capacity="maybe"),
            "association '60000-rebonds', field 'capacity'",
        ),
    ],
)
def test_a_bad_tie_break_or_capacity_is_refused_by_name(change: Any, message: str) -> None:
    """The directory names the field (and the association) of a bad tie-break or capacity."""
    document = yaml.safe_load(DEFAULT_PATH.read_text())
    change(document)
    with pytest.raises(DirectoryError, match=message.replace("(", r"\(")):
        parse_directory(yaml.safe_dump(document))


def test_the_shipped_directory_writes_its_tie_break_down() -> None:
    """`directory.yaml` states its tie-break (not a silent default) and its capacities' kind."""
    document = yaml.safe_load(DEFAULT_PATH.read_text())
    assert document["tie_break"] == DEFAULT
    assert all(entry.get("capacity") in ("hard", "soft") for entry in document["associations"])


def test_each_track_says_its_own_capacity_in_the_queue(directory: Directory) -> None:
    """A person in distress (art. 9 consent) while APESA is full: the distress track is queued
    for `no_capacity`, urgent, with the distress answer; the main track still offers; with APESA
    paused instead, the distress track's cause is `no_candidate`, whatever the main track's
    full associations."""
    person = submitted(distress="yes", consents__sensitive_data=True)
    main = decide("event-1", person, NOW, directory, {A.APESA: 50})
    apesa = decide_distress(main.decision.decision_id, person, NOW, directory, {A.APESA: 50})
    assert main.decision.referral is not None and not main.unrouted
    assert apesa is not None and apesa.unrouted and apesa.cause == "no_capacity"
    assert apesa.queued is not None and apesa.queued.urgent
    assert apesa.queued.distress is not None and apesa.queued.distress.value == "yes"
    paused = changed(directory, sixty={"weekly_capacity": 0})
    paused = paused.model_copy(
        update={
            "associations": [
                a.model_copy(update={"paused": True} if a.id is A.APESA else {})
                for a in paused.associations
            ]
        }
    )
    alone = decide_distress(main.decision.decision_id, person, NOW, paused, {SIXTY: 1})
    assert alone is not None and alone.unrouted and alone.cause == "no_candidate"
