"""The relay and the pages with kinds of message no service reads yet (`ports.NotPlugged`)."""

from rebond_coordination.domain import Role
from rebond_coordination.kafka import UNPLUGGED
from rebond_coordination.ports import NotPlugged, OutboundMessage
from rebond_coordination.relay import Relay

from .conftest import Console, offer, queue_case


class OnlyAnswers:
    """An outbound port that carries answers and refuses every other kind as not plugged."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def publish(self, message: OutboundMessage) -> None:
        if message.kind != "answer":
            raise NotPlugged(f"nobody reads {message.kind}")
        self.sent.append(message)


async def test_an_unplugged_kind_does_not_hold_back_the_answers(console: Console) -> None:
    """An assignment nobody reads yet stays in the outbox, and the answer given after it
    still goes out."""
    console.outbound.down = True  # both wait in the outbox, in this order
    await console.user("cora@rebond.test")
    await console.user("marc@60000.test", Role.MEMBER, association="60000-rebonds")
    cora = await console.sign_in("cora@rebond.test")
    marc = await console.sign_in("marc@60000.test")
    reference = await queue_case(console.store)
    await cora.post(f"/file/{reference}/prendre")
    assigned = await cora.post(
        f"/file/{reference}/attribuer", {"association": "second-souffle", "note": "Rappelée."}
    )
    assert assigned.status_code == 303
    referral_id, _ = await offer(console.store)
    assert (
        await marc.post(f"/boite/{referral_id}/reponse", {"answer": "accept"})
    ).status_code == 303

    port = OnlyAnswers()
    assert await Relay(console.store, port, console.clock).flush() == 1
    assert [m.kind for m in port.sent] == ["answer"]
    pending = [payload["kind"] for _, payload in await console.store.pending_messages()]
    assert pending == ["assign"]


async def test_the_pages_say_what_is_not_plugged_yet(console: Console) -> None:
    """With Kafka's adapter, the assignment and the directory forms say "pas encore branché"."""
    await console.user("cora@rebond.test")
    cora = await console.sign_in("cora@rebond.test")
    reference = await queue_case(console.store)
    await cora.post(f"/file/{reference}/prendre")
    assert "Pas encore branché" not in (await cora.get(f"/file/{reference}")).text
    console.app.services.relay.unplugged = UNPLUGGED
    assert "Pas encore branché" in (await cora.get(f"/file/{reference}")).text
    assert "Pas encore branché" in (await cora.get("/annuaire")).text
