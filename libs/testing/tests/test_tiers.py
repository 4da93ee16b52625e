"""Tiers are set from the fixtures a test uses: a test reaching a broker, a service process, a
browser or PostgreSQL through any chain of fixtures carries that marker, and `make check`'s
selection leaves it out."""

import pytest

from rebond_testing.tiers import distinct_node_ids, tiers_of, work_unit


@pytest.mark.parametrize(
    ("fixtures", "parameters", "tiers"),
    [
        (["tmp_path"], {}, set()),
        (["kafka_bootstrap"], {}, {"kafka"}),
        (["kafka_secure", "tmp_path"], {}, {"kafka"}),
        (["own_broker", "launch"], {}, {"kafka", "services"}),
        (["running_services", "_kafka_broker"], {}, {"kafka", "services"}),
        (["chromium_launch_options"], {}, {"browser"}),
        (["postgres_url"], {}, {"postgres"}),
        (["sql_url", "tmp_path"], {"sql_url": "sqlite"}, set()),
        (["sql_url", "tmp_path"], {"sql_url": "postgresql"}, {"postgres"}),
        (["any_store"], {"any_store": "postgresql"}, {"postgres"}),
        (["any_store"], {"any_store": "fake"}, set()),
    ],
)
def test_tiers_follow_fixtures_and_the_postgresql_parameter(
    fixtures: list[str], parameters: dict[str, object], tiers: set[str]
) -> None:
    """Each fixture set (and parameter) gives exactly its tiers."""
    assert tiers_of(fixtures, parameters) == tiers


CONFTEST = """
import pytest

@pytest.fixture
def kafka_bootstrap():
    return "nowhere:9092"

@pytest.fixture
def launch(kafka_bootstrap):
    return kafka_bootstrap

@pytest.fixture
def through_a_chain(launch):
    return launch

@pytest.fixture(params=["sqlite", "postgresql"])
def store(request):
    return request.param
"""

TESTS = """
def test_plain(tmp_path):
    pass

def test_broker_through_a_chain(through_a_chain):
    pass

def test_store(store):
    pass
"""


def test_make_checks_selection_leaves_out_what_a_fixture_chain_reaches(
    pytester: pytest.Pytester,
) -> None:
    """A test reaching the broker and a service process through another fixture is marked
    `kafka` and `services` and deselected by `make check`'s expression; a store test runs there
    on SQLite and is marked `postgres` on PostgreSQL."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tiers_demo=TESTS)
    selected = pytester.runpytest(
        "-p", "rebond_testing.plugin", "-m", "not kafka and not services and not faults", "-v"
    )
    selected.assert_outcomes(passed=3, deselected=1)
    selected.stdout.fnmatch_lines(["*test_plain PASSED*", "*test_store?sqlite? PASSED*"])
    postgres = pytester.runpytest("-p", "rebond_testing.plugin", "-m", "postgres", "-v")
    postgres.assert_outcomes(passed=1, deselected=3)
    postgres.stdout.fnmatch_lines(["*test_store?postgresql? PASSED*"])
    services = pytester.runpytest("-p", "rebond_testing.plugin", "-m", "services and kafka")
    services.assert_outcomes(passed=1, deselected=3)


def test_tests_sharing_a_node_id_each_get_their_own_from_their_name() -> None:
    """schemathesis' tests share their function's node id: each gets its name instead; the
    others keep theirs, and two alike even by name are refused."""
    tests = [
        ("fuzz.py::test_every_operation", "test_every_operation[GET /a]"),
        ("fuzz.py::test_every_operation", "test_every_operation[POST /a]"),
        ("fuzz.py::test_the_runs_reached_everything", "test_the_runs_reached_everything"),
        ("rules.py::test_a[1]", "test_a[1]"),
        ("rules.py::C::test_b", "test_b"),
    ]
    assert distinct_node_ids(tests) == [
        "fuzz.py::test_every_operation[GET /a]",
        "fuzz.py::test_every_operation[POST /a]",
        "fuzz.py::test_the_runs_reached_everything",
        "rules.py::test_a[1]",
        "rules.py::C::test_b",
    ]
    with pytest.raises(ValueError, match=r"fuzz.py::test_x\[GET /a\]"):
        distinct_node_ids([("fuzz.py::test_x", "test_x[GET /a]")] * 2)


def test_a_worker_gets_a_module_whole_or_a_folder_sharing_processes_whole() -> None:
    """tests/e2e's modules share the folder's service processes: one unit; others by module."""
    assert work_unit("tests/e2e/test_pipeline.py::test_a") == "tests/e2e/"
    assert work_unit("tests/e2e/test_console.py::C::test_b[x]") == "tests/e2e/"
    assert work_unit("tests/faults/test_poison.py::test_c") == "tests/faults/test_poison.py"
    assert work_unit("services/router/tests/test_kafka.py::test_d") == (
        "services/router/tests/test_kafka.py"
    )
