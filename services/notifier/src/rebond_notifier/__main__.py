"""`python -m rebond_notifier` (or `rebond-notifier`): referrals, e-mails, webhooks, answer pages."""

import uvicorn

from rebond_notifier.app import create_app
from rebond_notifier.logging import configure_logging
from rebond_notifier.settings import NotifierSettings


def main() -> None:
    settings = NotifierSettings()
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
