"""Hands the outbox's messages to the `Outbound` port, in order, until each is taken.

A page flushes right after its transaction commits, so a message usually leaves at once; the
background loop sends again whatever is left (the port was down, the process restarted).
Messages are sent in outbox order and a failure stops the round, so a later message never
overtakes an earlier one (an override and the one that corrects it arrive in that order).
A message sent but not marked (a crash between the two) is sent again: consumers drop it by
its `message_id`.
"""

import asyncio

import structlog
from pydantic import TypeAdapter

from rebond_coordination.ports import Outbound, OutboundMessage, OutboundUnavailable
from rebond_coordination.store import Store
from rebond_sql.types import Clock

log = structlog.get_logger(__name__)
_messages: TypeAdapter[OutboundMessage] = TypeAdapter(OutboundMessage)


class Relay:
    def __init__(self, store: Store, outbound: Outbound, clock: Clock) -> None:
        self.store = store
        self.outbound = outbound
        self.clock = clock
        self._lock = asyncio.Lock()

    async def flush(self) -> int:
        """Send what is pending; how many were sent. Stops at the first refusal."""
        sent = 0
        async with self._lock:  # one round at a time: the order holds
            for seq, payload in await self.store.pending_messages():
                message = _messages.validate_python(payload)
                try:
                    await self.outbound.publish(message)
                except OutboundUnavailable as error:
                    await self.store.message_failed(seq, str(error))
                    log.warning("outbound_unavailable", kind=message.kind, error=str(error))
                    break
                await self.store.message_sent(seq, self.clock())
                sent += 1
        return sent

    async def flush_quietly(self) -> None:
        """`flush` after a page's transaction: whatever goes wrong, the page has done its work
        (the message is safe in the outbox) and the background loop tries again."""
        try:
            await self.flush()
        except Exception:  # logged; the loop retries
            log.exception("relay_flush_failed")

    async def run_forever(self, interval_s: float) -> None:
        while True:
            try:
                await self.flush()
            except Exception:  # the store may be down: the next round tries again
                log.exception("relay_round_failed")
            await asyncio.sleep(interval_s)
