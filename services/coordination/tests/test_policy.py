"""The access policy: capabilities per role, who may invite whom, and the row filters each
scope puts on the inbox's queries (compiled to SQL here; run against real databases in
test_store.py and through every URL in test_access.py)."""

import pytest
from sqlalchemy.dialects import sqlite

from rebond_coordination.domain import Role
from rebond_coordination.policy import Capability, Scope
from rebond_coordination.tables import referrals

COORDINATOR = Scope("c", "Cora", Role.COORDINATOR)
MEMBER = Scope("m", "Marc", Role.MEMBER, association="60000-rebonds")
ANTENNA = Scope(
    "a", "Anne", Role.MEMBER, association="60000-rebonds", departments=frozenset({"33", "24"})
)
ADMIN = Scope("d", "Dana", Role.MEMBER, association="60000-rebonds", admin=True)
ORGANISER = Scope("o", "Olga", Role.ORGANISER, association="second-souffle")


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        (COORDINATOR, set(Capability)),
        (MEMBER, {Capability.INBOX, Capability.MODERATION, Capability.AUDIT}),
        (ANTENNA, {Capability.INBOX, Capability.MODERATION, Capability.AUDIT}),
        (ADMIN, {Capability.INBOX, Capability.MODERATION, Capability.AUDIT, Capability.USERS}),
        (ORGANISER, {Capability.CONFERENCES, Capability.MODERATION, Capability.AUDIT}),
    ],
)
def test_each_role_reaches_its_own_areas_only(scope: Scope, allowed: set[Capability]) -> None:
    """Coordinators everything; members the inbox; organisers conferences; admins accounts."""
    assert {c for c in Capability if scope.may(c)} == allowed


def test_an_admin_invites_members_and_organisers_of_their_association_only() -> None:
    """No coordinator, no other association, no admin flag from an association's admin."""
    assert ADMIN.may_invite(Role.MEMBER, "60000-rebonds", admin=False)
    assert ADMIN.may_invite(Role.ORGANISER, "60000-rebonds", admin=False)
    assert not ADMIN.may_invite(Role.COORDINATOR, None, admin=False)
    assert not ADMIN.may_invite(Role.MEMBER, "second-souffle", admin=False)
    assert not ADMIN.may_invite(Role.MEMBER, "60000-rebonds", admin=True)
    assert not MEMBER.may_invite(Role.MEMBER, "60000-rebonds", admin=False)
    assert COORDINATOR.may_invite(Role.MEMBER, "apesa", admin=True)


def _sql(scope: Scope) -> str:
    clause = scope.referrals(referrals)
    return str(clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_the_inbox_filter_names_the_association_and_the_antennas_departments() -> None:
    """A member's queries are limited to their association, an antenna's to its departments."""
    assert _sql(COORDINATOR) == "1"
    assert _sql(MEMBER) == "referrals.association_id = '60000-rebonds'"
    assert _sql(ANTENNA) == (
        "referrals.association_id = '60000-rebonds' AND referrals.department IN ('24', '33')"
    )
    assert _sql(ORGANISER) == "0"


def test_organisers_manage_only_their_associations_conferences() -> None:
    """An organiser's association yes, another no; coordinators any."""
    assert ORGANISER.conferences_of("second-souffle")
    assert not ORGANISER.conferences_of("60000-rebonds")
    assert not MEMBER.conferences_of("60000-rebonds")
    assert COORDINATOR.conferences_of("apesa")
