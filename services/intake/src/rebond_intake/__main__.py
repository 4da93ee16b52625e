"""`python -m rebond_intake` (or `rebond-intake`): serve the API on INTAKE_HOST:INTAKE_PORT.

`python -m rebond_intake migrate` brings the store to the latest of its Alembic migrations and
exits (a Kubernetes Job or init container; the service does it itself at start unless
INTAKE_MIGRATE_ON_START=false).

`python -m rebond_intake anonymise` lets idempotency keys older than INTAKE_RETENTION_DAYS
expire (intake's store holds no personal data: references, hashes, statuses and dates only).
"""

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from rebond_service import command

# The service's modules are imported where they are used (`rebond_service.command` says why).
if TYPE_CHECKING:
    import uvicorn

    from rebond_intake.settings import IntakeSettings


async def _anonymise(settings: "IntakeSettings") -> None:
    from rebond_intake.store import SqlStatusStore

    store = SqlStatusStore(settings.store_url)
    await store.start()
    try:
        before = datetime.now(UTC) - timedelta(days=settings.retention_days)
        print(f"rebond-intake: {await store.expire(before)} idempotency keys expired")
    finally:
        await store.close()


def build_server(settings: "IntakeSettings") -> tuple["uvicorn.Server", list[socket.socket]]:
    """The app's server and its sockets: INTAKE_HOST:INTAKE_PORT, and INTAKE_INTERNAL_PORT when
    set; uvicorn's proxy headers off, so only INTAKE_TRUSTED_PROXIES says who the client is
    (`rebond_http`)."""
    from rebond_http import private
    from rebond_intake.app import create_app

    return private.server_for(
        create_app(settings),
        settings,
        # Named rather than left to "auto", which falls back to asyncio and h11 unnoticed when
        # uvloop or httptools is missing; both come with uvicorn[standard].
        loop="uvloop",
        http="httptools",
    )


def _migrate(settings: "IntakeSettings") -> None:
    from rebond_intake.store import migrate

    migrate(settings.store_url)
    print("rebond-intake: store migrated")


def _settings() -> "IntakeSettings":
    from rebond_intake.settings import IntakeSettings

    return IntakeSettings()


def main() -> None:
    commands = {
        "migrate": _migrate,
        "anonymise": lambda settings: asyncio.run(_anonymise(settings)),
    }
    command.run(commands, build_server, settings=_settings, program="rebond-intake", usage=__doc__)


if __name__ == "__main__":
    main()
