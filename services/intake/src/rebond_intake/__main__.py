"""`python -m rebond_intake` (or `rebond-intake`): serve the API on INTAKE_HOST:INTAKE_PORT."""

import uvicorn

from rebond_intake.app import create_app
from rebond_intake.logging import configure_logging
from rebond_intake.settings import IntakeSettings


def main() -> None:
    settings = IntakeSettings()
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
