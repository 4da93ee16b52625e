"""`python -m rebond_events` (or `rebond-router`): serve the Conférences du rebond API."""

import uvicorn

from rebond_events.app import create_app
from rebond_events.logging import configure_logging
from rebond_events.settings import EventsSettings


def main() -> None:
    settings = EventsSettings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
