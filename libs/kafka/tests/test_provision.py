"""Provisioning as code: the plan of each topic (partitions, copies, minimum in sync, retention)
from the registry, and its making on the real broker: idempotent, drift set back, SCRAM users
that can log in, ACLs that apply."""

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from rebond_contracts.topics import DECISIONS, OUTCOMES, OVERRIDES, Service, dead_letters
from rebond_kafka.acl_plan import Grant
from rebond_kafka.provision import (
    CLUSTER,
    SINGLE_BROKER,
    Durability,
    Provisioner,
    ProvisionSettings,
    TopicSpec,
    main,
    topic_spec,
    topic_specs,
)
from rebond_testing import until

DAY_MS = 24 * 60 * 60 * 1000


def test_on_a_cluster_each_topic_has_three_copies_two_of_them_in_sync() -> None:
    """A cluster's plan gives every topic three replicas and min.insync.replicas 2."""
    specs = topic_specs(CLUSTER)
    assert {(s.replication_factor, s.configs["min.insync.replicas"]) for s in specs} == {(3, "2")}


def test_a_single_broker_keeps_one_copy_and_asks_one_in_sync() -> None:
    """The single-broker default stays one replica, min.insync.replicas 1."""
    spec = topic_spec(OUTCOMES)
    assert (spec.replication_factor, spec.configs["min.insync.replicas"]) == (1, "1")


def test_a_topic_keeps_its_retention_and_personal_data_its_segment_span() -> None:
    """retention.ms from the registry; segment.ms (12 h) only on topics with personal data."""
    assert topic_spec(DECISIONS, CLUSTER).configs == {
        "min.insync.replicas": "2",
        "retention.ms": str(4 * DAY_MS),
        "segment.ms": str(12 * 60 * 60 * 1000),
    }
    assert "segment.ms" not in topic_spec(OUTCOMES).configs


def test_a_compacted_topic_keeps_the_latest_per_key_for_ever() -> None:
    """The directory's overrides: cleanup.policy compact, no retention (a pause set long ago
    still holds when the router reads the topic from its beginning)."""
    assert topic_spec(OVERRIDES).configs == {
        "min.insync.replicas": "1",
        "cleanup.policy": "compact",
    }
    assert "cleanup.policy" not in topic_spec(DECISIONS).configs


def test_partitions_are_raised_on_request_but_a_single_partition_topic_stays_single() -> None:
    """--partitions 6 gives six to multi-partition topics; a dead-letter topic keeps one."""
    assert topic_spec(DECISIONS, partitions=6).partitions == 6
    assert topic_spec(DECISIONS, partitions=2).partitions == DECISIONS.partitions
    assert topic_spec(dead_letters(Service.ROUTER), partitions=6).partitions == 1


@pytest.mark.parametrize(
    ("brokers", "replicas", "in_sync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_durability_follows_the_number_of_brokers(
    brokers: int, replicas: int, in_sync: int
) -> None:
    """Three copies (two in sync) from three brokers on; as many as there are below."""
    assert Durability.for_brokers(brokers) == Durability(replicas, in_sync)


def test_more_in_sync_replicas_than_copies_is_refused() -> None:
    """min.insync.replicas above the replication factor would refuse every write: refused."""
    with pytest.raises(ValueError, match=r"min\.insync\.replicas"):
        Durability(1, 2)


def test_the_settings_give_the_admin_connection_from_provision_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROVISION_KAFKA_* make librdkafka's connection (the password from a file); --replicas 3
    means two in sync; unset, the copies follow the brokers registered."""
    (tmp_path / "password").write_text("s3cret\n")
    monkeypatch.setenv("PROVISION_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("PROVISION_KAFKA_SASL_USERNAME", "admin")
    monkeypatch.setenv("PROVISION_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    settings = ProvisionSettings(replicas=3)
    assert settings.durability(brokers=5) == CLUSTER
    assert ProvisionSettings().durability(brokers=1) == SINGLE_BROKER
    assert settings.admin_config() == {
        "bootstrap.servers": "kafka-1:9092,kafka-2:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "admin",
        "sasl.password": "s3cret",
    }


def test_an_unreachable_cluster_is_said_and_fails_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No broker answering: exit status 1 and a line saying so and that it may be run again
    (a Job or compose service is then retried), never a traceback; `--wait-s 0.3` gives up
    after about that (each probe once waited 5 s, whatever the option said)."""
    started = time.monotonic()
    assert main(["--bootstrap", "127.0.0.1:9", "--wait-s", "0.3"]) == 1
    assert time.monotonic() - started < 4
    said = capsys.readouterr().err
    assert "did not answer" in said and "run it again" in said


def test_options_kafka_would_refuse_are_named_before_anything_is_done(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--replicas 0, or more in sync than copies: exit status 2, the option named, no traceback."""
    assert main(["--replicas", "0"]) == 2
    assert "replicas" in capsys.readouterr().err
    assert main(["--replicas", "1", "--min-insync-replicas", "2"]) == 2
    assert "every write would be refused" in capsys.readouterr().err


# --- on the real broker -----------------------------------------------------------------------


def _configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    return {key: entry.value for key, entry in next(iter(described.values())).result().items()}


@pytest.mark.kafka
def test_provisioning_again_changes_nothing(kafka_bootstrap: str) -> None:
    """Once the registry's topics stand as planned, a second run creates and aligns nothing."""
    provisioner = Provisioner({"bootstrap.servers": kafka_bootstrap})
    provisioner.provision(topic_specs(SINGLE_BROKER))
    again = provisioner.provision(topic_specs(SINGLE_BROKER))
    assert (again.created, again.aligned, again.replication_drift) == ([], [], [])


@pytest.mark.kafka
def test_a_topic_with_fewer_copies_than_planned_keeps_a_writable_minimum(
    kafka_bootstrap: str,
) -> None:
    """A topic holding one copy where the plan says three is reported, and its
    min.insync.replicas is not raised to 2, which would refuse every write to it."""
    name = f"test.provision.{uuid.uuid4().hex[:8]}"
    provisioner = Provisioner({"bootstrap.servers": kafka_bootstrap})
    assert provisioner.create_topics([TopicSpec(name, 1, 1, {"min.insync.replicas": "1"})])
    # created means the controller has it; the broker lists it a moment later (once, beside
    # make check's tests, not yet when aligned)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    until(lambda: name in admin.list_topics(timeout=5).topics, within_s=10)
    planned = TopicSpec(name, 1, 3, {"min.insync.replicas": "2", "retention.ms": "3600000"})

    aligned, drift = provisioner.align_topics([planned])

    assert aligned == [name] and drift == [f"{name}: 1 replicas, the plan says 3"]
    configs = _configs(kafka_bootstrap, name)
    assert (configs["min.insync.replicas"], configs["retention.ms"]) == ("1", "3600000")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    producer.produce(name, b"still writable")
    assert producer.flush(30) == 0


@pytest.fixture
def admin(kafka_secure) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """librdkafka's settings of the secured broker's super user, on its SASL listener."""
    return {
        "bootstrap.servers": kafka_secure.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "admin",
        "sasl.password": kafka_secure.credentials["admin"],
    }


@pytest.mark.kafka
def test_a_new_scram_user_can_log_in_once_added(admin: dict[str, str]) -> None:
    """A user missing from the cluster is created through the admin API and can log in when
    the call returns; a second run adds nobody (an existing password is kept)."""
    name, password = f"test-provision-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    provisioner = Provisioner(admin)

    assert provisioner.add_scram_users({name: password}) == [name]

    as_user = admin | {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": name}
    AdminClient(as_user | {"sasl.password": password}).list_topics(timeout=10)
    assert provisioner.add_scram_users({name: "another password"}) == []
    with pytest.raises(KafkaException):
        AdminClient(as_user | {"sasl.password": "another password"}).list_topics(timeout=3)


@pytest.mark.kafka
def test_a_grant_applies_as_soon_as_it_is_made(admin: dict[str, str], kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """A principal refused a topic may write it once `grant` returned with that binding."""
    provisioner = Provisioner(admin)
    topic = f"test.grant.{uuid.uuid4().hex[:8]}"
    provisioner.create_topics([TopicSpec(topic, 1, 1, {})])
    as_events = admin | {
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "events",
        "sasl.password": kafka_secure.credentials["events"],
        "acks": "all",
    }

    def delivered() -> str | None:
        outcome: list[str | None] = []
        producer = Producer(as_events | {"message.timeout.ms": 5000})
        producer.produce(topic, b"x", on_delivery=lambda e, _m: outcome.append(e and e.str()))
        producer.flush(10)
        return outcome[0] if outcome else "no answer"

    assert delivered() is not None  # refused: no ACL yet
    started = time.monotonic()
    count = provisioner.grant(
        [Grant("events", "topic", topic, "literal", op) for op in ("write", "describe")]
    )
    assert count == 2 and time.monotonic() - started < 30
    assert delivered() is None
