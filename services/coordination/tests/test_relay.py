"""The relay hands every kind of message to the outbound port, in outbox order."""

from rebond_coordination.domain import Role
from rebond_coordination.relay import Relay

from .conftest import Console, offer, queue_case


async def test_an_assignment_and_a_later_answer_leave_in_the_order_they_were_given(
    console: Console,
) -> None:
    """Both wait in the outbox while the port is down; once it is back, the assignment goes
    out first and the answer after it (no kind is held back any more)."""
    console.outbound.down = True
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
    answered = await marc.post(f"/boite/{referral_id}/reponse", {"answer": "accept"})
    assert answered.status_code == 303

    console.outbound.down = False
    assert await Relay(console.store, console.outbound, console.clock).flush() == 2
    assert [m.kind for m in console.outbound.sent] == ["assign", "answer"]
    assert await console.store.pending_messages() == []
