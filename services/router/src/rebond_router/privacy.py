"""Erasure and anonymisation of what the router keeps about a person.

The router's only personal data is the referral it may re-offer (`template`: the ReferralV1 with
the contact copy) and outputs not yet published (`router_outbox`). Scores, candidates, reasons,
statuses and dates are about the routing, not the person, and are kept for the statistics.

* `erase`: the person withdrew (an event on `privacy.erasures`): the referral's lifecycle stops
  (status `erased`: no more reminders, expiries or re-orientations), the contact copy and any
  unpublished output are dropped, and a questionnaire arriving later is not routed.
* `anonymise`: referrals untouched for the retention period lose their contact copy, and
  outputs left unpublished that long are dropped (`python -m rebond_router anonymise`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, delete, update

from rebond_router.store import Store, outbox, referrals

log = structlog.get_logger(__name__)
ERASED = "erased"


def erasure_key(reference: str) -> str:
    """The `router_handled_events` key remembering that `reference` was erased."""
    return f"erasure:{reference}"


async def erase(store: Store, reference: str, now: datetime) -> bool:
    """Stop the referral of `reference` and drop its personal data; False if already done."""
    stop = (
        update(referrals)
        .where(referrals.c.reference == reference)
        .values(
            status=ERASED,
            template=None,
            candidates=[],
            deadline=None,
            remind_at=None,
            version=referrals.c.version + 1,
            updated_at=now,
        )
    )
    unpublished = delete(outbox).where(outbox.c.reference == reference)

    def drop(connection: Connection) -> None:
        connection.execute(stop)
        connection.execute(unpublished)

    async with store.transaction() as tx:
        if await tx.already_handled(erasure_key(reference)):
            return False
        await tx.mark_handled(erasure_key(reference), now)
        await tx.run(drop)
    log.info("referral_erased")
    return True


async def erased(store: Store, reference: str) -> bool:
    """Whether the person behind `reference` asked for erasure."""
    async with store.transaction() as tx:
        return await tx.already_handled(erasure_key(reference))


@dataclass(frozen=True)
class Anonymised:
    referrals: int
    outputs: int


async def anonymise(store: Store, now: datetime, retention: timedelta) -> Anonymised:
    """Drop the contact copies of referrals unchanged since `now - retention`, and outputs
    still unpublished since then. Idempotent; safe while the router runs."""
    cutoff = now - retention

    def drop(connection: Connection) -> Anonymised:
        copies = connection.execute(
            update(referrals)
            .where(referrals.c.updated_at < cutoff, referrals.c.template.is_not(None))
            .values(template=None, version=referrals.c.version + 1)
        )
        stale = connection.execute(delete(outbox).where(outbox.c.created_at < cutoff))
        return Anonymised(int(copies.rowcount or 0), int(stale.rowcount or 0))

    done = await store.database.run(drop)
    log.info("anonymised", referrals=done.referrals, outputs=done.outputs, retention=str(retention))
    return done
