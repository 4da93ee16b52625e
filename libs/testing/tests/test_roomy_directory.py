"""The routers tests start get the production directory with room for a test's load."""

from pathlib import Path

from rebond_router.directory import DEFAULT_PATH, load_directory
from rebond_testing.services import TEST_WEEKLY_CAPACITY, roomy_directory


def test_the_roomy_directory_is_production_s_with_large_hard_capacities(tmp_path: Path) -> None:
    """Same associations, rules and tie-break as production, each capacity still hard but
    `TEST_WEEKLY_CAPACITY` a week, and the router's own loader accepts the file."""
    production = load_directory(DEFAULT_PATH)
    roomy = load_directory(roomy_directory(tmp_path))
    assert [a.id for a in roomy.associations] == [a.id for a in production.associations]
    assert roomy.tie_break == production.tie_break and roomy.weights == production.weights
    assert {a.weekly_capacity for a in roomy.associations} == {TEST_WEEKLY_CAPACITY}
    assert {a.capacity for a in roomy.associations} == {a.capacity for a in production.associations}


def test_the_roomy_directory_has_no_antenna(tmp_path: Path) -> None:
    """The pipeline's tests count each association's e-mails at its own address: the shipped
    example antenna (Gironde, the example questionnaire's department) is left out."""
    assert any(a.antennas for a in load_directory(DEFAULT_PATH).associations)
    assert not any(a.antennas for a in load_directory(roomy_directory(tmp_path)).associations)
