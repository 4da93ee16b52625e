"""Who may do what on Kafka, derived from the topic registry: one derivation for every broker.

The local secured broker (`deploy/kafka/kafkactl.py`) grants exactly these ACLs, and the Strimzi
`KafkaUser` resources of the Kubernetes deployment (`rebond_kafka.strimzi`) carry the same ones,
so access cannot drift from the registry nor between the two: a topic added to
`rebond_contracts.topics` gets its grants in both from this module alone.

- a topic's writer (and its delegates) may write and describe it; its readers may read and
  describe it;
- a service reads with the consumer group `rebond-<service>` or groups named
  `rebond-<service>.<name>`, an association with `association-<id>` or `association-<id>.<name>`
  (`groups_of`: the dot keeps `association-x` out of `association-xy`'s groups);
- an association acts only on its own topics (`referrals.<id>`, `responses.<id>`).

Pure: no broker, no I/O; the registry is its only input.
"""

from collections.abc import Iterable
from typing import NamedTuple

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import Service, Topic, all_topics

#: The principals of the services, in the order they are listed to operators.
SERVICES = ("intake", "router", "notifier", "events", "coordination")


class Grant(NamedTuple):
    """One ACL binding allowed: `principal` may do `operation` on the resource. A plain tuple,
    so `principal, kind, name, pattern, operation = grant` reads it as kafkactl always did."""

    principal: str
    resource_type: str  # "topic" or "group"
    resource_name: str
    pattern: str  # "literal" or "prefixed"
    operation: str  # "read", "write" or "describe"


def principals() -> list[str]:
    """Every principal of a secured broker besides its super user: one per service and one per
    association (`association-<id>`)."""
    return [*SERVICES, *(f"association-{a.value}" for a in AssociationId)]


def principal_of(service: str, topic_name: str) -> str:
    """The principal acting as `service` on `topic_name` (associations act on their own topics:
    `referrals.<id>` and `responses.<id>` name the association after the dot)."""
    if service == Service.ASSOCIATION.value:
        return "association-" + topic_name.split(".", 1)[1]
    return service


def groups_of(principal: str) -> list[tuple[str, str]]:
    """The consumer groups `principal` may use, as (name, pattern type): its base group
    (`rebond-<service>`, `association-<id>`), literally, and every group under it after a dot
    (`rebond-notifier.status`, `association-apesa.crm`).

    The dot is what keeps principals apart: a bare prefix `association-x` would also match
    `association-xy`'s groups, so an association whose id extends another's could join them
    (read their offsets, take their partitions). No id contains a dot."""
    base = principal if principal.startswith("association-") else f"rebond-{principal}"
    return [(base, "literal"), (f"{base}.", "prefixed")]


def may_use_group(principal: str, group: str) -> bool:
    """Whether `groups_of(principal)` lets it use `group`, matched as the broker matches ACLs."""
    return any(
        group == name if pattern == "literal" else group.startswith(name)
        for name, pattern in groups_of(principal)
    )


def acl_plan(topics: Iterable[Topic] | None = None) -> list[Grant]:
    """Every grant the registry's topics (`topics`, by default all of them) call for, sorted and
    without duplicates."""
    plan: set[Grant] = set()
    for topic in all_topics() if topics is None else topics:
        for service in (topic.writer, *topic.delegates):
            writer = principal_of(service.value, topic.name)
            plan |= {
                Grant(writer, "topic", topic.name, "literal", op) for op in ("write", "describe")
            }
        for reader in topic.readers:
            who = principal_of(reader.value, topic.name)
            plan |= {Grant(who, "topic", topic.name, "literal", op) for op in ("read", "describe")}
            plan |= {Grant(who, "group", name, pattern, "read") for name, pattern in groups_of(who)}
    return sorted(plan)
