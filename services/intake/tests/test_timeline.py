"""The status timeline, built from consumed events: pure, no Kafka."""

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    DeclineReason,
    DeliveryChannel,
    DeliveryOutcome,
    DeliveryV1,
    PeerMatchStatus,
    PeerMatchV1,
    Reason,
    ReferralStatus,
    ReferralStatusV1,
    RoutingOutcomeV1,
)
from rebond_intake.recent import RecentlyReceived
from rebond_intake.timeline import Record, build_timeline, current_status, received, record_of

REF = "RB-7K3M-Q9XA-2DFE-W8NB"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: The submission, as intake reads it back from `questionnaires.completed`.
RECEIVED = received("ev-received", REF, T0)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def decision(minutes: int, primary: AssociationId | None, attempt: int = 1) -> RoutingOutcomeV1:
    return RoutingOutcomeV1(
        decision_id=uuid.uuid4(),
        reference=REF,
        primary=primary,
        reasons=[
            Reason(
                code="stage_after_liquidation",
                fr="Vous êtes après une liquidation.",
                en="You are after a liquidation.",
            )
        ],
        attempt=attempt,
        decided_at=at(minutes),
    )


def status(minutes: int, state: ReferralStatus, **extra: object) -> ReferralStatusV1:
    return ReferralStatusV1(reference=REF, status=state, at=at(minutes), **extra)  # type: ignore[arg-type]


def rec(payload: object) -> Record:
    return record_of(str(uuid.uuid4()), payload)  # type: ignore[arg-type]


SOIX = AssociationId.SOIXANTE_MILLE_REBONDS
SOUFFLE = AssociationId.SECOND_SOUFFLE


@pytest.mark.parametrize(
    ("payloads", "locale", "codes", "texts"),
    [
        ([], "fr", ["received"], ["Questionnaire reçu."]),
        (
            [decision(1, SOIX)],
            "fr",
            ["received", "oriented"],
            ["Questionnaire reçu.", "Orientation proposée : 60 000 rebonds."],
        ),
        (
            [decision(1, SOIX)],
            "en",
            ["received", "oriented"],
            ["Questionnaire received.", "Suggested association: 60 000 rebonds."],
        ),
        ([decision(1, None)], "fr", ["received", "not_oriented"], None),
        (
            [
                decision(1, SOIX),
                status(2, ReferralStatus.OFFERED, association_id=SOIX),
                status(30, ReferralStatus.DECLINED, association_id=SOIX,
                       reason=DeclineReason.NO_CAPACITY),
                status(31, ReferralStatus.REORIENTED, association_id=SOIX,
                       next_association_id=SOUFFLE),
                decision(31, SOUFFLE, attempt=2),
                status(40, ReferralStatus.ACCEPTED, association_id=SOUFFLE),
                status(90, ReferralStatus.CLOSED, association_id=SOUFFLE),
            ],
            "fr",
            ["received", "oriented", "offered", "declined", "reoriented", "reoriented",
             "accepted", "closed"],
            None,
        ),
        (
            [status(5, ReferralStatus.UNROUTED)],
            "fr",
            ["received", "unrouted"],
            None,
        ),
        (
            [decision(1, SOIX), status(5, ReferralStatus.EXPIRED, association_id=SOIX)],
            "en",
            ["received", "oriented", "expired"],
            ["Questionnaire received.", "Suggested association: 60 000 rebonds.",
             "60 000 rebonds did not answer in time."],
        ),
    ],
)  # fmt: skip
def test_timeline_table(payloads, locale, codes, texts) -> None:
    """Each sequence of events gives the expected steps and words, in the person's language."""
    steps = build_timeline([RECEIVED, *(rec(p) for p in payloads)], locale)
    assert [s.code for s in steps] == codes
    if texts is not None:
        assert [s.text for s in steps] == texts


def test_duplicates_and_out_of_order_events_are_tolerated() -> None:
    """The same event twice counts once; events are ordered by their own time."""
    offered = rec(status(2, ReferralStatus.OFFERED, association_id=SOIX))
    accepted = rec(status(10, ReferralStatus.ACCEPTED, association_id=SOIX))
    oriented = rec(decision(1, SOIX))
    steps = build_timeline([RECEIVED, accepted, offered, accepted, oriented, offered], "fr")
    assert [s.code for s in steps] == ["received", "oriented", "offered", "accepted"]
    assert current_status(steps) == "accepted"


def test_received_comes_first_once_whatever_the_clocks() -> None:
    """The submission read back twice (and noted by the request) is one step, first even when
    another service's clock put a decision before it; without it, nothing claims "received"."""
    early = dataclasses.replace(rec(decision(1, SOIX)), at=T0 - timedelta(seconds=5))
    steps = build_timeline([early, RECEIVED, RECEIVED], "fr")
    assert [s.code for s in steps] == ["received", "oriented"]
    assert [s.code for s in build_timeline([early], "fr")] == ["oriented"]


def test_orientation_carries_the_reasons_in_the_locale() -> None:
    """The person sees why they were oriented, in French or English."""
    fr = build_timeline([RECEIVED, rec(decision(1, SOIX))], "fr")[1]
    en = build_timeline([RECEIVED, rec(decision(1, SOIX))], "en")[1]
    assert fr.reasons == ["Vous êtes après une liquidation."]
    assert en.reasons == ["You are after a liquidation."]
    assert fr.association_name == "60 000 rebonds"


def test_decline_reason_is_explained() -> None:
    """A decline shows its reason in words."""
    steps = build_timeline(
        [RECEIVED, rec(decision(1, SOIX)), rec(status(3, ReferralStatus.DECLINED,
                    association_id=SOIX, reason=DeclineReason.UNREACHABLE))],
        "fr",
    )  # fmt: skip
    assert steps[-1].reasons == ["Vous n'avez pas pu être joint."]


@pytest.mark.parametrize(
    ("channel", "outcome", "code"),
    [
        (DeliveryChannel.ASSOCIATION_EMAIL, DeliveryOutcome.SENT, "delivered"),
        (DeliveryChannel.WEBHOOK, DeliveryOutcome.DEAD_LETTERED, "delivery_failed"),
        (DeliveryChannel.ASSOCIATION_EMAIL, DeliveryOutcome.FAILED, None),
        (DeliveryChannel.PERSON_EMAIL, DeliveryOutcome.SENT, "person_email_sent"),
    ],
)
def test_deliveries_in_the_timeline(channel, outcome, code) -> None:
    """Sent and dead-lettered deliveries show; a failed attempt (retried) does not."""
    delivery = DeliveryV1(
        reference=REF, association_id=SOIX, channel=channel, outcome=outcome, at=at(3)
    )
    steps = build_timeline([RECEIVED, rec(decision(1, SOIX)), rec(delivery)], "fr")
    assert [s.code for s in steps[2:]] == ([code] if code else [])


def test_records_keep_no_personal_data() -> None:
    """What is kept from a decision is the association's id, reason texts and the attempt, not
    the referral."""
    record = rec(decision(1, SOIX))
    assert set(record.detail) == {"primary", "attempt", "reasons"}
    assert record.kind == "decision" and record.reference == REF


def test_the_memory_of_recent_submissions_keeps_only_the_newest() -> None:
    """Past its capacity the per-replica memory forgets the oldest submission first (the
    consumer has long since stored it), and a note again makes one the newest."""
    memory = RecentlyReceived(capacity=2)
    first, second, third = (received(f"ev-{n}", f"RB-0000-0000-0000-000{n}", T0) for n in range(3))
    memory.note(first)
    memory.note(second)
    memory.note(first)  # noted again: now the newest
    memory.note(third)
    assert memory.get(second.reference) is None
    assert memory.get(first.reference) == first and memory.get(third.reference) == third


APESA = AssociationId.APESA


def in_distress(minutes: int, primary: AssociationId, attempt: int = 1) -> RoutingOutcomeV1:
    """An outcome for a person who said they are in distress, as the router writes it for
    intake: the distress reasons are not on `routing.outcomes`; APESA's name still tells."""
    return decision(minutes, primary, attempt)


def _distress_journey() -> list[Record]:
    return [
        RECEIVED,
        rec(in_distress(1, APESA)),
        rec(status(2, ReferralStatus.OFFERED, association_id=APESA)),
        rec(DeliveryV1(reference=REF, association_id=APESA, at=at(3),
                       channel=DeliveryChannel.WEBHOOK, outcome=DeliveryOutcome.SENT)),
        rec(status(30, ReferralStatus.DECLINED, association_id=APESA,
                   reason=DeclineReason.NO_CAPACITY)),
        rec(status(31, ReferralStatus.REORIENTED, association_id=APESA,
                   next_association_id=SOUFFLE)),
        rec(in_distress(31, SOUFFLE, attempt=2)),
        rec(status(40, ReferralStatus.ACCEPTED, association_id=SOUFFLE)),
    ]  # fmt: skip


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_the_public_view_of_a_person_in_distress_names_no_association_and_no_reason(
    locale: str,
) -> None:
    """Someone holding only the reference learns the steps, never that the person said they
    are in distress: no reason, no association (APESA would say it), in either language."""
    steps = build_timeline(_distress_journey(), locale)
    # APESA's statuses and deliveries stay out whole (`test_the_public_view_leaves_the_distress_
    # track_out_whole`); the decisions and the other association's steps show, unnamed.
    assert [s.code for s in steps] == ["received", "oriented", "reoriented", "accepted"]
    shown = " ".join(s.text + " ".join(s.reasons) for s in steps)
    for word in ("APESA", "Second Souffle", "détresse", "distress", "3114", "psycholog"):
        assert word.lower() not in shown.lower()
    assert all(s.association_id is None and s.association_name is None for s in steps)
    assert [s.reasons for s in steps if s.code == "oriented"] == [[]]
    if locale == "fr":
        assert steps[1].text == "Orientation proposée : une association partenaire."
        assert steps[-1].text == (
            "Une association partenaire a accepté votre demande et va vous contacter."
        )


def test_the_full_view_behind_the_secret_names_everything() -> None:
    """With the erasure secret the person sees whom they were sent to and every reason the
    outcome carries."""
    steps = build_timeline(_distress_journey(), "fr", private=True)
    oriented = steps[1]
    assert oriented.association_name == "APESA" and oriented.text.endswith("APESA.")
    assert oriented.reasons == ["Vous êtes après une liquidation."]
    assert steps[-1].association_id == SOUFFLE


def test_a_distress_reason_kept_from_before_the_outcomes_topic_still_hides_names() -> None:
    """A decision record stored before `routing.outcomes` (its reasons could say distress)
    names no association in the public view, and never shows that reason."""
    older = Record("ev-older", REF, "decision", at(1), {
        "primary": SOUFFLE.value, "attempt": 1,
        "reasons": [{"code": "distress", "fr": "vous avez dit être en détresse", "en": "x"}],
    })  # fmt: skip
    steps = build_timeline([RECEIVED, older], "fr")
    assert steps[1].association_id is None and steps[1].reasons == []


def test_statuses_read_before_any_decision_name_no_association() -> None:
    """A status can be read before its decision (other topic, other partition): until a
    decision says the person is not in distress, the public view names no one."""
    early = [RECEIVED, rec(status(2, ReferralStatus.OFFERED, association_id=SOIX))]
    assert "60 000" not in build_timeline(early, "fr")[1].text
    assert build_timeline(early, "fr")[1].association_id is None
    later = [*early, rec(decision(1, SOIX))]
    assert build_timeline(later, "fr")[-1].association_id == SOIX  # not in distress: named


def test_once_erased_only_received_and_erased_remain() -> None:
    """After an erasure, whatever records are there, the timeline says received and erased,
    nothing else (in the public and the full view alike)."""
    received_again = received("ev-noted-by-the-request", REF, T0 + timedelta(seconds=1))
    erased = Record("ev-erased", REF, "erasure", at(50))
    records = [*_distress_journey(), received_again, erased, rec(status(60, ReferralStatus.CLOSED,
               association_id=SOUFFLE))]  # fmt: skip
    for private in (False, True):
        steps = build_timeline(records, "fr", private=private)
        assert [(s.code, s.at) for s in steps] == [("received", T0), ("erased", at(50))]
        assert current_status(steps) == "erased"


def test_the_public_view_leaves_the_distress_track_out_whole() -> None:
    """APESA's referral beside the main one (its offer, acceptance and e-mail) shows only behind
    the secret: the public view of the reference tells nothing of it, not even that it exists."""
    main = AssociationId.SOIXANTE_MILLE_REBONDS
    records = [
        received("r", REF, at(0)),
        rec(decision(1, main)),
        rec(status(1, ReferralStatus.OFFERED, association_id=main)),
        rec(
            status(1, ReferralStatus.OFFERED, association_id=AssociationId.APESA, track="distress")
        ),
        rec(
            status(5, ReferralStatus.ACCEPTED, association_id=AssociationId.APESA, track="distress")
        ),
    ]
    public = build_timeline(records, "fr")
    assert [s.code for s in public] == ["received", "oriented", "offered"]
    assert all(s.association_id != AssociationId.APESA for s in public)
    assert "APESA" not in " ".join(s.text for s in public)
    private = build_timeline(records, "fr", private=True)
    assert [s.code for s in private].count("accepted") == 1


def peer(minutes: int, state: PeerMatchStatus) -> PeerMatchV1:
    return PeerMatchV1(reference=REF, status=state, region="75", at=at(minutes))


def test_peer_match_steps_show_without_the_peer_and_leave_the_status_alone() -> None:
    """A peer proposed (then declined, then none left) shows as its own steps, naming no peer
    nor region, in public and private views; the request's status stays its referral's."""
    records = [
        RECEIVED, rec(decision(1, SOIX)), rec(status(2, ReferralStatus.ACCEPTED)),
        rec(peer(3, PeerMatchStatus.PROPOSED)), rec(peer(4, PeerMatchStatus.DECLINED)),
        rec(peer(4, PeerMatchStatus.UNMATCHED)),
    ]  # fmt: skip
    for private in (False, True):
        steps = build_timeline(records, "fr", private=private)
        assert [s.code for s in steps][-2:] == ["peer_proposed", "peer_unmatched"]
        assert steps[-2].text.startswith("Un pair vous a été proposé")
        assert current_status(steps) == "accepted"
    english = build_timeline(records, "en")
    assert english[-2].text.startswith("A peer was proposed to you")
    assert rec(peer(3, PeerMatchStatus.PROPOSED)).detail == {"status": "proposed"}
    erased = [*records, Record("e", REF, "erasure", at(9))]
    assert [s.code for s in build_timeline(erased, "fr")] == ["received", "erased"]
