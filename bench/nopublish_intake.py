"""The intake app exactly as in production, with publishing switched off (benchmark baseline).

A stand-in publisher acknowledges at once; nothing reaches Kafka. Lives in bench/ on purpose:
production code has no switch that accepts a submission without Kafka.
"""

import os

import uvicorn

from rebond_contracts.envelope import Envelope
from rebond_contracts.payloads import ErasureRequestedV1, QuestionnaireCompletedV1
from rebond_intake.app import build
from rebond_intake.settings import IntakeSettings
from rebond_observability.logging import configure_logging


class AcknowledgeAtOnce:
    async def publish(self, event: Envelope[QuestionnaireCompletedV1]) -> None:
        return None

    async def publish_erasure(self, event: Envelope[ErasureRequestedV1]) -> None:
        return None

    def ready(self) -> bool:
        return True


if __name__ == "__main__":
    settings = IntakeSettings()
    configure_logging(settings.log_level)  # as `python -m rebond_intake` does: same log cost
    uvicorn.run(
        build(settings, publisher=AcknowledgeAtOnce()).web,
        host="127.0.0.1",
        port=int(os.environ["INTAKE_PORT"]),
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
