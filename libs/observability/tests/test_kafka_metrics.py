"""`/metrics` on a Kafka outage: whether Kafka is reached, the outages and their seconds (the
one going on included); and the PrometheusRule of docs/operations.md alerts on those series."""

import re
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from rebond_kafka.outage import Impact, KafkaLink
from rebond_observability import Observability

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


@dataclass
class Settings:
    otel_enabled: bool = False
    otel_endpoint: str = ""


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def scrape(obs: Observability) -> dict[str, float]:
    text = generate_latest(obs.registry).decode()
    return {
        name: float(value)
        for name, value in re.findall(r"^(rebond_kafka_\w+) (\S+)$", text, flags=re.M)
    }


def test_the_outage_series_follow_the_link() -> None:
    """Reachable 1, no outage; then 0 during one, its seconds growing as it goes on; then 1,
    one outage, its seconds kept."""
    clock = Clock()
    link = KafkaLink("k:9092", Impact("x", "x"), clock=clock, log=structlog.get_logger("t"))
    obs = Observability("test", Settings())
    obs.watch_kafka(link)
    before = scrape(obs)
    with capture_logs():
        link.unreachable(1.0)
        clock.now += 12
        during = scrape(obs)
        clock.now += 3
        link.reachable()
    clock.now += 60
    after = scrape(obs)
    assert before == {
        "rebond_kafka_reachable": 1, "rebond_kafka_outages_total": 0,
        "rebond_kafka_outage_seconds_total": 0,
    }  # fmt: skip
    assert during == {
        "rebond_kafka_reachable": 0, "rebond_kafka_outages_total": 1,
        "rebond_kafka_outage_seconds_total": 12,
    }  # fmt: skip
    assert after == {
        "rebond_kafka_reachable": 1, "rebond_kafka_outages_total": 1,
        "rebond_kafka_outage_seconds_total": 15,
    }  # fmt: skip


def test_the_prometheus_rule_alerts_on_the_outage_series() -> None:
    """The documented PrometheusRule is valid YAML and its Kafka alerts name series that
    `watch_kafka` exports (a renamed series would leave the alert silent for good)."""
    block = re.search(
        r"```yaml\n(apiVersion: monitoring.coreos.com/v1\n.*?)```", OPERATIONS.read_text(), re.S
    )
    assert block is not None
    rules = {
        r["alert"]: r for g in yaml.safe_load(block.group(1))["spec"]["groups"] for r in g["rules"]
    }
    exported = set(scrape_names())
    kafka_alerts = {name: r for name, r in rules.items() if "rebond_kafka_" in r["expr"]}
    assert set(kafka_alerts) == {"RebondKafkaUnreachable", "RebondKafkaFlapping"}
    for rule in kafka_alerts.values():
        assert set(re.findall(r"rebond_kafka_\w+", rule["expr"])) <= exported, rule["expr"]


def scrape_names() -> list[str]:
    obs = Observability("test", Settings())
    obs.watch_kafka(KafkaLink("k:9092", Impact("x", "x")))
    return list(scrape(obs))
