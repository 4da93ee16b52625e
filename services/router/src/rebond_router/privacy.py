"""Erasure and anonymisation of what the router keeps about a person.

The router's personal data is the referral it may re-offer (`template`: the ReferralV1 with the
contact copy) and outputs not yet published (`router_outbox`). The rest of a referral's row is
about the routing and kept for the statistics, but tells whether the person said they are in
distress (see `rebond_router.store`).

* `erase`: the person withdrew (an event on `privacy.erasures`): the referral's row, its offers
  and its unpublished outputs are deleted, which stops its lifecycle (no more reminders,
  expiries or re-orientations; a late answer finds nothing to answer), and only the tombstone
  remains (the reference's SHA-256 and the time), so that a questionnaire or an answer read
  later changes nothing.
* `anonymise`: referrals untouched for the retention period lose their contact copy, and
  outputs left unpublished that long are dropped (`python -m rebond_router anonymise`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, delete, update

from rebond_router.store import Store, erasures, forget, outbox, referrals
from rebond_sql.erasure import erased_among, lock_references, reference_digest

log = structlog.get_logger(__name__)


async def erase(store: Store, reference: str, now: datetime) -> bool:
    """Keep the tombstone of `reference` and delete the rest; False if it was erased before.

    The deletion runs again on a repeated erasure: it is idempotent, and no earlier row (an
    old router's answer whose forged id looked like an erasure marker) can make it a no-op."""

    def run(connection: Connection) -> bool:
        lock_references(connection, [reference], erasing=True)
        new = not erased_among(connection, erasures, [reference])
        if new:
            connection.execute(
                erasures.insert().values(
                    reference_sha256=reference_digest(reference), erased_at=now
                )
            )
        forget(connection, reference)
        return new

    new = await store.database.run(run)
    log.info("referral_erased" if new else "erasure_repeated")
    return new


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
        stale = connection.execute(delete(outbox).where(outbox.c.created_at < cutoff))
        return Anonymised(int(copies.rowcount or 0), int(stale.rowcount or 0))

    done = await store.database.run(drop)
    log.info("anonymised", referrals=done.referrals, outputs=done.outputs, retention=str(retention))
    return done
