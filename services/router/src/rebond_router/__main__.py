"""`python -m rebond_router` (or `rebond-router`): route questionnaires, follow referrals."""

import sys

import uvicorn

from rebond_router.app import create_app
from rebond_router.directory import DirectoryError
from rebond_router.logging import configure_logging
from rebond_router.settings import RouterSettings


def main() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level)
    try:
        app = create_app(settings)
    except DirectoryError as error:
        sys.exit(f"rebond-router: the association directory is not valid: {error}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
