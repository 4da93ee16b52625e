"""configure_logging, in a process of its own (it sets the process's logging): JSON lines, and
aiokafka's lines during a Kafka outage condensed into the outage's own lines."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging
    import structlog
    from rebond_kafka.outage import LINKS, Impact
    from rebond_observability.logging import configure_logging

    configure_logging("INFO")
    library = logging.getLogger("aiokafka")
    library.error("Unable connect to node with id %s: %s", 1, "refused")
    link = LINKS.link("127.0.0.1:9", Impact(fr="les envois sont refusés", en="refused"))
    link.unreachable(0.5)
    for _ in range(500):
        library.error("Unable connect to node with id %s: %s", 1, "refused")
        logging.getLogger("aiokafka.consumer.fetcher").error(
            "Failed fetch messages from %s: %s", 1, "NodeNotReadyError"
        )
    logging.getLogger("aiokafka.cluster").error("Topic %s is not authorized for this client", "t")
    structlog.get_logger("rebond_router.consumer").error("handler_failed", topic="t")
    link.reachable()
    """
)


def test_an_outage_in_the_logs_is_its_own_three_lines_and_nothing_else_is_hidden() -> None:
    """1,000 aiokafka connectivity errors during an outage become its first line and its end
    (with the count); the line before it, another aiokafka error and ours pass untouched."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["logger"], line["level"], line["event"][:24]) for line in lines] == [
        ("aiokafka", "error", "Unable connect to node w"),
        ("rebond_kafka.outage", "error", "kafka_unreachable"),
        ("aiokafka.cluster", "error", "Topic t is not authorize"),
        ("rebond_router.consumer", "error", "handler_failed"),
        ("rebond_kafka.outage", "info", "kafka_reachable_again"),
    ]
    assert lines[1]["message"].startswith("Kafka injoignable : les envois sont refusés")
    assert lines[-1]["condensed"] == 1000
