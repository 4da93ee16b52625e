"""Strimzi's `KafkaTopic` and `KafkaUser` resources for every registry topic and principal.

The Kubernetes deployment's topics, users and ACLs are these resources, made from the same two
sources as the local broker's (`rebond_kafka.provision.topic_spec` for the topics: partitions,
replicas, `min.insync.replicas`, retention; `rebond_kafka.acl_plan` for the grants), so the cluster
cannot drift from the registry nor from what the local cluster is tested with: the
resources are committed under `deploy/k8s/overlays/prod/kafka/`, and `make validate-deploy` and
`tests/deploy` fail while they differ from what this module makes (`make deploy-generate`
writes them again).

Pure: plain dictionaries, no I/O (it imports `rebond_kafka.provision` for the topics' plan, hence
needs the `provision` extra, as every deploy tool has).
"""

from collections.abc import Iterable
from itertools import groupby
from typing import Any

from rebond_contracts.topics import Topic, all_topics
from rebond_kafka.acl_plan import Grant, acl_plan, principals
from rebond_kafka.provision import CLUSTER as THREE_BROKERS
from rebond_kafka.provision import topic_spec

API_VERSION = "kafka.strimzi.io/v1"
#: The `Kafka` resource's name: Strimzi's operators act on resources labelled with it.
CLUSTER = "rebond"
_OPERATIONS = {"read": "Read", "write": "Write", "describe": "Describe"}
_PATTERNS = {"literal": "literal", "prefixed": "prefix"}


def _metadata(name: str, cluster: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "rebond"},
    }


def kafka_topic(topic: Topic, cluster: str = CLUSTER) -> dict[str, Any]:
    """The `KafkaTopic` of one registry topic, as `topic_spec` plans it on a cluster: its
    partitions, three replicas with `min.insync.replicas` 2 (a write is acknowledged, acks=all,
    once two have it, so one broker may be down, drained or rolling, without a write refused or
    lost), its retention and, for a topic with personal data, its segments' span."""
    spec = topic_spec(topic, THREE_BROKERS)
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaTopic",
        # Registry names are lower case, digits, dots and dashes: valid resource names as they
        # are, so the resource's name is the topic's and no `spec.topicName` is needed.
        "metadata": _metadata(topic.name, cluster),
        "spec": {
            "partitions": spec.partitions,
            "replicas": spec.replication_factor,
            # Kafka's settings are strings; the numbers among them as YAML says numbers.
            "config": {
                key: int(value) if value.isdigit() else value for key, value in spec.configs.items()
            },
        },
    }


def _acl(resource: tuple[str, str, str], grants: Iterable[Grant]) -> dict[str, Any]:
    kind, name, pattern = resource
    return {
        "type": "allow",
        "resource": {"type": kind, "name": name, "patternType": _PATTERNS[pattern]},
        "operations": sorted(_OPERATIONS[g.operation] for g in grants),
        "host": "*",
    }


def kafka_user(principal: str, plan: list[Grant], cluster: str = CLUSTER) -> dict[str, Any]:
    """The `KafkaUser` of one principal: SCRAM-SHA-512 (Strimzi keeps its password in a Secret
    of the same name) and exactly the grants `plan` gives it, one ACL rule per resource."""
    mine = [g for g in plan if g.principal == principal]

    def resource(grant: Grant) -> tuple[str, str, str]:
        return grant.resource_type, grant.resource_name, grant.pattern

    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaUser",
        "metadata": _metadata(principal, cluster),
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [_acl(key, grants) for key, grants in groupby(mine, key=resource)],
            },
        },
    }


def kafka_topics(
    topics: Iterable[Topic] | None = None, cluster: str = CLUSTER
) -> list[dict[str, Any]]:
    """A `KafkaTopic` per registry topic (`topics`, by default all of them), in registry order."""
    return [kafka_topic(t, cluster) for t in (all_topics() if topics is None else topics)]


def kafka_users(
    topics: Iterable[Topic] | None = None, cluster: str = CLUSTER
) -> list[dict[str, Any]]:
    """A `KafkaUser` per principal (services, then associations), with the registry's grants."""
    plan = acl_plan(topics)
    return [kafka_user(p, plan, cluster) for p in principals()]
