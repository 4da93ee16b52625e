"""`python -m rebond_router` (or `rebond-router`): consume questionnaires, serve health."""

import uvicorn

from rebond_router.app import create_app
from rebond_router.logging import configure_logging
from rebond_router.settings import RouterSettings


def main() -> None:
    settings = RouterSettings()
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
