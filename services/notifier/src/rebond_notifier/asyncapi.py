"""The notifier's AsyncAPI document, generated from its declared subscribers and publishers.

python -m rebond_notifier.asyncapi            # rewrite services/notifier/asyncapi.yaml
python -m rebond_notifier.asyncapi --check    # exit 1 when the committed file is stale
"""

import argparse
import sys
from pathlib import Path

import yaml
from faststream.specification import AsyncAPI

from rebond_notifier.app import build
from rebond_notifier.settings import NotifierSettings

COMMITTED = Path(__file__).resolve().parents[2] / "asyncapi.yaml"


def document() -> str:
    """The document as YAML; independent of the environment (defaults only, no connection)."""
    settings = NotifierSettings.model_construct(database_url="sqlite+aiosqlite:///:memory:")
    spec = AsyncAPI(
        build(settings).broker,
        title="Rebond notifier",
        version="1.0.0",
        description=(
            "Reads routing decisions and referral status changes; publishes each referral to "
            "its association's own topic, delivery outcomes, and the answers given through "
            "the e-mail links. Reads the Conférences du rebond's registrations and invitations "
            "and e-mails the person. Every event is a CloudEvent in Kafka binary mode "
            "(ce_* headers)."
        ),
    )
    data = spec.to_specification().to_jsonable()
    # FastStream's order of channels is not stable from one process to the next: sort them.
    for section in ("channels", "operations"):
        data[section] = dict(sorted(data.get(section, {}).items()))
    for section in ("messages", "schemas"):
        data["components"][section] = dict(sorted(data["components"].get(section, {}).items()))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rebond_notifier.asyncapi")
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    parser.add_argument("--output", type=Path, default=COMMITTED)
    args = parser.parse_args(argv)
    text = document()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is stale: run python -m rebond_notifier.asyncapi", file=sys.stderr
            )
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
