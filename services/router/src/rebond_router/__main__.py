"""`python -m rebond_router` (or `rebond-router`): route questionnaires, follow referrals.

`python -m rebond_router migrate` brings the store to the newest migration (a Kubernetes Job or
init container, with ROUTER_MIGRATE_ON_START=false on the service).

`python -m rebond_router anonymise` drops the contact copies kept longer than
ROUTER_RETENTION_DAYS (run it daily: cron, a Kubernetes CronJob).
"""

import asyncio
import gc
import sys
from datetime import UTC, datetime, timedelta

from rebond_http import private
from rebond_observability.logging import configure_logging
from rebond_router.app import create_app
from rebond_router.directory import DirectoryError
from rebond_router.privacy import anonymise
from rebond_router.settings import RouterSettings
from rebond_router.store import Store, migrate


async def _anonymise(settings: RouterSettings) -> None:
    store = Store.from_url(settings.database_url)
    try:
        done = await anonymise(store, datetime.now(UTC), timedelta(days=settings.retention_days))
        print(f"rebond-router: {done.referrals} referrals and {done.outputs} outputs anonymised")
    finally:
        await store.close()


def main() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level)
    if sys.argv[1:] == ["migrate"]:
        migrate(settings.database_url)
        print("rebond-router: the store is at the newest migration")
        return
    if sys.argv[1:] == ["anonymise"]:
        if settings.migrate_on_start:
            migrate(settings.database_url)
        asyncio.run(_anonymise(settings))
        return
    try:
        app = create_app(settings)
    except DirectoryError as error:
        sys.exit(f"rebond-router: the association directory is not valid: {error}")
    gc.freeze()  # startup's objects, kept for good, out of the GC's full collections (README)
    # ROUTER_HOST:ROUTER_PORT, and ROUTER_INTERNAL_PORT (`/metrics`) when set.
    server, sockets = private.server_for(app, settings)
    server.run(sockets=sockets)


if __name__ == "__main__":
    main()
