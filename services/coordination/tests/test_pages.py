"""The console's pages through the ASGI app: queue, directory, preview, statistics, inbox,
conferences; what each sends through the outbound port; metrics and health."""

import html
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from rebond_contracts.payloads import PeerMatchStatus, PeerMatchV1
from rebond_coordination import projections
from rebond_coordination.domain import Cause, Role
from rebond_coordination.facts import (
    DirectoryObserved,
    EffectiveValues,
    FollowUpAnswered,
    OverrideApplied,
    StatisticsFact,
    StatusChanged,
    Withdrawn,
)
from rebond_coordination.kafka import _projection
from rebond_testing import new_reference

from .conftest import START, Browser, Console, offer, queue_case


@pytest.fixture
async def cora(console: Console) -> Browser:
    await console.user("cora@rebond.test", name="Cora")
    return await console.sign_in("cora@rebond.test")


@pytest.fixture
async def marc(console: Console) -> Browser:
    await console.user("marc@60000.test", Role.MEMBER, association="60000-rebonds", name="Marc")
    return await console.sign_in("marc@60000.test")


# --- the human queue ------------------------------------------------------------------------


async def test_the_queue_lists_urgent_then_oldest_with_reasons_and_contact(
    console: Console, cora: Browser
) -> None:
    """Urgent first; each association's answer; "Aucun contact partagé" without consent."""
    old = await queue_case(console.store, START - timedelta(hours=5), contact=False)
    urgent = await queue_case(console.store, START - timedelta(minutes=10), urgent=True)
    page = (await cora.get("/file")).text
    assert page.index(urgent) < page.index(old)
    assert "60 000 rebonds : Plus de place" in page and "Aucun contact partagé" in page
    detail = (await cora.get(f"/file/{old}")).text
    assert "Aucun contact partagé" in detail and "Plus de parrain disponible en Gironde" in detail
    assert "Claire" in (await cora.get(f"/file/{urgent}")).text


async def test_departments_read_by_name_on_the_case_the_inbox_and_the_referral(
    console: Console, cora: Browser, marc: Browser
) -> None:
    """A department shows as "Gironde (33)" (`rebond_contracts.geography`), never a bare code."""
    case = (await cora.get(f"/file/{await queue_case(console.store)}")).text
    assert "Nouvelle-Aquitaine, Gironde (33)" in case
    referral_id, _ = await offer(console.store)
    assert "Gironde (33)" in (await marc.get("/boite")).text
    assert "Nouvelle-Aquitaine, Gironde (33)" in (await marc.get(f"/boite/{referral_id}")).text


async def test_a_coordinator_claims_and_assigns_a_case_and_the_assignment_is_published(
    console: Console, cora: Browser
) -> None:
    """Claim, choose Second Souffle with a note: the outbound port gets `assign` with them."""
    reference = await queue_case(console.store)
    assert "Prendre ce dossier en charge" in (await cora.get(f"/file/{reference}")).text
    claimed = await cora.post(f"/file/{reference}/prendre")
    assert "Vous avez pris ce dossier en charge" in claimed.text
    missing = await cora.post(f"/file/{reference}/attribuer", {"association": "", "note": ""})
    assert missing.status_code == 422 and 'href="#association"' in missing.text
    done = await cora.post(
        f"/file/{reference}/attribuer", {"association": "second-souffle", "note": "Rappelée."}
    )
    assert done.status_code == 303
    (message,) = console.outbound.sent
    assert message.kind == "assign" and message.reference == reference
    assert message.association_id == "second-souffle" and message.note == "Rappelée."
    queue = await cora.client.get(done.headers["location"])
    assert "est attribué" in queue.text and "la file est vide" in queue.text


async def test_a_second_coordinator_is_told_who_holds_the_case_and_a_stale_case_says_so(
    console: Console, cora: Browser
) -> None:
    """Bruno cannot take Cora's case; once assigned, the case page says to whom."""
    await console.user("bruno@rebond.test", name="Bruno")
    bruno = await console.sign_in("bruno@rebond.test")
    reference = await queue_case(console.store)
    await cora.post(f"/file/{reference}/prendre")
    refused = await bruno.post(f"/file/{reference}/prendre")
    assert refused.status_code == 409 and "Cora a déjà pris ce dossier en charge" in refused.text
    refused = await bruno.post(f"/file/{reference}/attribuer", {"association": "apesa"})
    assert refused.status_code == 409 and "pris en charge par Cora" in refused.text
    await cora.post(f"/file/{reference}/attribuer", {"association": "apesa"})
    stale = await bruno.post(f"/file/{reference}/clore", {"outcome": "unreachable"})
    assert stale.status_code == 409 and "déjà été attribué à APESA" in stale.text
    assert "Déjà attribué" in (await bruno.get(f"/file/{reference}")).text


async def test_a_withdrawn_case_says_so_and_shows_nothing_of_the_person(
    console: Console, cora: Browser
) -> None:
    """After the person's erasure the case page says "Retiré", without their first name."""
    reference = await queue_case(console.store)
    await projections.withdrawn(console.store, Withdrawn(reference=reference, at=START))
    page = (await cora.get(f"/file/{reference}")).text
    assert "Retiré" in page and "Claire" not in page
    refused = await cora.post(f"/file/{reference}/prendre")
    assert "n'attend plus" in html.unescape(refused.text)


async def test_a_coordinator_closes_a_case_with_an_outcome(console: Console, cora: Browser) -> None:
    """Closing sends `close` with the outcome chosen; an outcome is required."""
    reference = await queue_case(console.store, cause=Cause.NOT_CONTACTED)
    await cora.post(f"/file/{reference}/prendre")
    missing = await cora.post(f"/file/{reference}/clore", {})
    assert missing.status_code == 422 and 'href="#outcome"' in missing.text
    assert (
        await cora.post(f"/file/{reference}/clore", {"outcome": "called_back"})
    ).status_code == 303
    assert [(m.kind, m.outcome) for m in console.outbound.sent] == [("close", "called_back")]  # type: ignore[union-attr]


async def test_a_message_the_port_refuses_waits_in_the_outbox_and_leaves_later(
    console: Console, cora: Browser
) -> None:
    """Kafka down: the assignment is recorded and kept; the next relay round sends it once."""
    reference = await queue_case(console.store)
    await cora.post(f"/file/{reference}/prendre")
    console.outbound.down = True
    assert (
        await cora.post(f"/file/{reference}/attribuer", {"association": "apesa"})
    ).status_code == 303
    assert console.outbound.sent == [] and len(await console.store.pending_messages()) == 1
    console.outbound.down = False
    assert await console.app.services.relay.flush() == 1
    assert await console.app.services.relay.flush() == 0
    assert [m.kind for m in console.outbound.sent] == ["assign"]


async def test_urgent_cases_waiting_over_an_hour_show_in_the_metrics(
    console: Console, cora: Browser
) -> None:
    """The gauge of the oldest urgent wait and the count over an hour, as Prometheus reads them."""
    await queue_case(console.store, START - timedelta(hours=2), urgent=True)
    await queue_case(console.store, START - timedelta(minutes=20), urgent=True)
    await queue_case(console.store, START - timedelta(hours=9))
    await console.app.services.observability.refresh_queue(console.store, console.clock)
    metrics = (await console.client().get("/metrics")).text
    assert "rebond_coordination_urgent_waiting_over_hour 1.0" in metrics
    assert "rebond_coordination_oldest_urgent_wait_seconds 7200.0" in metrics


# --- the directory and the preview -----------------------------------------------------------


async def test_an_override_is_audited_published_and_pending_until_applied(
    console: Console, cora: Browser
) -> None:
    """Pause 60 000 rebonds: `override` sent, "En attente" shown; once the router applied it,
    the association shows "En pause"."""
    await projections.directory_observed(console.store, DirectoryObserved(
        association_id="60000-rebonds", rule_set_version="2026.11-1", at=START,
        values=EffectiveValues(paused=False, weekly_capacity=12, response_deadline_days=10),
    ))  # fmt: skip
    bad = await cora.post(
        "/annuaire/60000-rebonds", {"weekly_capacity": "douze", "response_deadline_days": "0"}
    )
    assert bad.status_code == 422
    assert (
        'href="#60000-rebonds-weekly_capacity"' in bad.text
        and 'href="#60000-rebonds-response_deadline_days"' in bad.text
    )
    assert (
        await cora.post("/annuaire/60000-rebonds", {"paused": "pause", "note": "Congés"})
    ).status_code == 303
    (message,) = console.outbound.sent
    assert message.kind == "override" and message.paused is True and message.weekly_capacity is None  # type: ignore[union-attr]
    page = (await cora.get("/annuaire")).text
    assert "En attente" in page and "1 en attente" in page
    await projections.override_applied(console.store, OverrideApplied(
        override_id=message.message_id, association_id="60000-rebonds", at=START + timedelta(seconds=2),
        values=EffectiveValues(paused=True, weekly_capacity=12, response_deadline_days=10),
    ))  # fmt: skip
    page = (await cora.get("/annuaire")).text
    assert "En pause" in page and "1 en attente" not in page and "Appliqué le" in page
    assert (
        await cora.post("/annuaire/unknown-association", {"paused": "pause"})
    ).status_code == 404


async def test_the_preview_shows_the_matrix_and_sentences(console: Console, cora: Browser) -> None:
    """The router's answer as a table and as "12 personnes iraient à Second Souffle au lieu de
    60 000 rebonds"."""
    page = await cora.post("/apercu", {"directory": "version: candidate\n"})
    assert page.status_code == 200
    assert "12 personnes iraient à Second Souffle au lieu de 60 000 rebonds." in page.text
    assert "1 personne irait dans la file humaine au lieu de SOS Entrepreneur." in page.text
    assert "<caption>Matrice" in page.text
    assert console.preview.asked == ["version: candidate\n"]


async def test_an_uploaded_file_is_previewed_and_an_invalid_one_names_association_and_field(
    console: Console, cora: Browser
) -> None:
    """The router's refusal is shown in the error summary, naming the association and field."""
    csrf = await cora.csrf()
    bad = b"associations:\n  - id: 60000-rebonds\n    weekly_capacity: -3\n"
    refused = await cora.client.post(
        "/apercu", data={"csrf": csrf}, files={"file": ("directory.yaml", bad, "text/yaml")}
    )
    assert refused.status_code == 422
    assert "association « 60000-rebonds » champ « weekly_capacity »" in refused.text
    empty = await cora.post("/apercu", {"directory": "  "})
    assert empty.status_code == 422 and 'href="#directory"' in empty.text
    binary = await cora.client.post(
        "/apercu", data={"csrf": csrf}, files={"file": ("d.yaml", b"\xff\xfe", "text/yaml")}
    )
    assert binary.status_code == 422 and "UTF-8" in binary.text


# --- statistics ----------------------------------------------------------------------------


async def seed_statistics(console: Console) -> None:
    for index in range(20):
        association = (
            "60000-rebonds" if index < 11 else "apesa" if index < 14 else "sos-entrepreneur"
        )
        await projections.statistics_fact(console.store, StatisticsFact(
            fact_id=f"o-{index}", kind="offered", at=START + timedelta(days=index % 3), consented=True,
            region="75", stage="after_liquidation", association_id=association,
        ))  # fmt: skip
    for index in range(6):
        await projections.statistics_fact(console.store, StatisticsFact(
            fact_id=f"a-{index}", kind="accepted", at=START, consented=True, region="75",
            association_id="60000-rebonds", seconds_to_answer=3600.0 * (index + 1),
        ))  # fmt: skip


async def test_the_statistics_page_hides_small_cells_and_exports_them_hidden(
    console: Console, cora: Browser
) -> None:
    """11 offers to 60 000 rebonds are shown, 3 to APESA are "secret" and so are SOS
    Entrepreneur's 6 (else 20 - 11 - 6 gives APESA's back), in the page and the CSV."""
    await seed_statistics(console)
    page = await cora.get("/statistiques?grain=month")
    assert page.status_code == 200
    assert "<td>11</td>" in page.text and "secret" in page.text
    assert "3,5 h" in page.text  # the median time to a first answer
    csv = await cora.get("/statistiques.csv?grain=month")
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0] == "Mois,60 000 rebonds,APESA,SOS Entrepreneur,Total"
    assert lines[1] == "2026-12,11,secret,secret,20"
    bad = await cora.get("/statistiques?region=zz&du=hier")
    assert bad.status_code == 422 and 'href="#region"' in bad.text and 'href="#du"' in bad.text


async def test_the_follow_up_contacted_rate_counts_only_consenting_people(
    console: Console, cora: Browser
) -> None:
    """The follow-up answers read on `referrals.followups` feed the "taux de contact": only
    those of people who consented to statistics, each once; under 5 people, "secret" (and
    SOS Entrepreneur's cells too, else the totals would give APESA's back)."""
    answers = (  # (association, contacted, consented to statistics)
        [("60000-rebonds", True, True)] * 12 + [("60000-rebonds", False, True)] * 10
        + [("60000-rebonds", False, False)] * 4 + [("60000-rebonds", True, False)] * 2
        + [("sos-entrepreneur", True, True)] * 9 + [("sos-entrepreneur", False, True)] * 9
        + [("apesa", True, True)] * 3 + [("apesa", False, True)] * 2
    )  # fmt: skip
    for association, contacted, consented in answers:
        referral_id, reference = await offer(console.store, association)
        answer = FollowUpAnswered(
            reference=reference, referral_id=referral_id, association_id=association,
            contacted=contacted, at=START + timedelta(days=1), statistics_consent=consented,
        )  # fmt: skip
        for _ in range(2):  # read twice (a redelivery): counted once
            await projections.follow_up_answered(console.store, answer)
    counted = [a for a in answers if a[0] == "60000-rebonds" and a[2]]
    expected = round(100 * sum(1 for a in counted if a[1]) / len(counted))  # 12 / 22
    page = html.unescape((await cora.get("/statistiques?grain=month")).text)
    section = page[page.index("Suivi : personnes contactées") :]
    row = section[
        section.index("60 000 rebonds") : section.index("</tr>", section.index("60 000 rebonds"))
    ]
    assert "<td>12</td><td>10</td>" in row and f"<td>{expected} %</td>" in row
    apesa = section[section.index("APESA") : section.index("</tr>", section.index("APESA"))]
    assert apesa.count("secret") == 3


async def test_conference_registrations_per_region_come_from_the_events_service(
    console: Console, cora: Browser
) -> None:
    """Confirmed registrations of the conferences the events service lists are counted by
    region, whichever association organises them: 7 in Nouvelle-Aquitaine (4 + 3) are shown,
    2 in Île-de-France are "secret" (and Auvergne-Rhône-Alpes' 5 with them, else the total
    gives them back); the events service down, the page still answers."""
    base = {
        "title": "Rebondir", "kind": "conference", "venue_address": "1 rue Nationale",
        "capacity": 40, "starts_at": START + timedelta(days=10),
        "ends_at": START + timedelta(days=10, hours=2),
    }  # fmt: skip
    for association, city, department, region, confirmed in [
        ("60000-rebonds", "Bordeaux", "33", "75", 4), ("second-souffle", "Pau", "64", "75", 3),
        ("sos-entrepreneur", "Paris", "75", "11", 2), ("re-creer", "Lyon", "69", "84", 5),
    ]:  # fmt: skip
        event = await console.events.create_event(
            association, {**base, "city": city, "department": department, "region": region}
        )
        stored = console.events.events[event.id]
        stored.event = stored.event.model_copy(update={"confirmed": confirmed})
    page = html.unescape((await cora.get("/statistiques?grain=month")).text)
    section = page[page.index("<caption>Inscriptions confirmées") :]
    row = section[section.index("Nouvelle-Aquitaine") :]
    assert row[: row.index("</tr>")].endswith("<td>7</td>")
    idf = section[section.index("Île-de-France") :]
    assert "secret" in idf[: idf.index("</tr>")]
    console.events.down = True
    assert (await cora.get("/statistiques?grain=month")).status_code == 200


async def test_peer_matches_per_region_count_only_consenting_people_once_each(
    console: Console, cora: Browser
) -> None:
    """The `proposed` steps of `peers.matches` are counted per region, each match once, only
    for people who consented to statistics; other steps are not matches; under 5, "secret"
    (and Île-de-France's 6 with it, the smallest other, else the total gives it back)."""
    steps = (  # (region, status, consented to statistics)
        [("75", PeerMatchStatus.PROPOSED, True)] * 7 + [("75", PeerMatchStatus.PROPOSED, False)] * 4
        + [("75", PeerMatchStatus.DECLINED, True)] * 3 + [("75", PeerMatchStatus.UNMATCHED, True)]
        + [("84", PeerMatchStatus.PROPOSED, True)] * 2 + [("84", PeerMatchStatus.PROPOSED, False)]
        + [("11", PeerMatchStatus.PROPOSED, True)] * 6
    )  # fmt: skip
    for index, (region, status, consented) in enumerate(steps):
        step = PeerMatchV1(
            match_id=uuid.uuid4() if status != PeerMatchStatus.UNMATCHED else None,
            reference=new_reference(), status=status, region=region,  # type: ignore[arg-type]
            at=START + timedelta(days=index % 3), statistics_consent=consented,
        )  # fmt: skip
        found = _projection(step)
        if status != PeerMatchStatus.PROPOSED:
            assert found is None
            continue
        assert found is not None
        apply, fact = found
        for _ in range(2):  # read twice (a redelivery): counted once
            await apply(console.store, fact)
    counted = Counter(r for r, status, ok in steps if status == PeerMatchStatus.PROPOSED and ok)
    page = html.unescape((await cora.get("/statistiques?grain=month")).text)
    section = page[page.index("Mises en relation entre pairs") :]
    row = section[section.index("Nouvelle-Aquitaine") :]
    assert row[: row.index("</tr>")].endswith(f"<td>{counted['75']}</td>")  # 7
    for region in ("Auvergne-Rhône-Alpes", "Île-de-France"):
        row = section[section.index(region) :]
        assert "secret" in row[: row.index("</tr>")]
    row = section[section.index("Total") :]
    assert row[: row.index("</tr>")].endswith(f"<td>{counted.total()}</td>")  # 15


@pytest.mark.parametrize(("fmt", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF")])
async def test_the_one_page_report_is_a_png_or_a_pdf(
    console: Console, cora: Browser, fmt: str, magic: bytes
) -> None:
    """The report downloads as the format asked for."""
    await seed_statistics(console)
    report = await cora.get(f"/statistiques/rapport.{fmt}?grain=week")
    assert report.status_code == 200 and report.content.startswith(magic)
    assert (await cora.get("/statistiques/rapport.gif")).status_code == 404


# --- the inbox -----------------------------------------------------------------------------


async def test_a_member_accepts_then_records_contacted_and_both_are_published(
    console: Console, marc: Browser
) -> None:
    """Accept sends `answer`; "contacted on" sends `outcome` with its date."""
    referral_id, reference = await offer(console.store)
    page = (await marc.get(f"/boite/{referral_id}")).text
    assert (
        "Claire" in page
        and "Vous êtes après une liquidation." in page
        and "À accepter ou décliner avant le" in page
    )
    assert (
        await marc.post(f"/boite/{referral_id}/reponse", {"answer": "accept"})
    ).status_code == 303
    future = await marc.post(
        f"/boite/{referral_id}/suite", {"outcome": "contacted", "contacted_on": "2026-12-08"}
    )
    assert future.status_code == 422 and "futur" in future.text
    done = await marc.post(
        f"/boite/{referral_id}/suite", {"outcome": "contacted", "contacted_on": "2026-12-07"}
    )
    assert done.status_code == 303
    answer, outcome = console.outbound.sent
    assert (answer.kind, answer.answer, answer.reference) == ("answer", "accept", reference)  # type: ignore[union-attr]
    assert (outcome.kind, outcome.outcome, str(outcome.on)) == (
        "outcome",
        "contacted",
        "2026-12-07",
    )  # type: ignore[union-attr]


async def test_a_decline_needs_a_reason_and_carries_the_comment(
    console: Console, marc: Browser
) -> None:
    """Decline without reason: the reason field is named; with one: published with the comment."""
    referral_id, _ = await offer(console.store)
    missing = await marc.post(f"/boite/{referral_id}/reponse", {"answer": "decline"})
    assert missing.status_code == 422 and 'href="#reason"' in missing.text
    ok = await marc.post(
        f"/boite/{referral_id}/reponse",
        {"answer": "decline", "reason": "no_capacity", "comment": "Complet"},
    )
    assert ok.status_code == 303
    (message,) = console.outbound.sent
    assert (message.reason, message.comment) == ("no_capacity", "Complet")  # type: ignore[union-attr]
    outcome = await marc.post(f"/boite/{referral_id}/suite", {"outcome": "closed"})
    assert outcome.status_code == 422 and "après avoir accepté" in outcome.text


async def test_who_will_call_and_when_are_checked_then_published_and_shown(
    console: Console, marc: Browser
) -> None:
    """An accept's caller on two lines and a call in the past are refused naming each field,
    with nothing published; valid ones go out with the answer and show on the referral."""
    referral_id, _ = await offer(console.store)
    bad = await marc.post(
        f"/boite/{referral_id}/reponse",
        {"answer": "accept", "caller": "Amandine\r\nDupont", "call_by": "2026-12-06T10:00"},
    )
    assert bad.status_code == 422
    assert 'href="#caller"' in bad.text and 'href="#call_by"' in bad.text
    assert console.outbound.sent == []
    ok = await marc.post(
        f"/boite/{referral_id}/reponse",
        {"answer": "accept", "caller": "Amandine", "call_by": "2026-12-08T10:30"},
    )
    assert ok.status_code == 303
    (message,) = console.outbound.sent
    assert message.caller == "Amandine"  # type: ignore[union-attr]
    assert message.call_by == datetime(2026, 12, 8, 9, 30, tzinfo=UTC)  # type: ignore[union-attr]
    page = (await marc.get(f"/boite/{referral_id}")).text
    assert (
        "Rappel prévu par <strong>Amandine</strong>" in page and "8 décembre 2026 à 10 h 30" in page
    )


async def test_an_assignment_note_the_contract_would_refuse_is_refused_on_the_form(
    console: Console, cora: Browser
) -> None:
    """A note over 500 characters, or with a control character, is refused naming the note
    (it would otherwise sit in the outbox, refused by CaseAssignedV1); line breaks are kept."""
    reference = await queue_case(console.store)
    await cora.post(f"/file/{reference}/prendre")
    for note in ("x" * 501, "Rappelée\x07"):
        refused = await cora.post(
            f"/file/{reference}/attribuer", {"association": "second-souffle", "note": note}
        )
        assert refused.status_code == 422 and 'href="#note"' in refused.text
    assert console.outbound.sent == []
    done = await cora.post(
        f"/file/{reference}/attribuer", {"association": "second-souffle", "note": "Lundi.\r\nOK"}
    )
    assert done.status_code == 303
    assert console.outbound.sent[0].note == "Lundi.\nOK"  # type: ignore[union-attr]


async def test_a_follow_up_no_shows_on_the_case_and_on_the_referral(
    console: Console, cora: Browser, marc: Browser
) -> None:
    """The person's "not contacted" shows on the queue case the router sends back and on the
    accepted referral in the association's inbox."""
    referral_id, reference = await offer(console.store)
    await marc.post(f"/boite/{referral_id}/reponse", {"answer": "accept"})
    await queue_case(console.store, START + timedelta(days=31), ref=reference,
                     cause=Cause.NOT_CONTACTED)  # fmt: skip
    await projections.follow_up_answered(console.store, FollowUpAnswered(
        reference=reference, referral_id=referral_id, association_id="60000-rebonds",
        contacted=False, at=START + timedelta(days=31),
    ))  # fmt: skip
    said = "dit ne pas avoir été contactée"
    assert said in (await cora.get(f"/file/{reference}")).text
    assert said in (await marc.get(f"/boite/{referral_id}")).text


async def test_a_late_answer_says_the_case_has_moved_on(console: Console, marc: Browser) -> None:
    """After the deadline the answer is refused with the reason and nothing is published."""
    referral_id, _ = await offer(console.store, respond_by=START + timedelta(minutes=20))
    console.clock.advance(minutes=25)
    assert "délai dépassé" in (await marc.get(f"/boite/{referral_id}")).text
    late = await marc.post(f"/boite/{referral_id}/reponse", {"answer": "accept"})
    assert late.status_code == 409 and "Le délai de réponse est passé" in late.text
    assert console.outbound.sent == []


async def test_an_answer_by_email_link_shows_in_the_inbox(console: Console, marc: Browser) -> None:
    """The router's "declined" for the referral shows, marked as given through the e-mail link."""
    referral_id, reference = await offer(console.store)
    await projections.status_changed(console.store, StatusChanged(
        reference=reference, referral_id=referral_id, association_id="60000-rebonds", status="declined",
        reason="duplicate", at=START + timedelta(hours=1),
    ))  # fmt: skip
    page = (await marc.get(f"/boite/{referral_id}")).text
    assert (
        "Déclinée" in page
        and "par le lien reçu par e-mail" in page
        and "Déjà suivie chez nous" in page
    )


async def test_who_will_call_given_by_e_mail_link_shows_in_the_inbox(
    console: Console, marc: Browser
) -> None:
    """The router's "accepted" carries the caller and call time given through the e-mail link:
    the inbox shows them as it shows its own."""
    referral_id, reference = await offer(console.store)
    await projections.status_changed(console.store, StatusChanged(
        reference=reference, referral_id=referral_id, association_id="60000-rebonds",
        status="accepted", caller="Bruno", call_by=datetime(2026, 12, 9, 14, 0, tzinfo=UTC),
        at=START + timedelta(hours=1),
    ))  # fmt: skip
    page = (await marc.get(f"/boite/{referral_id}")).text
    assert "Rappel prévu par <strong>Bruno</strong>" in page and "9 décembre 2026 à 15 h 00" in page


async def test_a_withdrawn_referral_shows_retiree_without_personal_data(
    console: Console, marc: Browser
) -> None:
    """The inbox says "Retirée"; no first name, e-mail or message is left on either page."""
    referral_id, reference = await offer(console.store)
    await projections.withdrawn(console.store, Withdrawn(reference=reference, at=START))
    for path in ("/boite", f"/boite/{referral_id}"):
        page = (await marc.get(path)).text
        assert "Retirée" in page or "Demande retirée" in page
        assert (
            "Claire" not in page
            and "claire@example.org" not in page
            and "Liquidation clôturée" not in page
        )


# --- conferences ---------------------------------------------------------------------------


async def test_an_organiser_creates_a_conference_and_sees_the_events_apis_errors_by_field(
    console: Console,
) -> None:
    """The events API's 422 lands in the error summary field by field; a good form creates it."""
    await console.user("olga@souffle.test", Role.ORGANISER, association="second-souffle")
    olga = await console.sign_in("olga@souffle.test")
    form = {
        "title": "Rebondir ensemble", "kind": "conference", "starts_at": "2027-01-14T20:30",
        "ends_at": "2027-01-14T18:30", "venue_address": "1 place de la Bourse", "city": "Bordeaux",
        "region": "75", "department": "69", "capacity": "30", "description": "", "online_url": "",
    }  # fmt: skip
    empty = await olga.post("/conferences/second-souffle/nouvelle", {})
    for name in (
        "title",
        "starts_at",
        "ends_at",
        "venue_address",
        "city",
        "region",
        "department",
        "capacity",
    ):
        assert f'href="#{name}"' in empty.text, name
    refused = await olga.post("/conferences/second-souffle/nouvelle", form)
    assert refused.status_code == 422
    assert 'href="#ends_at"' in refused.text and 'href="#department"' in refused.text
    assert "Indiquez une fin postérieure au début." in refused.text
    form |= {"starts_at": "2027-01-14T18:30", "ends_at": "2027-01-14T20:30", "department": "33"}
    assert (await olga.post("/conferences/second-souffle/nouvelle", form)).status_code == 303
    listing = await olga.get("/conferences/second-souffle")
    assert "Rebondir ensemble" in listing.text
    (event,) = await console.events.list_events("second-souffle")
    edited = await olga.post(
        f"/conferences/second-souffle/{event.id}/modifier", form | {"capacity": "0"}
    )
    assert edited.status_code == 422 and 'href="#capacity"' in edited.text
    assert (
        await olga.post(
            f"/conferences/second-souffle/{event.id}/modifier", form | {"capacity": "45"}
        )
    ).status_code == 303
    assert (await console.events.get_event("second-souffle", event.id)).capacity == 45
    assert (await olga.post(f"/conferences/second-souffle/{event.id}/annuler")).status_code == 303
    assert (await console.events.get_event("second-souffle", event.id)).status == "cancelled"


async def test_registrations_export_as_csv_without_formulas(console: Console) -> None:
    """The list downloads as CSV; a name starting with "=" cannot run as a formula."""
    from rebond_coordination.ports import Registration

    await console.user("olga@souffle.test", Role.ORGANISER, association="second-souffle")
    olga = await console.sign_in("olga@souffle.test")
    event = await console.events.create_event("second-souffle", {
        "title": "T", "kind": "conference", "starts_at": "2027-01-14T18:30", "ends_at": "2027-01-14T20:30",
        "venue_address": "A", "city": "B", "region": "75", "department": "33", "capacity": 3,
    })  # fmt: skip
    console.events.events[event.id].registrations.append(Registration(
        registration_id="r1", name="=HYPERLINK(1)", email="eve@example.org", status="confirmed",
        registered_at=START,
    ))  # fmt: skip
    csv = await olga.get(f"/conferences/second-souffle/{event.id}/inscriptions.csv")
    assert "'=HYPERLINK(1),eve@example.org,confirmed" in csv.text


async def test_the_events_service_down_is_said_plainly(console: Console) -> None:
    """503 with a sentence, never a stack trace."""
    await console.user("olga@souffle.test", Role.ORGANISER, association="second-souffle")
    olga = await console.sign_in("olga@souffle.test")
    console.events.down = True
    page = await olga.get("/conferences/second-souffle")
    assert page.status_code == 503 and "ne répond pas" in page.text


async def test_a_member_moderates_stories_and_volunteers_through_the_events_api(
    console: Console, marc: Browser
) -> None:
    """The pending story and volunteers are listed (no contact; a reported one says who
    reported it); publishing and refusing go to the events API with the member's association,
    are audited, and a second click says it is already handled; the events service down is a
    plain 503."""
    from rebond_coordination.ports import StoryToModerate, VolunteerToModerate

    console.events.stories["s1"] = StoryToModerate(
        id="s1", text="Après la liquidation, un parrain m'a aidé.", first_name="Karim",
        region="75", stage="after_liquidation", sector="I", failure_year=2019,
        submitted_at=START,
    )  # fmt: skip
    console.events.volunteers["v1"] = VolunteerToModerate(
        id="v1", status="pending", pseudonym="Paul", region="75", stage="receivership",
        sector="C", availability="le soir", monthly_limit=2, created_at=START,
    )  # fmt: skip
    console.events.volunteers["v2"] = VolunteerToModerate(
        id="v2", status="reported", reported_by="person", pseudonym="Lina", region="75",
        stage="receivership", sector="C", availability="le soir", monthly_limit=2,
        created_at=START,
    )  # fmt: skip
    page = await marc.get("/moderation")
    assert page.status_code == 200
    assert "un parrain m&#39;a aidé" in page.text and "Paul" in page.text
    assert "Signalé par la personne présentée" in page.text and "Remettre en relation" in page.text
    assert "Karim, Nouvelle-Aquitaine" in page.text
    published = await marc.post("/moderation/temoignages/s1/approuver")
    assert (
        published.status_code == 303
        and published.headers["location"] == "/moderation?fait=approuver"
    )
    refused = await marc.post("/moderation/pairs/v1/refuser")
    assert refused.headers["location"] == "/moderation?fait=refuser"
    assert console.events.decisions == [
        ("story", "s1", True, "60000-rebonds"), ("volunteer", "v1", False, "60000-rebonds"),
    ]  # fmt: skip
    again = await marc.post("/moderation/temoignages/s1/approuver")
    assert again.headers["location"] == "/moderation?fait=deja"
    journal = await marc.get("/journal")
    assert "story_approved" in journal.text and "volunteer_rejected" in journal.text
    console.events.down = True
    assert (await marc.get("/moderation")).status_code == 503


# --- health ----------------------------------------------------------------------------------


async def test_health_and_readiness(console: Console) -> None:
    """/healthz answers alive; /readyz answers once the store does."""
    client = console.client()
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    assert (await client.get("/readyz")).json() == {"store": "ready"}


async def test_readiness_says_the_store_is_unreachable_whatever_its_error(
    console: Console,
) -> None:
    """/readyz answers 503 naming the store once it no longer answers (here it raises an error
    that is no database error), never a 500; /healthz stays alive."""
    client = console.client()
    await console.store.close()
    reply = await client.get("/readyz")
    assert (reply.status_code, reply.json()) == (503, {"store": "unreachable"})
    assert (await client.get("/healthz")).json() == {"status": "alive"}
