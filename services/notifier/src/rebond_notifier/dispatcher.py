"""Drains the delivery log: one lane per (channel, association), lanes run concurrently.

A slow or failing association only holds its own lane; the Kafka consumer never waits for an
e-mail or a webhook, it only records them (see `consumer.py`). Each final outcome is published
as a `DeliveryV1`, from the store, until Kafka acknowledges it (an outbox); e-mails about a
conference registration have no submission reference and publish no outcome.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import DeliveryChannel, DeliveryOutcome, DeliveryV1
from rebond_notifier.channels import Failed, Mailer, Retry, WebhookPoster, retry_delay
from rebond_notifier.config import AssociationChannels
from rebond_notifier.store import DEAD_LETTERED, FAILED, SENT, Delivery, DeliveryStore
from rebond_notifier.templates import Mail

log = structlog.get_logger(__name__)

#: Event ids of outcomes are derived from the delivery, so a republished outcome is recognisable.
OUTCOME_NAMESPACE = uuid.UUID("6f1c1c52-4a57-4c56-9c43-1f0c1f4a3b10")

OutcomePublisher = Callable[[DeliveryV1, str, str], Awaitable[Awaitable[object]]]
"""Hands (outcome, event id, correlation id) to the producer and returns an awaitable that
completes when Kafka acknowledged it, or raises."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_s: float = 2.0
    cap_s: float = 300.0
    lease_s: float = 120.0
    webhook_timeout_s: float = 10.0


def outcome_event(delivery: Delivery, outcome: str) -> tuple[DeliveryV1, str] | None:
    """The outcome to publish, or None for a delivery about no submission reference (the
    e-mails about conference registrations: `DeliveryV1` is keyed by a reference)."""
    if not delivery.reference:
        return None
    about_referral = bool(delivery.association_id)  # conference e-mails belong to no association
    event = DeliveryV1(
        reference=delivery.reference,
        referral_id=uuid.UUID(delivery.referral_id) if about_referral else None,
        association_id=AssociationId(delivery.association_id) if about_referral else None,
        channel=DeliveryChannel(delivery.channel),
        outcome=DeliveryOutcome(outcome),
        attempts=max(1, delivery.attempts),
        at=datetime.now(UTC),
    )
    key = f"{delivery.referral_id}:{delivery.channel}:{delivery.kind}:{outcome}"
    return event, str(uuid.uuid5(OUTCOME_NAMESPACE, key))


class Dispatcher:
    def __init__(
        self,
        store: DeliveryStore,
        mailer: Mailer,
        webhooks: WebhookPoster,
        associations: Mapping[AssociationId, AssociationChannels],
        publish_outcome: OutcomePublisher,
        policy: RetryPolicy,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.webhooks = webhooks
        self.associations = associations
        self.publish_outcome = publish_outcome
        self.policy = policy
        self.poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._lanes: dict[tuple[str, str], asyncio.Task[None]] = {}

    def wake(self) -> None:
        """New work was recorded: look at once instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self._publish_outcomes()
                    await self._start_lanes()
                except Exception:  # the store or Kafka is down: log, wait, look again
                    log.exception("dispatch_round_failed")
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        finally:
            for task in self._lanes.values():
                task.cancel()
            for task in list(self._lanes.values()):
                with suppress(asyncio.CancelledError):
                    await task

    async def _start_lanes(self) -> None:
        by_lane: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in await self.store.due():
            by_lane.setdefault(delivery.lane, []).append(delivery)
        for lane, items in by_lane.items():
            if lane in self._lanes:
                continue
            task = asyncio.create_task(self._run_lane(items), name=f"lane:{lane[0]}:{lane[1]}")
            self._lanes[lane] = task
            task.add_done_callback(lambda _t, lane=lane: self._lane_done(lane))

    def _lane_done(self, lane: tuple[str, str]) -> None:
        self._lanes.pop(lane, None)
        self._wake.set()

    async def _run_lane(self, items: list[Delivery]) -> None:
        for delivery in items:
            try:
                if await self.store.claim(delivery.id, self.policy.lease_s):
                    await self._deliver(delivery)
            except asyncio.CancelledError:
                raise
            except Exception:  # one broken delivery must not stop its lane; the lease expires
                log.exception("delivery_crashed", delivery_id=delivery.id, channel=delivery.channel)

    async def _deliver(self, delivery: Delivery) -> None:
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
                await self.store.finish(delivery.id, DEAD_LETTERED, attempt, str(error))
                log.warning("delivery_dead_lettered", error=str(error), **context)
            else:
                delay = retry_delay(attempt, self.policy.base_s, self.policy.cap_s)
                await self.store.retry_later(delivery.id, attempt, time.time() + delay, str(error))
                log.info("delivery_retry", error=str(error), retry_in_s=delay, **context)
                self._schedule_wake(delay)
                return
        except Failed as error:
            await self.store.finish(delivery.id, FAILED, attempt, str(error))
            log.warning("delivery_failed", error=str(error), **context)
        else:
            await self.store.finish(delivery.id, SENT, attempt)
            log.info("delivery_sent", **context)
        self._wake.set()

    def _schedule_wake(self, delay_s: float) -> None:
        asyncio.get_running_loop().call_later(delay_s, self._wake.set)

    async def _perform(self, delivery: Delivery) -> None:
        payload = delivery.payload or {}
        if delivery.channel == DeliveryChannel.WEBHOOK:
            channels = self.associations[AssociationId(delivery.association_id)]
            if channels.webhook_url is None or channels.webhook_secret is None:
                raise Failed("no webhook configured any more")
            timeout = channels.webhook_timeout_s or self.policy.webhook_timeout_s
            await self.webhooks.post(
                channels.webhook_url,
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

    async def _publish_outcomes(self) -> None:
        """Publish the final outcomes not yet published, all in flight together; mark those
        Kafka acknowledged, then raise the first failure (the rest go out next round)."""
        pending = await self.store.unpublished_outcomes()
        done: list[int] = []  # nothing to publish (no reference), or acknowledged
        in_flight: list[tuple[int, Awaitable[object]]] = []
        failure: BaseException | None = None
        for delivery in pending:
            outcome = outcome_event(delivery, delivery.status)
            if outcome is None:
                done.append(delivery.id)
                continue
            try:
                ack = await self.publish_outcome(*outcome, delivery.correlation_id)
            except Exception as error:  # not even handed over (Kafka down): stop here
                failure = error
                break
            in_flight.append((delivery.id, ack))
        results = await asyncio.gather(*(ack for _, ack in in_flight), return_exceptions=True)
        for (delivery_id, _), result in zip(in_flight, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                done.append(delivery_id)
        await self.store.mark_published(done)
        if failure is not None:
            raise failure
