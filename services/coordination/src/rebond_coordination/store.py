"""The console's store: every use case is one transaction (`rebond_sql.Database.run`), holding
the change, its audit entry and, when something must be published, its outbox row.

Concurrency: a state change is a conditional `UPDATE … WHERE <the state it starts from>`, and
its row count says whether it won. Two coordinators claiming the same case both run
`UPDATE cases SET claimed_by = me WHERE status = 'waiting' AND (nobody holds it, or the claim
lapsed)`: on PostgreSQL the second waits on the first's row lock, then re-checks the `WHERE`
against the committed row and matches nothing; on SQLite the transactions take turns. Either
way exactly one wins, and the other is told who holds the case.

Every query reading cases, referrals, the audit log or accounts takes the person's `Scope`
(`policy.py`), so a row outside it is never loaded.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Self

from sqlalchemy import (
    Connection,
    RowMapping,
    Update,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from rebond_coordination.domain import (
    AnswerVerdict,
    CaseStatus,
    ClaimVerdict,
    QueueEntry,
    ReferralState,
    Role,
    answer_verdict,
    association_name,
    claim_verdict,
)
from rebond_coordination.policy import Scope
from rebond_coordination.ports import DirectoryOverride, _Message
from rebond_coordination.tables import (
    audit,
    cases,
    directory,
    follow_ups,
    invitations,
    metadata,
    outbox,
    overrides,
    referrals,
    sessions,
    stat_facts,
    users,
)
from rebond_sql import Database
from rebond_sql.migrations import upgrade

#: The directory values an override sets (None: the file's value).
_LIVE_VALUES = ("paused", "weekly_capacity", "response_deadline_days")

MIGRATIONS = Path(__file__).parent / "migrations"
#: Who the journal names when nobody signed in acted: an account made on the command line
#: (`add-user`), a fact read from Kafka (the router's decision or override, the person's own
#: step), someone not signed in whose sign-in was refused.
COMMAND_LINE = "ligne de commande"
ROUTING = "orientation automatique"
THE_PERSON = "la personne accompagnée"
NOT_SIGNED_IN = "quelqu'un de non connecté"


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to the latest Alembic revision, or to `revision`, the one way
    every store does (`rebond_sql.migrations.upgrade`: replicas starting together wait for the
    first one's migration)."""
    upgrade(url, MIGRATIONS, revision)


class _Row:
    """A dataclass read from a result row: one field per column (extra columns are ignored)."""

    @classmethod
    def of(cls, row: RowMapping) -> Self:
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})  # type: ignore[arg-type]


@dataclass(frozen=True)
class UserRow(_Row):
    id: str
    email: str
    name: str
    role: str
    association_id: str | None
    departments: list[str] | None
    antenna: str | None
    admin: bool
    password_hash: str | None
    totp_secret: str | None
    totp_last_counter: int | None
    active: bool
    failed_sign_ins: int
    locked_until: datetime | None
    created_at: datetime
    last_sign_in_at: datetime | None

    @property
    def scope(self) -> Scope:
        return Scope(
            user_id=self.id,
            name=self.name,
            role=Role(self.role),
            association=self.association_id,
            departments=frozenset(self.departments) if self.departments is not None else None,
            admin=self.admin,
        )

    @property
    def invited(self) -> bool:
        """Invited and not yet signed up (no password set)."""
        return self.password_hash is None


@dataclass(frozen=True)
class SessionRow(_Row):
    token_hash: str
    user_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class CaseRow(_Row):
    reference: str
    urgent: bool
    stage: str | None
    region: str | None
    department: str | None
    needs: list[str] | None
    cause: str
    tried: list[dict[str, Any]]
    contact: dict[str, Any] | None
    queued_at: datetime
    status: str
    claimed_by: str | None
    claimed_at: datetime | None
    assigned_to: str | None
    note: str | None
    outcome: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    claimed_by_name: str | None = None

    @property
    def entry(self) -> QueueEntry:
        return QueueEntry(
            self.reference, self.urgent, self.queued_at, CaseStatus(self.status),
            self.claimed_by, self.claimed_at,
        )  # fmt: skip


@dataclass(frozen=True)
class ReferralRow(_Row):
    referral_id: str
    reference: str
    association_id: str
    urgent: bool
    stage: str | None
    region: str | None
    department: str | None
    needs: list[str] | None
    contact: dict[str, Any] | None
    message: str | None
    distress: str | None
    reasons: list[dict[str, str]]
    offered_at: datetime
    respond_by: datetime | None
    status: str
    decline_reason: str | None
    comment: str | None
    answered_at: datetime | None
    answered_by: str | None
    outcome: str | None
    contacted_on: str | None
    outcome_at: datetime | None
    withdrawn_at: datetime | None
    updated_at: datetime
    call_by: datetime | None = None
    caller: str | None = None
    antenna: str | None = None

    @property
    def state(self) -> ReferralState:
        return ReferralState(self.status)


@dataclass(frozen=True)
class FollowUpRow(_Row):
    referral_id: str
    reference: str
    association_id: str
    contacted: bool
    answered_at: datetime


@dataclass(frozen=True)
class AssociationValues:
    association_id: str
    paused: bool
    weekly_capacity: int
    response_deadline_days: float
    rule_set_version: str
    observed_at: datetime


@dataclass(frozen=True)
class OverrideRow(_Row):
    id: str
    association_id: str
    paused: bool | None
    weekly_capacity: int | None
    response_deadline_days: float | None
    note: str
    requested_by: str
    requested_at: datetime
    applied_at: datetime | None
    requested_by_name: str | None = None


@dataclass(frozen=True)
class AuditEntry(_Row):
    id: int
    at: datetime
    actor_id: str | None
    actor_name: str
    action: str
    association_id: str | None
    reference: str | None
    subject: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class NewUser:
    email: str
    name: str
    role: Role
    association_id: str | None = None
    departments: list[str] | None = None
    antenna: str | None = None
    admin: bool = False


class EmailTaken(Exception):
    """An account with this e-mail address exists already."""


class Refused(Exception):
    """A state change that cannot happen from the state found; `reason` says why (French)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClaimResult:
    verdict: ClaimVerdict
    holder_name: str | None = None


def write_audit(
    connection: Connection,
    at: datetime,
    actor: Scope | str,
    action: str,
    *,
    association_id: str | None = None,
    reference: str | None = None,
    subject: str | None = None,
    **detail: Any,
) -> None:
    """One audit entry, in the caller's transaction: it exists exactly when the action does.
    `actor` is the signed-in person, or the name of who else acted (`COMMAND_LINE`, `ROUTING`,
    `THE_PERSON`, `NOT_SIGNED_IN`)."""
    person = actor if isinstance(actor, Scope) else None
    connection.execute(
        insert(audit).values(
            at=at,
            actor_id=person.user_id if person else None,
            actor_name=person.name if person else actor,
            action=action,
            association_id=association_id,
            reference=reference,
            subject=subject,
            detail=detail,
        )
    )


def enqueue(connection: Connection, message: _Message) -> None:
    """The message, in the caller's transaction: published by `Relay` once this commits."""
    connection.execute(
        insert(outbox).values(
            message_id=message.message_id,
            kind=getattr(message, "kind"),  # noqa: B009 (every outbound message has its kind)
            payload=message.model_dump(mode="json"),
            created_at=message.at,
            attempts=0,
        )
    )


def upsert(connection: Connection, table: Any, values: dict[str, Any], keys: Sequence[str]) -> None:
    """Insert `values`, or update the row with the same `keys` to them."""
    dialect = connection.dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(**values)
    changed = {name: value for name, value in values.items() if name not in keys}
    connection.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changed))


def insert_once(connection: Connection, table: Any, values: dict[str, Any]) -> bool:
    """Insert `values` unless a row with the same key exists; whether it was inserted."""
    dialect = connection.dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(**values)
    key = next(iter(table.primary_key.columns))
    # RETURNING rather than rowcount: the async psycopg path does not report it for upserts.
    return connection.execute(statement.on_conflict_do_nothing().returning(key)).first() is not None


def new_id() -> str:
    return str(uuid.uuid4())


class Store:
    """The use cases' transactions. Methods take the person's `Scope` where rows are read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.database = Database(url, name="coordination")

    async def start(self) -> None:
        await self.database.start()

    async def close(self) -> None:
        await self.database.close()

    async def create_schema(self) -> None:
        """Tables straight from the metadata (tests of one module); services use `migrate`."""
        await self.database.run(lambda c: metadata.create_all(c))

    # --- accounts -------------------------------------------------------------------------

    async def create_user(
        self, new: NewUser, password_hash: str | None, actor: Scope | None, now: datetime,
        totp_secret: str | None = None,
    ) -> str:  # fmt: skip
        """An account (active when it has a password); `EmailTaken` if the address is used."""

        def work(connection: Connection) -> str:
            return _insert_user(
                connection, new, now, actor, "user_created", password_hash=password_hash,
                totp_secret=totp_secret,
            )  # fmt: skip

        return await self.database.run(work)

    async def user_by_email(self, email: str) -> UserRow | None:
        def work(connection: Connection) -> UserRow | None:
            row = connection.execute(select(users).where(users.c.email == normalise_email(email)))
            found = row.mappings().first()
            return UserRow.of(found) if found else None

        return await self.database.run(work)

    async def user(self, user_id: str) -> UserRow | None:
        def work(connection: Connection) -> UserRow | None:
            found = (
                connection.execute(select(users).where(users.c.id == user_id)).mappings().first()
            )
            return UserRow.of(found) if found else None

        return await self.database.run(work)

    async def users(self, scope: Scope) -> list[UserRow]:
        def work(connection: Connection) -> list[UserRow]:
            query = (
                select(users)
                .where(scope.users(users))
                .order_by(users.c.association_id, users.c.name)
            )
            return [UserRow.of(row) for row in connection.execute(query).mappings()]

        return await self.database.run(work)

    async def deactivate(self, scope: Scope, user_id: str, now: datetime) -> UserRow | None:
        """Deactivate an account in the person's scope and end its sessions; None if not in it."""

        def work(connection: Connection) -> None:
            connection.execute(update(users).where(users.c.id == user_id).values(active=False))
            _revoke_all(connection, user_id, now)

        return await self._change_user(scope, user_id, now, "user_deactivated", work)

    async def _change_user(
        self, scope: Scope, user_id: str, now: datetime, action: str,
        change: Callable[[Connection], None], *where: ColumnElement[bool],
    ) -> UserRow | None:  # fmt: skip
        """`change` an account in the person's scope (and matching `where`) and audit it as
        `action`, in one transaction; the account as it was, or None if not in scope."""

        def work(connection: Connection) -> UserRow | None:
            query = select(users).where(users.c.id == user_id, scope.users(users), *where)
            found = connection.execute(query).mappings().first()
            if found is None:
                return None
            change(connection)
            write_audit(
                connection, now, scope, action, association_id=found["association_id"],
                subject=user_id,
            )  # fmt: skip
            return UserRow.of(found)

        return await self.database.run(work)

    async def sign_in_failed(
        self, user_id: str, now: datetime, threshold: int, lock_for: timedelta
    ) -> datetime | None:
        """Count a failed sign-in; at `threshold` in a row the account locks for `lock_for`.
        Returns the end of the lock when this failure set one."""

        def work(connection: Connection) -> datetime | None:
            connection.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(failed_sign_ins=users.c.failed_sign_ins + 1)
            )
            found = connection.execute(
                select(users.c.failed_sign_ins, users.c.association_id).where(users.c.id == user_id)
            ).one()
            write_audit(
                connection,
                now,
                NOT_SIGNED_IN,
                "sign_in_failed",
                association_id=found[1],
                subject=user_id,
            )
            if found[0] < threshold:
                return None
            until = now + lock_for
            connection.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(failed_sign_ins=0, locked_until=until)
            )
            write_audit(
                connection, now, NOT_SIGNED_IN, "account_locked", association_id=found[1],
                subject=user_id, until=until.isoformat(),
            )  # fmt: skip
            return until

        return await self.database.run(work)

    async def open_session(
        self, user: UserRow, token_hash: str, csrf_token: str, now: datetime, *,
        totp_counter: int | None = None, rehashed: str | None = None,
    ) -> bool:  # fmt: skip
        """Start a session after a good sign-in. False (and nothing written) when the TOTP code's
        time step was used before: `UPDATE … WHERE last < step` lets each step in only once,
        even for two sign-ins racing with the same code."""

        def work(connection: Connection) -> bool:
            values: dict[str, Any] = {
                "failed_sign_ins": 0,
                "locked_until": None,
                "last_sign_in_at": now,
            }
            if rehashed is not None:
                values["password_hash"] = rehashed
            condition: ColumnElement[bool] = users.c.id == user.id
            if totp_counter is not None:
                values["totp_last_counter"] = totp_counter
                condition = and_(
                    condition,
                    or_(
                        users.c.totp_last_counter.is_(None),
                        users.c.totp_last_counter < totp_counter,
                    ),
                )
            if connection.execute(update(users).where(condition).values(**values)).rowcount != 1:
                return False
            connection.execute(
                insert(sessions).values(
                    token_hash=token_hash, user_id=user.id, csrf_token=csrf_token,
                    created_at=now, last_seen_at=now,
                )
            )  # fmt: skip
            write_audit(
                connection, now, user.scope, "signed_in", association_id=user.association_id
            )
            return True

        return await self.database.run(work)

    async def session(self, token_hash: str) -> tuple[SessionRow, UserRow] | None:
        def work(connection: Connection) -> tuple[SessionRow, UserRow] | None:
            row = (
                connection.execute(select(sessions).where(sessions.c.token_hash == token_hash))
                .mappings()
                .first()
            )
            if row is None:
                return None
            user = (
                connection.execute(select(users).where(users.c.id == row["user_id"]))
                .mappings()
                .one()
            )
            return SessionRow.of(row), UserRow.of(user)

        return await self.database.run(work)

    async def touch_session(self, token_hash: str, now: datetime) -> None:
        await self.database.run(
            lambda c: c.execute(
                update(sessions).where(sessions.c.token_hash == token_hash).values(last_seen_at=now)
            )
        )

    async def end_session(self, token_hash: str, scope: Scope | None, now: datetime) -> None:
        """Revoke one session (sign-out, or found expired)."""

        def work(connection: Connection) -> None:
            done = connection.execute(
                update(sessions)
                .where(sessions.c.token_hash == token_hash, sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if done.rowcount and scope is not None:
                write_audit(connection, now, scope, "signed_out", association_id=scope.association)

        await self.database.run(work)

    # --- invitations ----------------------------------------------------------------------

    async def invite(
        self, scope: Scope, new: NewUser, token_hash: str, now: datetime, valid_for: timedelta
    ) -> str:
        """An account waiting for its owner, and its one-time link; `EmailTaken` if the address
        has an account already."""

        def work(connection: Connection) -> str:
            user_id = _insert_user(connection, new, now, scope, "user_invited", active=False)
            _new_invitation(connection, user_id, scope, token_hash, now, valid_for)
            return user_id

        return await self.database.run(work)

    async def reinvite(
        self, scope: Scope, user_id: str, token_hash: str, now: datetime, valid_for: timedelta
    ) -> UserRow | None:
        """A new link for an invited account in scope (earlier links stop working)."""

        def work(connection: Connection) -> None:
            connection.execute(
                update(invitations)
                .where(invitations.c.user_id == user_id, invitations.c.used_at.is_(None))
                .values(used_at=now)
            )
            _new_invitation(connection, user_id, scope, token_hash, now, valid_for)

        return await self._change_user(
            scope, user_id, now, "user_reinvited", work, users.c.password_hash.is_(None)
        )

    async def invitation(self, token_hash: str, now: datetime) -> UserRow | None:
        """The invited account, while its link is unused and unexpired."""

        def work(connection: Connection) -> UserRow | None:
            query = (
                select(users)
                .join(invitations, invitations.c.user_id == users.c.id)
                .where(
                    invitations.c.token_hash == token_hash,
                    invitations.c.used_at.is_(None),
                    invitations.c.expires_at > now,
                )
            )
            found = connection.execute(query).mappings().first()
            return UserRow.of(found) if found else None

        return await self.database.run(work)

    async def accept_invitation(
        self, token_hash: str, now: datetime, password_hash: str, totp_secret: str | None
    ) -> UserRow | None:
        """Use the link once: set the password (and TOTP), activate the account. None when the
        link is unknown, used or expired: the `UPDATE … WHERE used_at IS NULL` lets one use in."""

        def work(connection: Connection) -> UserRow | None:
            used = connection.execute(
                update(invitations)
                .where(
                    invitations.c.token_hash == token_hash,
                    invitations.c.used_at.is_(None),
                    invitations.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(invitations.c.user_id)
            ).first()
            if used is None:
                return None
            connection.execute(
                update(users)
                .where(users.c.id == used[0])
                .values(password_hash=password_hash, totp_secret=totp_secret, active=True)
            )
            user = UserRow.of(
                connection.execute(select(users).where(users.c.id == used[0])).mappings().one()
            )
            write_audit(
                connection, now, user.scope, "invitation_accepted",
                association_id=user.association_id, subject=user.id, totp=totp_secret is not None,
            )  # fmt: skip
            return user

        return await self.database.run(work)

    # --- the human queue ------------------------------------------------------------------

    async def queue(self, scope: Scope) -> list[CaseRow]:
        """Cases waiting, urgent first then oldest (`domain.queue_order`)."""

        def work(connection: Connection) -> list[CaseRow]:
            query = (
                _cases_with_holder()
                .where(cases.c.status == CaseStatus.WAITING.value, scope.cases(cases))
                .order_by(cases.c.urgent.desc(), cases.c.queued_at, cases.c.reference)
            )
            return [CaseRow.of(row) for row in connection.execute(query).mappings()]

        return await self.database.run(work)

    async def case(self, scope: Scope, reference: str) -> CaseRow | None:
        return await self.database.run(lambda c: _case(c, scope, reference))

    async def claim(
        self, scope: Scope, reference: str, now: datetime, claim_for: timedelta
    ) -> ClaimResult | None:
        """Claim a waiting case (None: not in scope). See the module for why one claim wins."""

        def work(connection: Connection) -> ClaimResult | None:
            lapsed = now - claim_for
            won = connection.execute(
                _update_case(
                    scope,
                    reference,
                    cases.c.status == CaseStatus.WAITING.value,
                    or_(
                        cases.c.claimed_by.is_(None),
                        cases.c.claimed_by == scope.user_id,
                        cases.c.claimed_at <= lapsed,
                    ),
                ).values(claimed_by=scope.user_id, claimed_at=now)
            ).rowcount
            found = _case(connection, scope, reference)
            if found is None:
                return None
            if won:
                write_audit(connection, now, scope, "case_claimed", reference=reference)
                return ClaimResult(ClaimVerdict.MINE, scope.name)
            return ClaimResult(
                claim_verdict(found.entry, scope.user_id, now, claim_for), found.claimed_by_name
            )

        return await self.database.run(work)

    async def release(self, scope: Scope, reference: str, now: datetime) -> CaseRow | None:
        def work(connection: Connection) -> CaseRow | None:
            done = connection.execute(
                _update_case(scope, reference, cases.c.claimed_by == scope.user_id).values(
                    claimed_by=None, claimed_at=None
                )
            ).rowcount
            if done:
                write_audit(connection, now, scope, "case_released", reference=reference)
            return _case(connection, scope, reference)

        return await self.database.run(work)

    async def resolve(
        self, scope: Scope, reference: str, now: datetime, *, status: CaseStatus,
        message: _Message, association_id: str | None = None, note: str = "",
        outcome: str | None = None,
    ) -> CaseRow | None:  # fmt: skip
        """Assign (`ASSIGNED`, to `association_id`) or close (`CLOSED`, with `outcome`) a case
        the person holds. None: not in scope. `Refused` says why it cannot be (stale, not held).
        The change, the audit entry and the outbound message are one transaction."""

        def work(connection: Connection) -> CaseRow | None:
            done = connection.execute(
                _update_case(
                    scope, reference, cases.c.status == CaseStatus.WAITING.value,
                    cases.c.claimed_by == scope.user_id,
                ).values(
                    status=status.value, assigned_to=association_id, note=note or None,
                    outcome=outcome, resolved_by=scope.user_id, resolved_at=now,
                    claimed_by=None, claimed_at=None,
                )
            ).rowcount  # fmt: skip
            found = _case(connection, scope, reference)
            if found is None:
                return None
            if not done:
                raise Refused(_why_not_resolvable(found))
            action = "case_assigned" if status is CaseStatus.ASSIGNED else "case_closed"
            write_audit(
                connection, now, scope, action, association_id=association_id, reference=reference,
                outcome=outcome, note_given=bool(note),
            )  # fmt: skip
            enqueue(connection, message)
            return found

        return await self.database.run(work)

    # --- the associations' inbox ----------------------------------------------------------

    async def inbox(self, scope: Scope, association: str | None = None) -> list[ReferralRow]:
        """Referrals in scope, urgent first then newest."""

        def work(connection: Connection) -> list[ReferralRow]:
            query = select(referrals).where(scope.referrals(referrals))
            if association is not None:
                query = query.where(referrals.c.association_id == association)
            query = query.order_by(
                referrals.c.urgent.desc(), referrals.c.offered_at.desc(), referrals.c.referral_id
            )
            return [ReferralRow.of(row) for row in connection.execute(query).mappings()]

        return await self.database.run(work)

    async def referral(self, scope: Scope, referral_id: str) -> ReferralRow | None:
        return await self.database.run(lambda c: _referral(c, scope, referral_id))

    async def answer(
        self, scope: Scope, referral_id: str, now: datetime, *, accept: bool,
        reason: str | None, comment: str | None, message: _Message,
        call_by: datetime | None = None, caller: str | None = None,
    ) -> tuple[ReferralRow, AnswerVerdict] | None:  # fmt: skip
        """Accept or decline. The verdict (`domain.answer_verdict`) is checked on the row read
        in this transaction, and the `UPDATE` repeats its condition (still offered, deadline
        not passed), so an answer racing the router's expiry or the e-mail link's answer
        cannot both land."""

        def work(connection: Connection) -> tuple[ReferralRow, AnswerVerdict] | None:
            found = _referral(connection, scope, referral_id)
            if found is None:
                return None
            verdict = answer_verdict(found.state, found.respond_by, now)
            if verdict is not AnswerVerdict.OK:
                return found, verdict
            state = ReferralState.ACCEPTED if accept else ReferralState.DECLINED
            deadline_ok = or_(referrals.c.respond_by.is_(None), referrals.c.respond_by > now)
            done = connection.execute(
                update(referrals)
                .where(
                    referrals.c.referral_id == referral_id,
                    referrals.c.status == ReferralState.OFFERED.value,
                    deadline_ok,
                )
                .values(
                    status=state.value, decline_reason=reason, comment=comment,
                    answered_at=now, answered_by=scope.user_id, updated_at=now,
                    call_by=call_by, caller=caller,
                )
            ).rowcount  # fmt: skip
            if not done:
                return found, AnswerVerdict.ANSWERED
            write_audit(
                connection, now, scope, "referral_accepted" if accept else "referral_declined",
                association_id=found.association_id, reference=found.reference,
                subject=referral_id, reason=reason,
            )  # fmt: skip
            enqueue(connection, message)
            updated = _referral(connection, scope, referral_id)
            assert updated is not None
            return updated, AnswerVerdict.OK

        return await self.database.run(work)

    async def record_outcome(
        self, scope: Scope, referral_id: str, now: datetime, *, outcome: str,
        contacted_on: str | None, message: _Message,
    ) -> ReferralRow | None:  # fmt: skip
        """Note what happened after an acceptance; `Refused` when the referral is not accepted."""

        def work(connection: Connection) -> ReferralRow | None:
            found = _referral(connection, scope, referral_id)
            if found is None:
                return None
            done = connection.execute(
                update(referrals)
                .where(
                    referrals.c.referral_id == referral_id,
                    referrals.c.status == ReferralState.ACCEPTED.value,
                )
                .values(outcome=outcome, contacted_on=contacted_on, outcome_at=now, updated_at=now)
            ).rowcount
            if not done:
                raise Refused("Un suivi ne peut être noté qu'après avoir accepté l'orientation.")
            write_audit(
                connection, now, scope, "outcome_recorded", association_id=found.association_id,
                reference=found.reference, subject=referral_id, outcome=outcome,
            )  # fmt: skip
            enqueue(connection, message)
            return _referral(connection, scope, referral_id)

        return await self.database.run(work)

    async def follow_ups(self, scope: Scope, reference: str) -> list[FollowUpRow]:
        """The person's follow-up answers about the referrals of `reference` in scope."""

        def work(connection: Connection) -> list[FollowUpRow]:
            query = select(follow_ups).where(follow_ups.c.reference == reference)
            if not scope.coordinator:
                query = query.join(
                    referrals, referrals.c.referral_id == follow_ups.c.referral_id
                ).where(scope.referrals(referrals))
            query = query.order_by(follow_ups.c.answered_at)
            return [FollowUpRow.of(row) for row in connection.execute(query).mappings()]

        return await self.database.run(work)

    # --- the directory --------------------------------------------------------------------

    async def directory(self) -> tuple[dict[str, AssociationValues], list[OverrideRow]]:
        """The router's effective values per association, and every override, newest first."""

        def work(connection: Connection) -> tuple[dict[str, AssociationValues], list[OverrideRow]]:
            values = {
                row["association_id"]: AssociationValues(**row)
                for row in connection.execute(select(directory)).mappings()
            }
            query = (
                select(overrides, users.c.name.label("requested_by_name"))
                .outerjoin(users, users.c.id == overrides.c.requested_by)
                .order_by(overrides.c.requested_at.desc())
            )
            return values, [OverrideRow.of(row) for row in connection.execute(query).mappings()]

        return await self.database.run(work)

    async def request_override(
        self, scope: Scope, message: DirectoryOverride, now: datetime
    ) -> None:
        """Record an override (pending until the router applies it), audited and queued.

        What is queued holds every live value of the association: a field the coordinator left
        empty keeps the value of the association's previous override. The router keeps only the
        latest record per association (`directory.overrides` is compacted), so a capacity
        changed after a pause must carry the pause along, or it would lift it."""

        def work(connection: Connection) -> None:
            previous = (
                connection.execute(
                    select(overrides)
                    .where(overrides.c.association_id == message.association_id)
                    .order_by(overrides.c.requested_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            changed = {name: getattr(message, name) for name in _LIVE_VALUES}
            kept = {
                name: previous[name]
                for name, value in changed.items()
                if value is None and previous is not None
            }
            whole = message.model_copy(update=kept)
            connection.execute(
                insert(overrides).values(
                    id=whole.message_id, association_id=whole.association_id,
                    paused=whole.paused, weekly_capacity=whole.weekly_capacity,
                    response_deadline_days=whole.response_deadline_days,
                    note=whole.note, requested_by=scope.user_id, requested_at=now,
                )
            )  # fmt: skip
            write_audit(
                connection, now, scope, "override_requested",
                association_id=whole.association_id, subject=whole.message_id, **changed,
            )  # fmt: skip
            enqueue(connection, whole)

        await self.database.run(work)

    # --- the audit log --------------------------------------------------------------------

    async def audit(
        self, scope: Scope, *, association: str | None = None, limit: int = 200
    ) -> list[AuditEntry]:
        """The `limit` latest entries `scope` may read, newest first by their time, not by
        when they were written: a fact projected late (a case queued from an older
        `referrals.unrouted` record) carries its own earlier time. Entries of one instant come
        latest written first."""

        def work(connection: Connection) -> list[AuditEntry]:
            query = select(audit).where(scope.audit(audit))
            if association is not None:
                query = query.where(audit.c.association_id == association)
            query = query.order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
            return [AuditEntry.of(row) for row in connection.execute(query).mappings()]

        return await self.database.run(work)

    async def log(self, scope: Scope, action: str, now: datetime, **kwargs: Any) -> None:
        """An audit entry for an action with no change of its own here (a preview, an export,
        a conference changed in the events service)."""
        await self.database.run(lambda c: write_audit(c, now, scope, action, **kwargs))

    # --- the outbox -----------------------------------------------------------------------

    async def pending_messages(self, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """The oldest unsent messages, in order."""

        def work(connection: Connection) -> list[tuple[int, dict[str, Any]]]:
            query = (
                select(outbox.c.seq, outbox.c.payload)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.seq)
                .limit(limit)
            )
            return [(row[0], row[1]) for row in connection.execute(query)]

        return await self.database.run(work)

    async def message_sent(self, seq: int, now: datetime) -> None:
        await self.database.run(
            lambda c: c.execute(
                update(outbox)
                .where(outbox.c.seq == seq)
                .values(sent_at=now, attempts=outbox.c.attempts + 1, last_error=None)
            )
        )

    async def message_failed(self, seq: int, error: str) -> None:
        await self.database.run(
            lambda c: c.execute(
                update(outbox)
                .where(outbox.c.seq == seq)
                .values(attempts=outbox.c.attempts + 1, last_error=error[:500])
            )
        )

    async def unsent_ids(self) -> set[str]:
        """Ids of the messages not yet handed over (the pages show them as "en attente d'envoi")."""

        def work(connection: Connection) -> set[str]:
            query = select(outbox.c.message_id).where(outbox.c.sent_at.is_(None))
            return set(connection.execute(query).scalars())

        return await self.database.run(work)

    # --- metrics and statistics -----------------------------------------------------------

    async def urgent_waiting_since(self) -> list[datetime]:
        """When each urgent case still waiting entered the queue."""

        def work(connection: Connection) -> list[datetime]:
            query = select(cases.c.queued_at).where(
                cases.c.status == CaseStatus.WAITING.value, cases.c.urgent.is_(True)
            )
            return list(connection.execute(query).scalars())

        return await self.database.run(work)

    async def stat_rows(self, since: datetime | None, until: datetime | None) -> list[RowMapping]:
        def work(connection: Connection) -> list[RowMapping]:
            query = select(stat_facts)
            if since is not None:
                query = query.where(stat_facts.c.at >= since)
            if until is not None:
                query = query.where(stat_facts.c.at < until)
            return list(connection.execute(query.order_by(stat_facts.c.at)).mappings())

        return await self.database.run(work)

    async def count(self, table_name: str) -> int:
        """Rows of a table (for tests and checks)."""
        table = metadata.tables[table_name]
        return int(
            await self.database.run(
                lambda c: c.execute(select(func.count()).select_from(table)).scalar_one()
            )
        )


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _insert_user(
    connection: Connection, new: NewUser, now: datetime, actor: Scope | None, action: str, *,
    password_hash: str | None = None, totp_secret: str | None = None, active: bool | None = None,
) -> str:  # fmt: skip
    """A new account's row and its audit line (`action`, by `actor`); its id."""
    email = normalise_email(new.email)
    if connection.execute(select(users.c.id).where(users.c.email == email)).first() is not None:
        raise EmailTaken(email)
    user_id = new_id()
    connection.execute(
        insert(users).values(
            id=user_id, email=email, name=new.name.strip(), role=new.role.value,
            association_id=new.association_id, departments=new.departments, antenna=new.antenna,
            admin=new.admin, password_hash=password_hash, totp_secret=totp_secret,
            active=password_hash is not None if active is None else active,
            failed_sign_ins=0, created_at=now,
        )
    )  # fmt: skip
    write_audit(
        connection, now, actor or COMMAND_LINE, action, association_id=new.association_id,
        subject=user_id,
        role=new.role.value, admin=new.admin,
    )  # fmt: skip
    return user_id


def _new_invitation(
    connection: Connection, user_id: str, scope: Scope, token_hash: str, now: datetime,
    valid_for: timedelta,
) -> None:  # fmt: skip
    connection.execute(
        insert(invitations).values(
            token_hash=token_hash, user_id=user_id, invited_by=scope.user_id,
            created_at=now, expires_at=now + valid_for,
        )
    )  # fmt: skip


def _revoke_all(connection: Connection, user_id: str, now: datetime) -> None:
    connection.execute(
        update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _cases_with_holder() -> Any:
    return select(cases, users.c.name.label("claimed_by_name")).outerjoin(
        users, users.c.id == cases.c.claimed_by
    )


def _case(connection: Connection, scope: Scope, reference: str) -> CaseRow | None:
    query = _cases_with_holder().where(cases.c.reference == reference, scope.cases(cases))
    found = connection.execute(query).mappings().first()
    return CaseRow.of(found) if found else None


def _update_case(scope: Scope, reference: str, *where: ColumnElement[bool]) -> Update:
    """An `UPDATE` of the case `reference` if it is in the person's scope and matches `where`."""
    return update(cases).where(cases.c.reference == reference, scope.cases(cases), *where)


def _referral(connection: Connection, scope: Scope, referral_id: str) -> ReferralRow | None:
    query = select(referrals).where(
        referrals.c.referral_id == referral_id, scope.referrals(referrals)
    )
    found = connection.execute(query).mappings().first()
    return ReferralRow.of(found) if found else None


def _why_not_resolvable(case: CaseRow) -> str:
    """Why a case cannot be assigned or closed by this person, in French."""
    if case.status == CaseStatus.ASSIGNED.value:
        return f"Ce dossier a déjà été attribué à {association_name(case.assigned_to)}."
    if case.status == CaseStatus.CLOSED.value:
        return "Ce dossier a déjà été clos."
    if case.status == CaseStatus.WITHDRAWN.value:
        return "La personne a retiré sa demande : ce dossier n'existe plus."
    if case.claimed_by is not None:
        return f"Ce dossier est pris en charge par {case.claimed_by_name}."
    return "Prenez d'abord ce dossier en charge."
