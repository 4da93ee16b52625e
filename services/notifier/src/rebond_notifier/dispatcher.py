"""Drains the delivery log: one lane per (channel, association), lanes run concurrently.

A slow or failing association only holds its own lane; the Kafka consumer never waits for an
e-mail or a webhook, it only records them (see `consumer.py`). Each final outcome is written to
the outbox as a `DeliveryV1` with the delivery's final status (`DeliveryStore.finish`); e-mails
about a conference registration have no submission reference and publish no outcome.

Each round flushes the outbox (`rebond_sql.outbox.Relay`), and is so also its periodic task:
first the messages this process wrote since the last round (its outcomes, and the answers given
through the links: the answer page says `publish_soon` once it committed one), then any
message that waited longer than `stale_after` (a crashed instance's, or one whose flush failed).
Another live instance's fresh messages are left to it: two instances publishing one message at
the same moment would send it twice (recognisable by its event id, but for nothing).

The store is asked as little as the guarantees allow: a lane claims its deliveries a chunk at a
time (one statement), records each outcome as soon as it is known (one transaction, which also
says whether the next one is still to be sent), and a round (flush the outbox, look for due
work) follows a chunk or a wake, not every delivery. A chunk's end only has the outbox flushed:
what is due is read again only when there may be something new to start (work recorded, a lane
ended, a retry's or the poll's time came). Read at each chunk's end, the due deliveries of a
backlog were scanned again and again past those of the lanes at work, which left them out one
row at a time: a backlog's drain cost grew with its length.
"""

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DeliveryChannel
from rebond_kafka.backoff import Backoff
from rebond_notifier.channels import (
    Failed,
    Mailer,
    Retry,
    Unbuildable,
    WebhookPoster,
    retry_delay,
)
from rebond_notifier.config import AssociationChannels
from rebond_notifier.store import Delivery, DeliveryStatus, DeliveryStore, Lease
from rebond_notifier.templates import Mail
from rebond_sql.outbox import Relay
from rebond_sql.types import Clock, utc_now

log = structlog.get_logger(__name__)

#: Most deliveries one claim takes: past a few, the claim costs little beside the deliveries,
#: and a worker killed mid-chunk leaves fewer of them waiting for their lease to end.
MAX_CHUNK = 16


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_s: float = 2.0
    cap_s: float = 300.0
    lease_s: float = 120.0
    webhook_timeout_s: float = 10.0
    smtp_timeout_s: float = 10.0


def chunk_size(lease_s: float, timeout_s: float) -> int:
    """How many deliveries of a lane one claim takes.

    The whole chunk is leased at once, and the last of it waits for all the others: its lease
    must not end before it is sent, or another replica may claim and send it too. A delivery
    whose server does not answer lasts about its timeout (the lane's webhook timeout, the SMTP
    timeout), so a chunk of `lease_s / 2 / timeout_s` deliveries that all time out is through
    with half of its lease to spare (120 s and 10 s: 6). The timeouts bound each network step,
    though, not a whole attempt (connecting, then each read; each SMTP command), so a rare
    attempt lasts several of them: `Dispatcher._run_chunk` also never starts a delivery with
    less than half of the lease left, and hands the rest back to be claimed afresh."""
    return max(1, min(MAX_CHUNK, int(lease_s / 2 // timeout_s)))


class Dispatcher:
    def __init__(
        self,
        store: DeliveryStore,
        mailer: Mailer,
        webhooks: WebhookPoster,
        associations: Mapping[AssociationId, AssociationChannels],
        relay: Relay,
        policy: RetryPolicy,
        poll_interval_s: float = 30.0,
        gather_s: float = 0.01,
        clock: Clock = utc_now,
        stale_after: timedelta = timedelta(seconds=10),
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.webhooks = webhooks
        self.associations = associations
        self.relay = relay
        self.policy = policy
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.gather_s = gather_s
        self.stale_after = stale_after
        #: Subjects this process wrote outbox messages about since the last round.
        self._to_publish: set[str] = set()
        self._wake = asyncio.Event()
        #: Whether the next round reads what is due: not after a chunk's end (see the module).
        self._look = True
        self._lanes: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._stopping = False

    def wake(self) -> None:
        """New work was recorded: look at once instead of at the next poll."""
        self._look = True
        self._wake.set()

    def publish_soon(self, subject: str) -> None:
        """A message about `subject` was committed to the outbox: publish it at once (the next
        round, woken now)."""
        self._to_publish.add(subject)
        self.wake()

    async def stop(self, grace_s: float | None = None) -> None:
        """Start nothing more: each lane ends the delivery in flight (for at most `grace_s`,
        by default the longest a server may take to answer) and hands back the rest of its
        chunk; then `run` returns. A lane still busy after that is cancelled, its delivery
        keeping its lease: only such a lane may be cut off inside a store transaction."""
        self._stopping = True
        self._wake.set()
        lanes = list(self._lanes.values())
        if not lanes:
            return
        if grace_s is None:
            own = [c.webhook_timeout_s or 0.0 for c in self.associations.values()]
            grace_s = 1.0 + max(self.policy.smtp_timeout_s, self.policy.webhook_timeout_s, *own)
        _, late = await asyncio.wait(lanes, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def run(self) -> None:
        # A failed round (the store or Kafka down) is tried again after a growing, jittered
        # delay, up to 30 s, not at every wake: one traceback a second for as long as an
        # outage lasts said nothing more than the first.
        failures = Backoff(first_s=min(1.0, self.poll_interval_s),
                           cap_s=max(30.0, self.poll_interval_s))  # fmt: skip
        try:
            while not self._stopping:
                self._wake.clear()
                look, self._look = self._look, False
                try:
                    await self._flush(stale_too=look)
                    if look:
                        await self._start_lanes()
                    wait_s = await self._until_due()
                    failures.reset()
                except Exception:  # the store or Kafka is down: log, wait, look again
                    self._look = True
                    wait_s = failures.next_delay()
                    log.exception("dispatch_round_failed", retry_in_s=round(wait_s, 2))
                # Not `asyncio.wait_for`: on Python 3.11 it swallows a cancel that arrives as
                # the wake does, and `run` would then go on after its task was cancelled.
                try:
                    async with asyncio.timeout(wait_s):
                        await self._wake.wait()
                except TimeoutError:  # something fell due, or the fallback poll
                    self._look = True
                # Wakes come in bursts (lanes ending chunks, decisions recorded one after
                # another): a moment's wait lets one round serve them all.
                await asyncio.sleep(self.gather_s)
        finally:
            if not self._stopping:  # cancelled: `stop` would have let the lanes end
                for task in self._lanes.values():
                    task.cancel()
                for task in list(self._lanes.values()):
                    with suppress(asyncio.CancelledError):
                        await task

    async def _until_due(self) -> float:
        """How long the next round may wait for a wake: until the earliest time something this
        process knows of falls due (a delivery's next attempt or the end of another worker's
        lease, an outbox message becoming stale), at most `poll_interval_s`. Idle, the
        dispatcher thus reads nothing until then, however long its history: what this process
        records wakes it (`wake`, `publish_soon`, a retry's timer), and lanes at work wake a
        round at each chunk's end, so while any runs it only waits for them. Only what another
        replica recorded, and then could not send, waits for the `poll_interval_s` fallback."""
        if self._lanes or self._stopping:
            return self.poll_interval_s
        now = self.clock()
        times = [
            await self.store.next_due(now=now),
            await self.relay.stale_at(self.stale_after),
        ]
        due = min((t for t in times if t is not None), default=None)
        if due is None:
            return self.poll_interval_s
        return min(self.poll_interval_s, max(0.0, (due - now).total_seconds()))

    async def _flush(self, *, stale_too: bool = True) -> None:
        """Publish what this process wrote, then (`stale_too`: not at a chunk's end, where
        only this process's outcomes are new) whatever waited longer than `stale_after` (see
        the module). Subjects whose flush failed are tried again next round."""
        subjects, self._to_publish = self._to_publish, set()
        try:
            if subjects:
                await self.relay.flush(sorted(subjects))
        except BaseException:
            self._to_publish |= subjects
            raise
        if stale_too:
            await self.relay.flush(older_than=self.stale_after)

    async def _start_lanes(self) -> None:
        """Start a lane for each (channel, association) with due work and none at it. The
        lanes' first chunks are claimed together, in one statement: a trickle of decisions
        wakes rounds that each start a lane or two per association, which otherwise cost a
        claim each, for a delivery or two."""
        if self._stopping:
            return
        by_lane: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in await self.store.due(now=self.clock(), except_lanes=list(self._lanes)):
            by_lane.setdefault(delivery.lane, []).append(delivery)
        if not by_lane:
            return
        for items in by_lane.values():
            items.sort(key=lambda d: d.id)
        sizes = {lane: chunk_size(self.policy.lease_s, self._timeout_s(items[0]))
                 for lane, items in by_lane.items()}  # fmt: skip
        first = [d.id for lane, items in by_lane.items() for d in items[: sizes[lane]]]
        lease = await self.store.claim_many(
            first, timedelta(seconds=self.policy.lease_s), now=self.clock()
        )
        for lane, items in by_lane.items():
            ids = {d.id for d in items[: sizes[lane]]}
            claimed = Lease(tuple(i for i in lease.ids if i in ids), lease.until)
            task = asyncio.create_task(
                self._run_lane(items, claimed), name=f"lane:{lane[0]}:{lane[1]}"
            )
            self._lanes[lane] = task

            def done(_t: "asyncio.Task[None]", lane: tuple[str, str] = lane) -> None:
                self._lane_done(lane)

            task.add_done_callback(done)

    def _lane_done(self, lane: tuple[str, str]) -> None:
        """The lane may have left work behind (more than it was given, or failed): look."""
        self._lanes.pop(lane, None)
        self.wake()

    async def _run_lane(self, items: list[Delivery], claimed: Lease) -> None:
        """Claim the lane's deliveries a chunk at a time, send each one after the other; each
        chunk's end wakes a round, which flushes the outbox (the outcomes) and reads nothing
        else: the lane's end is what has the due deliveries read again. The first chunk was
        claimed already (`claimed`, by `_start_lanes`)."""
        waiting = sorted(items, key=lambda d: d.id)
        size = chunk_size(self.policy.lease_s, self._timeout_s(waiting[0]))
        lease: Lease | None = claimed
        try:
            while waiting and not self._stopping:
                chunk, waiting = waiting[:size], waiting[size:]
                waiting = await self._run_chunk(chunk, lease) + waiting
                lease = None
                self._wake.set()
            if lease is not None and lease.ids:  # stopped before its first chunk: hand it back
                await self.store.release(lease)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store is down: what is left stays due, for a later round
            log.exception("delivery_lane_stopped", lane=items[0].lane)

    async def _run_chunk(self, chunk: list[Delivery], lease: Lease | None) -> list[Delivery]:
        """Claim `chunk` in one statement (unless `lease` already holds it) and deliver what
        was taken; returns what was handed back unsent. Before each delivery after the first,
        the store has said (in the previous delivery's own transaction) that it is still
        pending: an erasure recorded meanwhile stops it, as it stopped an unclaimed one."""
        lease_for = timedelta(seconds=self.policy.lease_s)
        if lease is None:
            lease = await self.store.claim_many([d.id for d in chunk], lease_for, now=self.clock())
        held = set(lease.ids)
        for delivery in chunk:
            if delivery.id not in held:
                continue
            if self._stopping or self.clock() > lease.until - lease_for / 2:
                # stopping, or too little lease left to begin (see `chunk_size`)
                unsent = [d for d in chunk if d.id in held]  # this one and those after it
                await self.store.release(Lease(tuple(d.id for d in unsent), lease.until))
                return unsent
            rest = lease.after(delivery.id)
            try:
                held = set(await self._attempt(delivery, rest))
            except asyncio.CancelledError:
                await self._release_on_stop(rest)
                raise
        return []

    async def _attempt(self, delivery: Delivery, rest: Lease) -> list[int]:
        """Deliver; returns those of `rest` still held and pending."""
        try:
            return await self._deliver(delivery, rest)
        except asyncio.CancelledError:
            raise
        except Exception:  # one broken delivery must not stop its lane; its lease expires
            log.exception("delivery_crashed", delivery_id=delivery.id, channel=delivery.channel)
            return await self.store.held(rest)

    async def _release_on_stop(self, rest: Lease) -> None:
        """On shutdown, hand back the chunk's deliveries not yet begun, so that a restarted or
        another replica need not wait for their lease. The one in flight stays held: it may
        have been sent, and its lease keeps it from being sent again at once."""
        try:
            await self.store.release(rest)
        except Exception:  # their lease ends in any case
            log.exception("lease_release_failed", deliveries=len(rest.ids))

    def _timeout_s(self, delivery: Delivery) -> float:
        """How long one attempt of the lane may wait for its server (as `_perform` sets it)."""
        if delivery.channel != DeliveryChannel.WEBHOOK:
            return self.policy.smtp_timeout_s
        channels = self.associations.get(AssociationId(delivery.association_id))
        own = channels.webhook_timeout_s if channels is not None else None
        return own or self.policy.webhook_timeout_s

    async def _deliver(self, delivery: Delivery, rest: Lease) -> list[int]:
        """Attempt and record the outcome; the record's transaction also returns which of
        `rest` are still held and pending."""
        attempt = delivery.attempts + 1
        context = {
            "reference": delivery.reference,
            "channel": delivery.channel,
            "kind": delivery.kind,
            "association": delivery.association_id,
            "attempt": attempt,
        }
        try:
            await self._perform(delivery)
        except Retry as error:
            if attempt >= self.policy.max_attempts:
                held = await self._finish(delivery, DeliveryStatus.DEAD_LETTERED, attempt,
                                          str(error), rest)  # fmt: skip
                log.warning("delivery_dead_lettered", error=str(error), **context)
                return held
            delay = retry_delay(attempt, self.policy.base_s, self.policy.cap_s)
            at = self.clock() + timedelta(seconds=delay)
            held = await self.store.retry_later(
                delivery.id, attempt, at, str(error), then_check=rest
            )
            log.info("delivery_retry", error=str(error), retry_in_s=delay, **context)
            self._schedule_wake(delay)
            return held
        except Failed as error:
            held = await self._finish(delivery, DeliveryStatus.FAILED, attempt, str(error), rest)
            log.warning("delivery_failed", error=str(error), **context)
            return held
        except Unbuildable as error:  # the same on every attempt: no retry, an operator looks
            held = await self._finish(delivery, DeliveryStatus.DEAD_LETTERED, attempt,
                                      str(error), rest)  # fmt: skip
            log.error("delivery_unbuildable", error=str(error), **context)
            return held
        held = await self._finish(delivery, DeliveryStatus.SENT, attempt, None, rest)
        log.info("delivery_sent", **context)
        return held

    async def _finish(
        self, delivery: Delivery, status: DeliveryStatus, attempt: int, error: str | None,
        rest: Lease,
    ) -> list[int]:  # fmt: skip
        held = await self.store.finish(
            delivery, status, attempt, error, then_check=rest, now=self.clock()
        )
        if delivery.reference:  # its outcome is in the outbox: the chunk's end publishes it
            self._to_publish.add(delivery.reference)
        return held

    def _schedule_wake(self, delay_s: float) -> None:
        asyncio.get_running_loop().call_later(delay_s, self.wake)

    async def _perform(self, delivery: Delivery) -> None:
        try:
            await self._send(delivery, delivery.payload or {})
        except KeyError as error:  # a row without what its channel needs: never sendable
            raise Unbuildable(f"delivery lacks {error}") from error

    async def _send(self, delivery: Delivery, payload: dict[str, Any]) -> None:
        if delivery.channel == DeliveryChannel.WEBHOOK:
            channels = self.associations[AssociationId(delivery.association_id)]
            # An antenna's webhook carries its URL (`planning._webhook`); it is signed with the
            # association's secret, and refused in clear in production like any webhook.
            url = payload.get("url") or channels.webhook_url
            if url is None:
                raise Failed("no webhook configured any more")
            if refusal := channels.webhook_refusal(url):
                raise Unbuildable(refusal)
            assert channels.webhook_secret is not None  # `webhook_refusal` said so
            timeout = channels.webhook_timeout_s or self.policy.webhook_timeout_s
            await self.webhooks.post(
                url,
                channels.webhook_secret,
                payload["body"].encode(),
                timeout,
                delivery.delivery_id,
            )
        else:
            await self.mailer.send(
                Mail(
                    to=payload["to"],
                    subject=payload["subject"],
                    text=payload["text"],
                    message_id=delivery.delivery_id,
                )
            )
