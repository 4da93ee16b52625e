"""`python -m rebond_events` (or `rebond-events`): serve the Conférences du rebond.

`python -m rebond_events new-key ORGANISER` prints a new random API key for an organiser and the
JSON entry to put in EVENTS_ORGANISER_KEYS (only the hash is stored).

`python -m rebond_events migrate` brings the store to the latest revision of its migrations (a
Kubernetes init container or Job; the service does it at start unless EVENTS_MIGRATE_ON_START is
false).

`python -m rebond_events anonymise` anonymises registrations of conferences that ended more than
EVENTS_RETENTION_DAYS ago and deletes older invitations (run it daily: cron, a CronJob).
"""

import asyncio
import json
import secrets
import socket
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from rebond_service import command

# The service's modules are imported where they are used (`rebond_service.command` says why).
if TYPE_CHECKING:
    import uvicorn

    from rebond_events.privacy import Anonymised
    from rebond_events.settings import EventsSettings


def build_server(settings: "EventsSettings") -> tuple["uvicorn.Server", list[socket.socket]]:
    """The app's server and its sockets: EVENTS_HOST:EVENTS_PORT, and EVENTS_INTERNAL_PORT when
    set; uvicorn's proxy headers off, so only EVENTS_TRUSTED_PROXIES says who the client is
    (`rebond_http`)."""
    from rebond_events.app import create_app
    from rebond_http import private

    return private.server_for(create_app(settings), settings)


def _settings() -> "EventsSettings":
    from rebond_events.settings import EventsSettings

    return EventsSettings()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "new-key":
        from rebond_events.settings import hash_api_key

        key = secrets.token_urlsafe(32)
        print(f"API key for {sys.argv[2]} (give it to them, it is not stored): {key}")
        print(json.dumps({sys.argv[2]: hash_api_key(key)}))
        return
    commands = {"migrate": _migrate, "anonymise": _anonymise_now}
    command.run(commands, build_server, settings=_settings, program="rebond-events", usage=__doc__)


def _migrate(settings: "EventsSettings") -> None:
    from rebond_events.store import migrate

    migrate(settings.database_url)
    print("rebond-events: the store is at the latest revision")


def _anonymise_now(settings: "EventsSettings") -> None:
    from rebond_events.store import migrate

    if settings.migrate_on_start:
        migrate(settings.database_url)
    done = asyncio.run(_anonymise(settings))
    print(
        f"rebond-events: {done.registrations} registrations anonymised, "
        f"{done.invitations} invitations, {done.peer_requests} peer requests and "
        f"{done.unconfirmed_volunteers} unconfirmed volunteers deleted"
    )


async def _anonymise(settings: "EventsSettings") -> "Anonymised":
    from rebond_events.privacy import anonymise
    from rebond_events.store import Store

    store = Store(settings.database_url)
    try:
        work = partial(
            anonymise, now=datetime.now(UTC), retention=timedelta(days=settings.retention_days)
        )
        return await store.database.run(work)
    finally:
        await store.close()


if __name__ == "__main__":
    main()
