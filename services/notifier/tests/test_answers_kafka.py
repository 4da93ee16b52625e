"""The associations' side, against the notifier running as its own process on the real broker:
answer links in a real browser (Playwright + Debian Chromium) and the `rebond-association` CLI."""

import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import (
    ErasureRequestedV1,
    ReferralStatus,
    ReferralStatusV1,
    RoutingDecisionV1,
)
from rebond_contracts.topics import ERASURES, REFERRAL_STATUS, responses
from rebond_notifier import templates
from rebond_notifier.config import load_associations
from rebond_notifier.signing import Action, AnswerClaims, make_token
from rebond_testing.events import publish_event
from rebond_testing.tokens import forged

from .conftest import LINK_SECRET, MailBox, NotifierUrl, make_decision, send_decision

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.kafka


def _wait_mail(box: MailBox, reference: str, to_part: str, within_s: float = 20) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for message in box.about(reference):
            if to_part in str(message["To"]):
                return str(message.get_content())
        time.sleep(0.1)
    raise AssertionError(f"no e-mail for {reference} to {to_part}")


def _links(text: str) -> dict[str, str]:
    return {
        "accept": re.search(r"Accepter : (\S+)", text).group(1),  # type: ignore[union-attr]
        "decline": re.search(r"Décliner : (\S+)", text).group(1),  # type: ignore[union-attr]
    }


#: `offer(association)`, the fixture below.
Offer = Callable[[AssociationId], tuple[RoutingDecisionV1, dict[str, str]]]


@pytest.fixture
def offer(kafka_bootstrap: str, notifier_process: NotifierUrl, smtp_server: MailBox) -> Offer:
    """`offer(association)`: a new decision for `association`, sent to the notifier process;
    that decision and the answer links of its e-mail to the association (at the address the
    process reads from the default associations file)."""
    channels = load_associations()

    def send(association: AssociationId) -> tuple[RoutingDecisionV1, dict[str, str]]:
        decision = make_decision(association)
        asyncio.run(send_decision(kafka_bootstrap, decision))
        mail = _wait_mail(smtp_server, decision.reference, channels[association].email)
        return decision, _links(mail)

    return send


@contextmanager
def _browser_page(launch_options: dict[str, object]) -> "Iterator[Page]":
    """A page of a fresh Chromium, closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options)  # type: ignore[arg-type]
        try:
            yield browser.new_page()
        finally:
            browser.close()


async def _read_key(bootstrap: str, topic: str, key: str) -> list[dict]:  # type: ignore[type-arg]
    """Every record of `topic` with this key, read from the beginning up to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(topic, p) for p in cluster.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batches.items():
                found += [
                    {"value": json.loads(r.value), "headers": dict(r.headers)}
                    for r in records
                    if r.key == key.encode()
                ]
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return found
    finally:
        await consumer.stop()


def _responses(
    bootstrap: str, association: AssociationId, reference: str, count: int
) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 15
    while True:
        found = asyncio.run(_read_key(bootstrap, responses(association).name, reference))
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_accept_link_in_a_browser_publishes_the_answer_once(
    kafka_bootstrap: str, offer: Offer, chromium_launch_options: dict[str, object]
) -> None:
    """Accepter opens a French page; confirming publishes an accept; the used link then says so."""
    decision, links = offer(AssociationId.SOIXANTE_MILLE_REBONDS)
    with _browser_page(chromium_launch_options) as page:
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(links["accept"])
        assert page.locator("#reference").inner_text() == decision.reference
        # The stylesheet applies under the Content-Security-Policy, which nothing breaks.
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "576px"
        assert not [line for line in console if "Content Security Policy" in line]
        page.get_by_role("button", name="Confirmer : j'accepte").click()
        page.wait_for_selector("#done")
        assert "acceptée" in page.locator("#done").inner_text()

        reply = page.goto(links["accept"])
        assert reply is not None and reply.status == 409
        assert "déjà été donnée" in page.content()
        reply = page.goto(links["decline"])  # the other link of the same referral
        assert reply is not None and reply.status == 409
    [answer] = _responses(
        kafka_bootstrap, AssociationId.SOIXANTE_MILLE_REBONDS, decision.reference, 1
    )
    assert answer["value"]["answer"] == "accept"
    assert answer["value"]["referral_id"] == str(decision.referral.referral_id)
    assert answer["headers"]["ce_type"] == b"fr.rebond.referral.answered"


def test_decline_link_asks_the_reason_and_publishes_it(
    kafka_bootstrap: str, offer: Offer, chromium_launch_options: dict[str, object]
) -> None:
    """Décliner asks for a reason among the five; the decline is published with it."""
    decision, links = offer(AssociationId.SECOND_SOUFFLE)
    with _browser_page(chromium_launch_options) as page:
        page.goto(links["decline"])
        assert page.locator("input[name=reason]").count() == 5
        page.get_by_label("Plus de place pour l'accompagner").check()
        page.get_by_role("button", name="Confirmer : je décline").click()
        page.wait_for_selector("#done")
    [answer] = _responses(kafka_bootstrap, AssociationId.SECOND_SOUFFLE, decision.reference, 1)
    assert (answer["value"]["answer"], answer["value"]["reason"]) == ("decline", "no_capacity")


def test_every_page_carries_the_security_headers_and_operators_paths_are_private(
    notifier_process: NotifierUrl,
) -> None:
    """Answer pages (form, refusal), the stylesheet, health and 404s all carry CSP, no framing,
    nosniff, no referrer (the token is in the path) and HSTS when set; `/metrics` and
    `/openapi.json` answer only on NOTIFIER_INTERNAL_PORT, `/docs` nowhere."""
    claims = AnswerClaims(
        referral_id=uuid.uuid4(), reference="RB-7K3M-Q9XA-2DFE-W8NB",
        association_id=AssociationId.APESA, action=Action.DECLINE, expires_at=2**40,
    )  # fmt: skip
    valid = make_token(LINK_SECRET.encode(), claims)
    replies = [
        httpx.get(f"{notifier_process}/reponse/{valid}"),
        httpx.get(f"{notifier_process}/reponse/not.a.token"),
        httpx.post(f"{notifier_process}/reponse/{valid}", content=b"reason=nope"),
        httpx.get(f"{notifier_process}/reponse.css"),
        httpx.get(f"{notifier_process}/healthz"),
        httpx.get(f"{notifier_process}/metrics"),
        httpx.get(f"{notifier_process}/openapi.json"),
        httpx.get(f"{notifier_process}/docs"),
    ]
    assert [r.status_code for r in replies] == [200, 400, 400, 200, 200, 404, 404, 404]
    for reply in replies:
        headers = reply.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "style-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["strict-transport-security"] == "max-age=31536000"
        assert "server" not in headers
    internal = notifier_process.internal
    assert httpx.get(f"{internal}/metrics").status_code == 200
    assert "/reponse/{token}" in httpx.get(f"{internal}/openapi.json").json()["paths"]
    assert httpx.get(f"{internal}/docs").status_code == 404


def test_an_unknown_reason_and_an_unknown_method_get_clear_answers(
    notifier_process: NotifierUrl,
) -> None:
    """A reason none of the five (or empty) is a 400 page naming the field `reason`, for an
    accept link too; a method the page does not take is a 405 listing both GET and POST."""
    claims = AnswerClaims(
        referral_id=uuid.uuid4(), reference="RB-7K3M-Q9XA-2DFE-W8NB",
        association_id=AssociationId.APESA, action=Action.ACCEPT, expires_at=2**40,
    )  # fmt: skip
    url = f"{notifier_process}/reponse/{make_token(LINK_SECRET.encode(), claims)}"
    for body in (b"reason=AAA", b"reason="):
        reply = httpx.post(url, content=body)
        assert reply.status_code == 400 and "Raison inconnue" in reply.text
        assert "<code>reason</code>" in reply.text
    reply = httpx.request("OPTIONS", url)
    assert reply.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in reply.headers["allow"].split(",")}


def test_tampered_and_expired_links_get_a_clear_page(notifier_process: str) -> None:
    """A modified link gets a French 400 page, an expired one a 410 page, never a 500."""
    claims = AnswerClaims(
        referral_id=uuid.uuid4(),
        reference="RB-7K3M-Q9XA-2DFE-W8NB",
        association_id=AssociationId.APESA,
        action=Action.ACCEPT,
        expires_at=int(time.time()) - 1,
    )
    expired = make_token(LINK_SECRET.encode(), claims)
    reply = httpx.get(f"{notifier_process}/reponse/{expired}")
    assert reply.status_code == 410 and "Lien expiré" in reply.text
    reply = httpx.post(f"{notifier_process}/reponse/{expired}")
    assert reply.status_code == 410
    valid = make_token(
        LINK_SECRET.encode(), AnswerClaims(**{**claims.__dict__, "expires_at": 2**40})
    )
    for tampered in (forged(valid), "abc.def", valid.replace(".", "")):
        reply = httpx.get(f"{notifier_process}/reponse/{tampered}")
        assert reply.status_code == 400 and "Lien non valide" in reply.text


def _page_until(url: str, status: int, within_s: float = 20) -> httpx.Response:
    """GET `url` until it answers `status` (the notifier reads Kafka meanwhile), or give up."""
    deadline = time.monotonic() + within_s
    while True:
        reply = httpx.get(url)
        if reply.status_code == status or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (ReferralStatus.EXPIRED, "Délai de réponse dépassé"),
        (ReferralStatus.REORIENTED, "Orientation confiée ailleurs"),
    ],
)
def test_a_link_whose_referral_moved_on_says_so_instead_of_confirming(
    kafka_bootstrap: str, offer: Offer, status: ReferralStatus, title: str
) -> None:
    """Once `referrals.status` says the referral expired or was re-oriented, its still-valid
    link shows a French 410 page telling not to contact the person, and publishes nothing."""
    decision, links = offer(AssociationId.SECOND_SOUFFLE)
    assert httpx.get(links["accept"]).status_code == 200  # still awaited
    moved = ReferralStatusV1(
        reference=decision.reference, referral_id=decision.referral.referral_id,
        association_id=AssociationId.SECOND_SOUFFLE, status=status,
        next_association_id=AssociationId.SOIXANTE_MILLE_REBONDS, at=datetime.now(UTC),
    )  # fmt: skip
    event = REFERRAL_STATUS.envelope(
        moved, subject=decision.reference, correlationid=decision.reference
    )
    asyncio.run(publish_event(kafka_bootstrap, REFERRAL_STATUS.name, event, decision.reference))

    reply = _page_until(links["accept"], 410)
    assert reply.status_code == 410 and title in reply.text
    assert "ne pas contacter la personne" in reply.text and "acceptée" not in reply.text
    confirm = httpx.post(links["accept"])
    assert confirm.status_code == 410 and title in confirm.text
    assert _responses(kafka_bootstrap, AssociationId.SECOND_SOUFFLE, decision.reference, 0) == []


def test_a_link_expires_with_the_associations_deadline(
    kafka_bootstrap: str, notifier_process: str, smtp_server: MailBox
) -> None:
    """A referral due in a few seconds: its links work until that deadline, then give the
    "Lien expiré" page, which names the deadline."""
    decision = make_decision(AssociationId.APESA)
    respond_by = datetime.now(UTC) + timedelta(seconds=4)
    referral = decision.referral.model_copy(update={"respond_by": respond_by})
    decision = decision.model_copy(update={"referral": referral})
    asyncio.run(send_decision(kafka_bootstrap, decision))
    text = _wait_mail(smtp_server, decision.reference, "apesa")
    assert "valables jusqu'au" in text and "8 jours" not in text
    links = _links(text)
    if datetime.now(UTC) < respond_by - timedelta(seconds=1):
        assert httpx.get(links["decline"]).status_code == 200
    reply = _page_until(links["decline"], 410)
    assert datetime.now(UTC) >= respond_by - timedelta(seconds=1)
    assert reply.status_code == 410 and "Lien expiré" in reply.text
    assert templates.moment_fr(respond_by.replace(microsecond=0)) in reply.text


def test_a_link_of_a_withdrawn_request_says_so(kafka_bootstrap: str, offer: Offer) -> None:
    """After the person's erasure, the association's link says the request was withdrawn."""
    decision, links = offer(AssociationId.RE_CREER)
    erasure = ERASURES.envelope(
        ErasureRequestedV1(reference=decision.reference, requested_at=datetime.now(UTC)),
        subject=decision.reference, correlationid=decision.reference,
    )  # fmt: skip
    asyncio.run(publish_event(kafka_bootstrap, ERASURES.name, erasure, decision.reference))
    reply = _page_until(links["accept"], 410)
    assert reply.status_code == 410 and "Demande retirée" in reply.text


def _lines(process: subprocess.Popen[str]) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_association_cli_listens_accepts_and_declines(
    kafka_bootstrap: str, notifier_process: str
) -> None:
    """`rebond-association listen --json` prints the new referral; accept and decline publish answers."""
    env = {**os.environ, "REBOND_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    cli = [sys.executable, "-m", "rebond_notifier.association_cli"]
    listener = subprocess.Popen(
        [*cli, "listen", "--association", "re-creer", "--json", "--group", f"t-{uuid.uuid4().hex}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _lines(listener)
        decision = make_decision(AssociationId.RE_CREER)
        asyncio.run(send_decision(kafka_bootstrap, decision))
        deadline = time.monotonic() + 30
        printed = None
        while printed is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if decision.reference in line:
                printed = json.loads(line)
        assert printed is not None, "the listener never printed the referral"
        assert printed["referral_id"] == str(decision.referral.referral_id)
    finally:
        listener.terminate()
        listener.wait(timeout=20)

    accepted = subprocess.run(
        [*cli, "accept", decision.reference, "--association", "re-creer"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["referral_id"] == str(decision.referral.referral_id)
    declined = subprocess.run(
        [*cli, "decline", decision.reference, "--reason", "duplicate",
         "--referral-id", str(decision.referral.referral_id)],
        env={**env, "REBOND_ASSOCIATION": "re-creer"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert declined.returncode == 0, declined.stderr
    answers = _responses(kafka_bootstrap, AssociationId.RE_CREER, decision.reference, 2)
    assert sorted((a["value"]["answer"], a["value"]["reason"]) for a in answers) == [
        ("accept", None),
        ("decline", "duplicate"),
    ]
    assert {a["value"]["referral_id"] for a in answers} == {str(decision.referral.referral_id)}

    unknown = subprocess.run(
        [*cli, "accept", "RB-0000-0000-0000-0000", "--association", "re-creer"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 2 and "no referral" in unknown.stderr


def test_association_cli_over_sasl_answers_only_for_its_own_association(
    kafka_secure,  # type: ignore[no-untyped-def]
) -> None:
    """With its SASL credentials an association answers on its own topic and is refused another's."""
    principal = "association-apesa"
    env = {
        **os.environ,
        "REBOND_KAFKA_BOOTSTRAP_SERVERS": kafka_secure.bootstrap,
        "REBOND_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "REBOND_KAFKA_SASL_USERNAME": principal,
        "REBOND_KAFKA_SASL_PASSWORD": kafka_secure.credentials[principal],
    }
    cli = [sys.executable, "-m", "rebond_notifier.association_cli", "decline", "RB-7K3M-Q9XA-2DFE-W8NB",
           "--reason", "other", "--referral-id", str(uuid.uuid4())]  # fmt: skip
    own = subprocess.run(
        [*cli, "--association", "apesa"], env=env, capture_output=True, text=True, timeout=60
    )
    assert own.returncode == 0, own.stderr
    other = subprocess.run(
        [*cli, "--association", "re-creer"], env=env, capture_output=True, text=True, timeout=60
    )
    assert other.returncode == 3 and "Kafka refused" in other.stderr
