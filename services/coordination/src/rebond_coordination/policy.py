"""Who may see and do what: one place turns the signed-in person into a `Scope`, and every
store query takes that scope.

Two layers, so that no page can forget one:

- **Pages** (`Scope.may`): a capability per area of the console. A person without it gets
  403 (the area exists for everyone; being refused tells nothing about any case).
- **Rows** (`Scope.referrals`, `Scope.cases`, `Scope.audit`, `Scope.users`): the filter every
  query of that table applies, in SQL. A member of one association never loads another's
  referral, so a URL naming one answers 404 exactly as an unknown one does: existence does
  not leak.

A member limited to an antenna (`departments`) sees the referrals of those departments only;
a referral without a department (the person did not give one) is seen by the association's
members who are not limited to an antenna.
"""

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, Table, and_, false, true

from rebond_coordination.domain import Role


class Capability(StrEnum):
    QUEUE = "queue"
    DIRECTORY = "directory"
    PREVIEW = "preview"
    STATISTICS = "statistics"
    INBOX = "inbox"
    CONFERENCES = "conferences"
    #: Success stories and peer volunteers waiting for approval (issue 24).
    MODERATION = "moderation"
    AUDIT = "audit"
    USERS = "users"


_BY_ROLE: dict[Role, frozenset[Capability]] = {
    Role.COORDINATOR: frozenset(Capability),
    Role.MEMBER: frozenset({Capability.INBOX, Capability.MODERATION, Capability.AUDIT}),
    Role.ORGANISER: frozenset({Capability.CONFERENCES, Capability.MODERATION, Capability.AUDIT}),
}


@dataclass(frozen=True)
class Scope:
    """The signed-in person as every query sees them."""

    user_id: str
    name: str
    role: Role
    association: str | None = None
    departments: frozenset[str] | None = None
    admin: bool = False

    @property
    def coordinator(self) -> bool:
        return self.role is Role.COORDINATOR

    def may(self, capability: Capability) -> bool:
        if capability is Capability.USERS:
            return self.coordinator or (self.admin and self.association is not None)
        return capability in _BY_ROLE[self.role]

    def may_invite(self, role: Role, association: str | None, admin: bool) -> bool:
        """Coordinators invite anyone; an association's admin invites members and organisers
        of their own association (and cannot hand out the admin flag)."""
        if self.coordinator:
            return True
        return (
            self.may(Capability.USERS)
            and role is not Role.COORDINATOR
            and association == self.association
            and not admin
        )

    def referrals(self, table: Table) -> ColumnElement[bool]:
        """Rows of the inbox's table this person may see."""
        if self.coordinator:
            return true()
        if self.role is not Role.MEMBER or self.association is None:
            return false()
        mine = table.c.association_id == self.association
        if self.departments is None:
            return mine
        return and_(mine, table.c.department.in_(sorted(self.departments)))

    def cases(self, table: Table) -> ColumnElement[bool]:
        """Rows of the human queue this person may see: coordinators only."""
        return true() if self.coordinator else false()

    def audit(self, table: Table) -> ColumnElement[bool]:
        """Coordinators read the whole log; others their association's entries."""
        if self.coordinator:
            return true()
        if self.association is None:
            return false()
        return table.c.association_id == self.association

    def users(self, table: Table) -> ColumnElement[bool]:
        """Coordinators manage every account; an admin the accounts of their association."""
        if self.coordinator:
            return true()
        if not self.may(Capability.USERS):
            return false()
        return table.c.association_id == self.association

    def conferences_of(self, association: str) -> bool:
        """Whether this person may manage `association`'s conferences."""
        if self.coordinator:
            return True
        return self.role is Role.ORGANISER and association == self.association
