"""KafkaLink and CondenseOutageLines, on a fake clock: an outage is said once, summed up every
30 s, and its end said once with its length; only aiokafka's connectivity lines are dropped."""

import logging
from typing import Any

import pytest
import structlog
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, TopicAuthorizationFailedError
from structlog.testing import capture_logs

from rebond_kafka.outage import CondenseOutageLines, Impact, KafkaLink, KafkaLinks

IMPACT = Impact(fr="les envois sont refusés (503)", en="submissions are refused (503)")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def link(clock: Clock) -> KafkaLink:
    return KafkaLink("127.0.0.1:9092", IMPACT, clock=clock, log=structlog.get_logger("test"))


def aiokafka_line(
    msg: str, *args: Any, name: str = "aiokafka", level: int = logging.ERROR
) -> logging.LogRecord:
    return logging.LogRecord(name, level, "client.py", 1, msg, args, None)


def test_an_outage_is_said_once_then_summed_up_every_30_s_then_its_end(
    link: KafkaLink, clock: Clock
) -> None:
    """First failure: one error saying what it means and when the next try is; failures within
    30 s: nothing; after 30 s: one summary with the count; back: one info with the length."""
    with capture_logs() as logs:
        link.unreachable(2.0, cause="KafkaConnectionError")
        for _ in range(20):  # the next tries, each 1.5 s later, and their library lines
            clock.now += 1.5
            link.condensed()
            link.unreachable(5.0)
        clock.now += 4.5
        link.reachable()
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("kafka_unreachable", "error"),
        ("kafka_still_unreachable", "error"),
        ("kafka_reachable_again", "info"),
    ]
    first, summary, back = logs
    assert first["message"] == (
        "Kafka injoignable : les envois sont refusés (503) ; nouvel essai dans 2,0 s"
    )
    assert (
        first["message_en"] == "Kafka unreachable: submissions are refused (503); retrying in 2.0 s"
    )
    assert first["error"] == "KafkaConnectionError" and first["retry_in_s"] == 2.0
    assert summary["down_for_s"] == 30.0 and summary["condensed"] == 20
    assert "toujours injoignable depuis 30 s" in summary["message"]
    assert "20 messages d'erreur" in summary["message"]
    assert back["outage_s"] == 34.5 and back["condensed"] == 20
    assert back["message"].startswith("Kafka de nouveau joignable après 34 s de coupure")


def test_the_outage_is_counted_with_its_seconds_even_while_it_goes_on(
    link: KafkaLink, clock: Clock
) -> None:
    """The metrics read `outages` and `outage_seconds()`: the one going on counts already."""
    with capture_logs():
        link.unreachable(1.0)
        clock.now += 10
        assert (link.down, link.outages, link.outage_seconds()) == (True, 1, 10.0)
        link.reachable()
        clock.now += 100
        link.unreachable(1.0)
        clock.now += 5
    assert (link.outages, link.outage_seconds()) == (2, 15.0)


def test_reachable_without_an_outage_says_nothing(link: KafkaLink) -> None:
    """A connection made in ordinary times is not news."""
    with capture_logs() as logs:
        link.reachable()
    assert logs == [] and link.outages == 0


@pytest.fixture
def links() -> KafkaLinks:
    return KafkaLinks()


def test_connectivity_lines_are_dropped_and_counted_only_while_kafka_is_down(
    links: KafkaLinks,
) -> None:
    """Up: aiokafka's "cannot connect" lines pass. Down: dropped, and counted on the link."""
    condense = CondenseOutageLines(links)
    link = links.link("127.0.0.1:9092", IMPACT)
    refused = aiokafka_line("Unable connect to node with id %s: %s", 1, OSError("refused"))
    assert condense.filter(refused)
    with capture_logs():
        link.unreachable(1.0)
        assert not condense.filter(refused)
        assert not condense.filter(
            aiokafka_line(
                "Failed fetch messages from %s: %s",
                1,
                NodeNotReadyError(),
                name="aiokafka.consumer.fetcher",
            )
        )
        assert not condense.filter(  # a format not listed, but carrying a connectivity error
            aiokafka_line("OffsetCommit failed for group %s - %s", "g", KafkaConnectionError())
        )
        assert link._condensed == 3
        link.reachable()
    assert condense.filter(refused)


def test_other_lines_pass_untouched_even_during_an_outage(links: KafkaLinks) -> None:
    """Nothing else is hidden: an aiokafka error that is not about reaching the broker, our own
    errors, other libraries' lines, and aiokafka's lines below warning."""
    condense = CondenseOutageLines(links)
    with capture_logs():
        links.link("127.0.0.1:9092", IMPACT).unreachable(1.0)
    others = [
        aiokafka_line(
            "Topic %s is not authorized for this client", TopicAuthorizationFailedError()
        ),
        aiokafka_line("Unexpected error in sender routine"),
        aiokafka_line("Unable to update metadata from %s", [1], name="rebond_router.consumer"),
        aiokafka_line("Unable to update metadata from %s", [1], name="faststream"),
        aiokafka_line("Unable to update metadata from %s", [1], level=logging.INFO),
    ]
    assert all(condense.filter(record) for record in others)


def test_a_process_has_one_link_per_cluster(links: KafkaLinks) -> None:
    """Two services of one process on one cluster share its link (however the servers are
    written); another cluster has its own, whose outage leaves the first one up."""
    first = links.link("a:9092,b:9092", IMPACT)
    assert links.link(" b:9092 , a:9092", IMPACT) is first
    other = links.link("c:9092", IMPACT)
    with capture_logs():
        other.unreachable(1.0)
    assert links.down() == [other] and not first.down
