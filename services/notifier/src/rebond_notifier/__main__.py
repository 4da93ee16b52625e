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
import gc
import sys
from datetime import timedelta

from rebond_http import private
from rebond_notifier.app import create_app
from rebond_notifier.settings import NotifierSettings
from rebond_notifier.signing import new_webhook_secret
from rebond_notifier.store import DeliveryStore, migrate
from rebond_observability.logging import configure_logging


async def _anonymise(settings: NotifierSettings) -> None:
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


def main() -> None:
    if sys.argv[1:] == ["new-webhook-secret"]:
        print(new_webhook_secret())
        return
    settings = NotifierSettings()
    configure_logging(settings.log_level)
    if sys.argv[1:] == ["anonymise"]:
        asyncio.run(_anonymise(settings))
        return
    if sys.argv[1:] == ["migrate"]:
        migrate(settings.database_url)
        print("rebond-notifier: delivery log migrated")
        return
    server, sockets = private.server(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        internal_host=settings.internal_host,
        internal_port=settings.internal_port,
        log_config=None,
        access_log=False,  # the answer links' tokens are in the path
        server_header=False,
    )
    gc.freeze()  # startup's objects, kept for good, out of the GC's full collections (README)
    server.run(sockets=sockets)


if __name__ == "__main__":
    main()
