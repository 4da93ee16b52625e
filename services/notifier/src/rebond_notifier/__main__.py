"""`python -m rebond_notifier` (or `rebond-notifier`): referrals, e-mails, webhooks, answer pages.

`python -m rebond_notifier migrate` brings the delivery log to the latest Alembic migration (a
Kubernetes Job or init container; the service does it at start unless
NOTIFIER_MIGRATE_ON_START=false).
`python -m rebond_notifier anonymise` erases the message and error text of delivery rows older
than NOTIFIER_RETENTION_DAYS, and the people's addresses kept longer than
NOTIFIER_PERSON_CONTACT_DAYS (run it daily: cron, a Kubernetes CronJob).
`python -m rebond_notifier new-webhook-secret` prints a fresh webhook secret (`whsec_…`) to
hand to an association and to put where its `webhook_secret` points.
"""

import asyncio
import socket
import sys
from datetime import timedelta
from typing import TYPE_CHECKING

from rebond_service import command

# The service's modules are imported where they are used (`rebond_service.command` says why).
if TYPE_CHECKING:
    import uvicorn

    from rebond_notifier.settings import NotifierSettings


async def _anonymise(settings: "NotifierSettings") -> None:
    from rebond_notifier.store import DeliveryStore, migrate

    if settings.migrate_on_start:
        migrate(settings.database_url)
    store = DeliveryStore.from_url(settings.database_url)
    try:
        changed = await store.anonymise(timedelta(days=settings.retention_days))
        print(f"rebond-notifier: {changed} delivery rows anonymised")
        forgotten = await store.forget_people(timedelta(days=settings.person_contact_days))
        print(f"rebond-notifier: {forgotten} people's addresses deleted")
    finally:
        await store.close()


def _migrate(settings: "NotifierSettings") -> None:
    from rebond_notifier.store import migrate

    migrate(settings.database_url)
    print("rebond-notifier: delivery log migrated")


def build_server(settings: "NotifierSettings") -> tuple["uvicorn.Server", list[socket.socket]]:
    """The app's server and its sockets: NOTIFIER_HOST:NOTIFIER_PORT, and NOTIFIER_INTERNAL_PORT
    when set, as every service's (`rebond_http.private.server_for`)."""
    from rebond_http import private
    from rebond_notifier.app import create_app

    # No access log, said here although `server_for` leaves it off for every service: the
    # answer links' tokens are in the path, and must not be written anywhere.
    return private.server_for(create_app(settings), settings, access_log=False)


def _settings() -> "NotifierSettings":
    from rebond_notifier.settings import NotifierSettings

    return NotifierSettings()


def main() -> None:
    if sys.argv[1:] == ["new-webhook-secret"]:
        from rebond_notifier.signing import new_webhook_secret

        print(new_webhook_secret())
        return
    commands = {
        "anonymise": lambda settings: asyncio.run(_anonymise(settings)),
        "migrate": _migrate,
    }
    command.run(
        commands, build_server, settings=_settings, program="rebond-notifier", usage=__doc__
    )


if __name__ == "__main__":
    main()
