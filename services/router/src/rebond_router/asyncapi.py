"""The router's AsyncAPI document, generated from its declared subscribers and publishers.

python -m rebond_router.asyncapi --write   # regenerate services/router/asyncapi.yaml
python -m rebond_router.asyncapi           # exit 1 when the committed file is stale
"""

import argparse
import sys
from pathlib import Path

import yaml
from faststream.specification import AsyncAPI

from rebond_router import __version__
from rebond_router.app import build
from rebond_router.settings import RouterSettings

DOCUMENT = Path(__file__).resolve().parents[2] / "asyncapi.yaml"


def render() -> str:
    """The document for the default deployment (fixed values, so it does not depend on env)."""
    settings = RouterSettings(
        kafka_bootstrap_servers="127.0.0.1:9092",
        group_id="rebond-router",
        database_url="sqlite+aiosqlite://",
    )
    parts = build(settings)
    spec = AsyncAPI(
        parts.broker,
        title="Rebond router",
        version=__version__,
        description=(
            "Orients each questionnaire to the best-suited association, follows each referral "
            "(answers, reminders, deadlines) and re-orients it or hands it to the human queue."
        ),
        schema_version="3.0.0",
    )
    # FastStream's channel order follows its internal registries; sort for a stable file.
    return yaml.safe_dump(spec.to_specification().to_jsonable(), sort_keys=True, allow_unicode=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the committed document")
    args = parser.parse_args()
    text = render()
    if args.write:
        DOCUMENT.write_text(text)
        return
    if not DOCUMENT.is_file() or DOCUMENT.read_text() != text:
        sys.exit(f"{DOCUMENT} is stale: run python -m rebond_router.asyncapi --write")


if __name__ == "__main__":
    main()
