"""The ACL plan derived from the topic registry: what each principal may do, and nothing more."""

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import DECISIONS, Service, all_topics, dead_letters, responses
from rebond_kafka.acl_plan import (
    Grant,
    acl_plan,
    groups_of,
    may_use_group,
    principal_of,
    principals,
)


def test_every_service_and_association_is_a_principal() -> None:
    """One principal per service and one per association, nothing else (no super user)."""
    assert principals() == [
        "intake", "router", "notifier", "events", "coordination",
        *(f"association-{a.value}" for a in AssociationId),
    ]  # fmt: skip


def test_an_association_acts_only_on_its_own_topics() -> None:
    """An association's grants name only its referrals, its responses and its own group prefix."""
    for association in AssociationId:
        who = f"association-{association.value}"
        mine = {(g.resource_type, g.resource_name) for g in acl_plan() if g.principal == who}
        assert mine == {
            ("topic", f"referrals.{association.value}"),
            ("topic", f"responses.{association.value}"),
            ("group", who),
            ("group", f"{who}."),
        }


def test_writers_write_and_readers_read_with_their_groups() -> None:
    """routing.decisions: its writer may write and describe it, each reader read and describe it
    and read with the group `rebond-<reader>` or groups named `rebond-<reader>.…`."""
    plan = set(acl_plan([DECISIONS]))
    expected = {
        Grant("router", "topic", "routing.decisions", "literal", "write"),
        Grant("router", "topic", "routing.decisions", "literal", "describe"),
    }
    for reader in DECISIONS.readers:
        expected |= {
            Grant(reader.value, "topic", "routing.decisions", "literal", "read"),
            Grant(reader.value, "topic", "routing.decisions", "literal", "describe"),
            Grant(reader.value, "group", f"rebond-{reader.value}", "literal", "read"),
            Grant(reader.value, "group", f"rebond-{reader.value}.", "prefixed", "read"),
        }
    assert plan == expected


def test_a_delegate_writes_on_the_owners_behalf() -> None:
    """The notifier's answer page and the console's inbox may write an association's responses,
    as the association may."""
    topic = responses(AssociationId.APESA)
    writers = {g.principal for g in acl_plan([topic]) if g.operation == "write"}
    assert writers == {"association-apesa", "notifier", "coordination"}


def test_a_topic_nobody_reads_gives_no_read_grant() -> None:
    """Dead letters are read by operators (the super user): no principal gets read on them."""
    assert not [g for g in acl_plan([dead_letters(Service.ROUTER)]) if g.operation == "read"]


def test_association_topics_name_their_association() -> None:
    """`referrals.<id>` and `responses.<id>` act as `association-<id>` for the association side."""
    assert principal_of("association", "responses.re-creer") == "association-re-creer"
    assert principal_of("notifier", "responses.re-creer") == "notifier"


def test_the_plan_covers_every_registered_topic_sorted_without_duplicates() -> None:
    """Every registry topic has a writer grant; the plan is sorted and has no duplicate."""
    plan = acl_plan()
    assert plan == sorted(set(plan))
    written = {g.resource_name for g in plan if g.operation == "write"}
    assert written == {t.name for t in all_topics()}


@pytest.mark.parametrize(
    ("principal", "group", "allowed"),
    [
        ("association-x", "association-x", True),
        ("association-x", "association-x.listen", True),
        ("association-x", "association-xy", False),
        ("association-x", "association-xy.listen", False),
        ("association-x", "association-x-console", False),
        ("notifier", "rebond-notifier", True),
        ("notifier", "rebond-notifier.status", True),
        ("notifier", "rebond-notifiers.status", False),
        ("intake", "rebond-intakeX", False),
    ],
)
def test_a_principal_uses_only_its_own_group_and_those_under_it_after_a_dot(
    principal: str, group: str, allowed: bool
) -> None:
    """`association-x` may use `association-x` and `association-x.<anything>`, never the
    groups of an association whose id starts with its own (`association-xy`)."""
    assert may_use_group(principal, group) is allowed


def test_no_principal_may_use_another_ones_groups() -> None:
    """Across every principal of the registry, no group grant reaches another's groups."""
    for principal in principals():
        for other in principals():
            if other != principal:
                for name, _ in groups_of(other):
                    assert not may_use_group(principal, name + "listen")
                    assert not may_use_group(principal, name)
