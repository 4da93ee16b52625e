"""Intake's composition root: builds the app and its adapters; tests pass fakes instead."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from rebond_intake.api import router
from rebond_intake.publisher import KafkaSubmissionPublisher, SubmissionPublisher, build_broker
from rebond_intake.settings import IntakeSettings


def create_app(
    settings: IntakeSettings | None = None, publisher: SubmissionPublisher | None = None
) -> FastAPI:
    settings = settings or IntakeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if publisher is not None:
            app.state.publisher = publisher
            yield
            return
        kafka = KafkaSubmissionPublisher(
            build_broker(settings.kafka_bootstrap_servers), settings.publish_timeout_s
        )
        app.state.publisher = kafka
        connecting = asyncio.create_task(kafka.connect_forever())
        try:
            yield
        finally:
            connecting.cancel()
            with suppress(asyncio.CancelledError):
                await connecting
            await kafka.close()

    app = FastAPI(
        title="Rebond intake",
        version="1.0.0",
        description="Le questionnaire du Portail du rebond des entrepreneurs.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(router)
    return app
