"""The data files that packages read at run time ship inside their built wheels."""

import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("project", "member"),
    [
        ("contracts", "rebond_contracts/contacts.yaml"),
        ("services/intake", "rebond_intake/crisis_lexicon.yaml"),
        ("services/intake", "rebond_intake/migrations/versions/0001_baseline.py"),
    ],
)
def test_a_data_file_ships_in_its_wheel(project: str, member: str, tmp_path: Path) -> None:
    """A wheel installed outside this repository still finds the data its module loads."""
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT / project)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    assert member in zipfile.ZipFile(wheel).namelist()
