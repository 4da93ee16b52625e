"""A test whose broker cannot be had fails under CI=true and is skipped elsewhere, with the
reason: `make test` in CI never passes by skipping what it could not run."""

import pytest

from rebond_testing import free_port

NEEDS_A_BROKER = """
def test_needs_a_broker(kafka_bootstrap):
    pass
"""


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_broker_that_does_not_answer_fails_in_ci_and_skips_elsewhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    """KAFKA_BOOTSTRAP_SERVERS names a closed port: CI=true fails the test, saying why; without
    CI it is skipped with the same reason."""
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_broker=NEEDS_A_BROKER)
    result = pytester.runpytest_subprocess("-p", "rebond_testing.plugin", "-rfs")
    result.assert_outcomes(**{"errors" if outcome == "failed" else outcome: 1})
    result.stdout.fnmatch_lines(
        ["*no Kafka broker: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:* does not answer*"]
    )
