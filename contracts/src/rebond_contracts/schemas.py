"""JSON Schema snapshots of every payload version, committed under contracts/schemas/.

`rebond-schemas --write` regenerates them; `rebond-schemas` alone (and the contract tests)
fails when a model no longer matches its committed snapshot.
"""

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from rebond_contracts.questionnaire import QuestionnaireV1
from rebond_contracts.topics import all_topics

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

#: (event type, schema version) -> payload model. When a payload changes incompatibly, its
#: topic gets a new schema_version and the old model stays here, so old events keep parsing.
HISTORICAL: dict[tuple[str, int], type[BaseModel]] = {}


def payload_versions() -> dict[tuple[str, int], type[BaseModel]]:
    current = {(k.event_type, k.schema_version): k.payload for t in all_topics() for k in t.kinds()}
    return {**HISTORICAL, **current}


def snapshots() -> dict[str, dict[str, object]]:
    """File name -> JSON Schema, for every payload version and the public questionnaire."""
    files = {
        f"{event_type}.v{version}.json": model.model_json_schema()
        for (event_type, version), model in payload_versions().items()
    }
    files["questionnaire.v1.json"] = QuestionnaireV1.model_json_schema()
    return files


def _render(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Snapshot files that are missing or differ from the models."""
    return [
        name
        for name, schema in snapshots().items()
        if not (directory / name).is_file() or (directory / name).read_text() != _render(schema)
    ]


def write(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in snapshots().items():
        (directory / name).write_text(_render(schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the snapshots")
    args = parser.parse_args()
    if args.write:
        write()
        return
    if names := stale():
        sys.exit(f"stale JSON Schema snapshots: {', '.join(names)} (run rebond-schemas --write)")


if __name__ == "__main__":
    main()
