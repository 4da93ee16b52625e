"""Strimzi resources made from the registry: one KafkaTopic per topic, one KafkaUser per principal."""

from dataclasses import replace

from rebond_contracts.topics import DECISIONS, OVERRIDES, Service, dead_letters
from rebond_kafka.acl_plan import acl_plan
from rebond_kafka.strimzi import kafka_topic, kafka_user, kafka_users


def test_a_topic_keeps_its_partitions_and_retention() -> None:
    """A dead-letter topic keeps its single partition and its retention; three replicas."""
    topic = dead_letters(Service.ROUTER)
    spec = kafka_topic(topic)["spec"]
    assert spec["partitions"] == 1 and spec["replicas"] == 3
    assert spec["config"] == {"min.insync.replicas": 2, "retention.ms": topic.retention_ms}


def test_a_topic_with_personal_data_rolls_its_segments_every_twelve_hours() -> None:
    """`segment.ms` bounds how long a record outlives its retention (the erasure window)."""
    assert kafka_topic(DECISIONS)["spec"]["config"]["segment.ms"] == 12 * 60 * 60 * 1000
    assert "segment.ms" not in kafka_topic(dead_letters(Service.ROUTER))["spec"]["config"]


def test_a_topic_without_retention_leaves_the_brokers_default() -> None:
    """No `retention.ms` is set for a topic the registry gives none."""
    spec = kafka_topic(replace(DECISIONS, retention_ms=None))["spec"]
    assert "retention.ms" not in spec["config"]


def test_a_compacted_topic_says_so_as_a_string() -> None:
    """`cleanup.policy: compact` (a word, not a number) for the directory's overrides."""
    assert kafka_topic(OVERRIDES)["spec"]["config"] == {
        "min.insync.replicas": 2,
        "cleanup.policy": "compact",
    }


def test_a_user_gets_one_rule_per_resource_with_strimzis_names() -> None:
    """Grants on one resource become one ACL rule; Kafka's `prefixed` is Strimzi's `prefix`."""
    user = kafka_user("router", acl_plan([DECISIONS]))
    assert user["spec"]["authorization"]["acls"] == [
        {
            "type": "allow",
            "resource": {"type": "topic", "name": "routing.decisions", "patternType": "literal"},
            "operations": ["Describe", "Write"],
            "host": "*",
        }
    ]
    reader = kafka_user("notifier", acl_plan([DECISIONS]))["spec"]["authorization"]["acls"]
    groups = [rule["resource"] for rule in reader if rule["resource"]["type"] == "group"]
    assert groups == [
        {"type": "group", "name": "rebond-notifier", "patternType": "literal"},
        {"type": "group", "name": "rebond-notifier.", "patternType": "prefix"},
    ]


def test_every_user_belongs_to_the_cluster_and_logs_in_with_scram() -> None:
    """Each KafkaUser names the cluster the User Operator watches and uses SCRAM-SHA-512."""
    for user in kafka_users():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "rebond"
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
