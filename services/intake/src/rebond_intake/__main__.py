"""`python -m rebond_intake` (or `rebond-intake`): serve the API on INTAKE_HOST:INTAKE_PORT.

`python -m rebond_intake migrate` brings the store to the latest of its Alembic migrations and
exits (a Kubernetes Job or init container; the service does it itself at start unless
INTAKE_MIGRATE_ON_START=false).

`python -m rebond_intake anonymise` lets idempotency keys older than INTAKE_RETENTION_DAYS
expire (intake's store holds no personal data: references, hashes, statuses and dates only).
"""

import asyncio
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import uvicorn

from rebond_http import private
from rebond_intake.app import create_app
from rebond_intake.settings import IntakeSettings
from rebond_intake.store import SqlStatusStore, migrate
from rebond_observability.logging import configure_logging
from rebond_service import command


async def _anonymise(settings: IntakeSettings) -> None:
    store = SqlStatusStore(settings.store_url)
    await store.start()
    try:
        before = datetime.now(UTC) - timedelta(days=settings.retention_days)
        print(f"rebond-intake: {await store.expire(before)} idempotency keys expired")
    finally:
        await store.close()


def build_server(settings: IntakeSettings) -> tuple[uvicorn.Server, list[socket.socket]]:
    """The app's server and its sockets: INTAKE_HOST:INTAKE_PORT, and INTAKE_INTERNAL_PORT when
    set; uvicorn's proxy headers off, so only INTAKE_TRUSTED_PROXIES says who the client is
    (`rebond_http`)."""
    return private.server_for(
        create_app(settings),
        settings,
        # Named rather than left to "auto", which falls back to asyncio and h11 unnoticed when
        # uvloop or httptools is missing; both come with uvicorn[standard].
        loop="uvloop",
        http="httptools",
    )


def _migrate(settings: IntakeSettings) -> None:
    migrate(settings.store_url)
    print("rebond-intake: store migrated")


def main() -> None:
    settings = IntakeSettings()
    configure_logging(settings.log_level)
    commands: dict[str, Callable[[], object]] = {
        "migrate": partial(_migrate, settings),
        "anonymise": lambda: asyncio.run(_anonymise(settings)),
    }
    command.run(commands, partial(build_server, settings), program="rebond-intake", usage=__doc__)


if __name__ == "__main__":
    main()
