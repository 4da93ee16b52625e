"""`/metrics` on a Kafka outage: whether Kafka is reached, the outages and their seconds (the
one going on included); and the PrometheusRule alerts on those series."""

import re
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from rebond_kafka.outage import Impact, KafkaLink
from rebond_observability import Observability

RULES = (
    Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "monitoring" / "prometheusrule.yaml"
)


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
    """The PrometheusRule alerts on Kafka unreachable for a minute, and on repeated outages
    (`tests/deploy/test_platform.py` checks that every series it names is exported)."""
    rule_file = yaml.safe_load(RULES.read_text())
    rules = {r["alert"]: r["expr"] for g in rule_file["spec"]["groups"] for r in g["rules"]}
    assert "rebond_kafka_reachable" in rules["RebondKafkaUnreachable"]
    assert "rebond_kafka_outages_total" in rules["RebondKafkaFlapping"]


def test_before_any_link_the_series_are_declared_without_a_value() -> None:
    """A service's registry names the Kafka series from the start (what the alert and
    dashboard checks read), and claims no value before it watches a link."""
    obs = Observability("test", Settings())
    names = {family.name for family in obs.registry.collect()}
    assert {
        "rebond_kafka_reachable",
        "rebond_kafka_outages",
        "rebond_kafka_outage_seconds",
    } <= names
    assert scrape(obs) == {}
