"""The notifier's composition root: a Kafka consumer plus a small HTTP server for health."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker

from rebond_notifier.consumer import build_broker
from rebond_notifier.settings import NotifierSettings

log = structlog.get_logger(__name__)


async def start_forever(broker: KafkaBroker, max_backoff_s: float = 10.0) -> None:
    """Start consuming, retrying with backoff while Kafka is unreachable."""
    backoff = 0.5
    while True:
        try:
            await broker.start()
        except (KafkaError, OSError) as error:
            log.warning("kafka_unreachable", error=type(error).__name__, retry_in_s=backoff)
            await broker.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
        else:
            log.info("kafka_connected")
            return


def create_app(
    settings: NotifierSettings | None = None, broker: KafkaBroker | None = None
) -> FastAPI:
    settings = settings or NotifierSettings()
    broker = broker or build_broker(settings)
    started: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal started
        started = asyncio.create_task(start_forever(broker))
        try:
            yield
        finally:
            started.cancel()
            with suppress(asyncio.CancelledError):
                await started
            await broker.stop()

    app = FastAPI(title="Rebond notifier", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = started is not None and started.done() and await broker.ping(timeout=2.0)
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"kafka": "connected" if ready else "unreachable"},
        )

    return app
