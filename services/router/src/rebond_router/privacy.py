"""Erasure and anonymisation of what the router keeps about a person.

The router's personal data is the referral it may re-offer (`template`: the ReferralV1 with the
contact copy) and outputs not yet published (`router_outbox`). The rest of a referral's row is
about the routing and kept for the statistics, but tells whether the person said they are in
distress (see `rebond_router.store`).

* Erasure: the person withdrew (an event on `privacy.erasures`): `Router.on_erasure` withdraws
  each referral of the reference and the store forgets it (rows, offers, unpublished outputs),
  which stops its lifecycle (no more reminders, expiries or re-orientations; a late answer
  finds nothing to answer); only the tombstone remains (the reference's SHA-256 and the time),
  so that a questionnaire or an answer read later changes nothing.
* `anonymise`: referrals untouched for the retention period lose their contact copy, and
  outputs left unpublished that long are dropped (`python -m rebond_router anonymise`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, delete, update

from rebond_router.store import OUTBOX, Store, referrals

log = structlog.get_logger(__name__)


async def erased(store: Store, reference: str) -> bool:
    """Whether the person behind `reference` asked for erasure."""
    async with store.transaction() as tx:
        return await tx.erased(reference)


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
        outbox = OUTBOX.table
        stale = connection.execute(delete(outbox).where(outbox.c.created_at < cutoff))
        return Anonymised(int(copies.rowcount or 0), int(stale.rowcount or 0))

    done = await store.database.run(drop)
    log.info("anonymised", referrals=done.referrals, outputs=done.outputs, retention=str(retention))
    return done
