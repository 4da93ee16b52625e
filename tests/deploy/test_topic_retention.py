"""Per-topic retention on the real broker comes from the registry (`Topic.retention_ms`)."""

import time

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from rebond_contracts.topics import Service, all_topics, dead_letters
from rebond_kafka.provision import Provisioner, topic_specs

pytestmark = pytest.mark.kafka


def _retention(admin: AdminClient, names: list[str], key: str = "retention.ms") -> dict[str, str]:
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    return {
        resource.name: future.result()[key].value
        for resource, future in admin.describe_configs(resources, request_timeout=30).items()
    }


def _settled_retention(admin: AdminClient, name: str, wanted: str, within_s: float = 15) -> str:
    """The topic's retention.ms once it reads `wanted`, or as it reads after `within_s`: a
    config change is committed by the controller, then applied by the broker a moment later."""
    deadline = time.monotonic() + within_s
    while (value := _retention(admin, [name])[name]) != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def test_every_topic_on_the_broker_has_the_registry_retention(kafka_bootstrap: str) -> None:
    """Each registry topic's retention.ms on the broker equals its `retention_ms`; a compacted
    one (the directory's overrides) is compacted only, so it deletes nothing by age."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    wanted = {t.name: str(t.retention_ms) for t in all_topics() if not t.compacted}
    assert _retention(admin, list(wanted)) == wanted
    compacted = [t.name for t in all_topics() if t.compacted]
    assert _retention(admin, compacted, "cleanup.policy") == {n: "compact" for n in compacted}


def test_topics_with_personal_data_roll_their_segments_every_twelve_hours(
    kafka_bootstrap: str,
) -> None:
    """segment.ms on the broker is 12 h for each topic with personal data, so a record outlives
    its retention by half a day at most (the erasure window the erasure reply states)."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    personal = [topic.name for topic in all_topics() if topic.personal_data]
    assert _retention(admin, personal, "segment.ms") == {name: "43200000" for name in personal}


def test_provisioning_aligns_a_topic_whose_retention_drifted(kafka_bootstrap: str) -> None:
    """A retention changed by hand is set back to the registry's by the provisioning (what
    kafkactl's topics/provision, compose's and Kubernetes' provisioning run)."""
    topic = dead_letters(Service.EVENTS)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    drift = ConfigResource(
        ResourceType.TOPIC,
        topic.name,
        incremental_configs=[
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in admin.incremental_alter_configs([drift], request_timeout=30).values():
        future.result()
    assert _settled_retention(admin, topic.name, "3600000") == "3600000"

    changed, _ = Provisioner({"bootstrap.servers": kafka_bootstrap}).align_topics(topic_specs())

    assert topic.name in changed
    wanted = str(topic.retention_ms)
    assert _settled_retention(admin, topic.name, wanted) == wanted
