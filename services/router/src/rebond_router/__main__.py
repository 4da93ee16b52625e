"""`python -m rebond_router` (or `rebond-router`): route questionnaires, follow referrals.

`python -m rebond_router migrate` brings the store to the newest migration (a Kubernetes Job or
init container, with ROUTER_MIGRATE_ON_START=false on the service).

`python -m rebond_router anonymise` drops the contact copies kept longer than
ROUTER_RETENTION_DAYS (run it daily: cron, a Kubernetes CronJob).
"""

import asyncio
import socket
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from rebond_service import command

# The service's modules are imported where they are used (`rebond_service.command` says why).
if TYPE_CHECKING:
    import uvicorn

    from rebond_router.settings import RouterSettings


async def _anonymise(settings: "RouterSettings") -> None:
    from rebond_router.privacy import anonymise
    from rebond_router.store import Store

    store = Store.from_url(settings.database_url)
    try:
        done = await anonymise(store, datetime.now(UTC), timedelta(days=settings.retention_days))
        print(f"rebond-router: {done.referrals} referrals and {done.outputs} outputs anonymised")
    finally:
        await store.close()


def _migrate(settings: "RouterSettings") -> None:
    from rebond_router.store import migrate

    migrate(settings.database_url)
    print("rebond-router: the store is at the newest migration")


def _anonymise_now(settings: "RouterSettings") -> None:
    from rebond_router.store import migrate

    if settings.migrate_on_start:
        migrate(settings.database_url)
    asyncio.run(_anonymise(settings))


def build_server(settings: "RouterSettings") -> tuple["uvicorn.Server", list[socket.socket]]:
    """ROUTER_HOST:ROUTER_PORT, and ROUTER_INTERNAL_PORT (`/metrics`) when set."""
    from rebond_http import private
    from rebond_router.app import create_app
    from rebond_router.directory import DirectoryError

    try:
        app = create_app(settings)
    except DirectoryError as error:
        sys.exit(f"rebond-router: the association directory is not valid: {error}")
    return private.server_for(app, settings)


def _settings() -> "RouterSettings":
    from rebond_router.settings import RouterSettings

    return RouterSettings()


def main() -> None:
    commands = {"migrate": _migrate, "anonymise": _anonymise_now}
    command.run(commands, build_server, settings=_settings, program="rebond-router", usage=__doc__)


if __name__ == "__main__":
    main()
