"""A three-node Kafka cluster (`deploy/kafka/kafkactl.py`'s, secured as the single broker is) and
the four services on it, each under its own principal, for the durability tests of issue #25.

`make test-cluster` runs them (it sets REBOND_CLUSTER_TESTS=1). They take 9 to 15 minutes on
the development machine, more than `make test` should carry (README, "Reliability"), so a plain
`pytest` skips them and says why.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.kafka.kafkactl import KafkaStartError, Layout, LocalKafka, Node
from rebond_testing import MailSink, free_ports, unavailable
from tests.conftest import SERVICES, RunningService, start_service, stop_service, wait_ready
from tests.faults.rebond_faultkit import associations_file

HERE = Path(__file__).resolve().parent
WANTED = os.environ.get("REBOND_CLUSTER_TESTS", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if WANTED:
        return
    skip = pytest.mark.skip(
        reason="the three-broker cluster tests run with `make test-cluster` (about ten "
        "minutes, outside `make test`)"
    )
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[LocalKafka]:
    """Three nodes, each controller and broker, SASL/SCRAM with the registry's ACLs (and a
    listener in clear for the tests' own reads); every topic three replicas, two in sync."""
    data_dir = Path(tempfile.mkdtemp(prefix="rebond-cluster-"))
    ports = free_ports(9)
    nodes = tuple(Node(k + 1, *ports[3 * k : 3 * k + 3]) for k in range(3))
    kafka = LocalKafka.open(Layout(data_dir, nodes, secure=True))
    try:
        kafka.start(partitions=3)
    except KafkaStartError as error:
        kafka.stop(kill=True)
        unavailable(f"could not start the three-node cluster: {error}")
    try:
        yield kafka
    finally:
        kafka.stop(kill=True)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def mail() -> Iterator[MailSink]:
    """The associations' and people's mail server (each test empties its inbox first)."""
    with MailSink() as server:
        yield server


@pytest.fixture(scope="module")
def pipeline(kafka_cluster: LocalKafka, mail: MailSink) -> Iterator[dict[str, RunningService]]:
    """intake, router, notifier and events, each a process connecting to the three nodes as its
    own principal, all ready."""
    folder = Path(tempfile.mkdtemp(prefix="rebond-cluster-services-"))
    extra: dict[str, dict[str, str]] = {
        "intake": {"rate_limit_per_minute": "0"},
        "notifier": {
            "smtp_port": str(mail.port),
            "associations_file": str(associations_file(folder)),
        },
    }
    started: dict[str, RunningService] = {}
    try:
        for name in SERVICES:
            started[name] = start_service(
                name, kafka_cluster.layout.bootstrap, folder,
                sasl={
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": name,
                    "sasl_plain_password": kafka_cluster.passwords[name],
                },
                **extra.get(name, {}),
            )  # fmt: skip
        for service in started.values():
            wait_ready(service, timeout_s=120)
        yield started
    finally:
        for service in started.values():
            stop_service(service)
        shutil.rmtree(folder, ignore_errors=True)
