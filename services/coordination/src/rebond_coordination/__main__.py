"""`python -m rebond_coordination` (or `rebond-coordination`): serve the staff console.

`python -m rebond_coordination add-user EMAIL --name NAME --role coordinator|member|organiser
[--association ID] [--departments 33,24] [--admin] [--totp]` creates an account; the password
is asked twice on the terminal (never on the command line, where `ps` and the shell history
would keep it). With `--totp` it prints the TOTP secret to enter in an authenticator app.
There is no default account, in production or elsewhere.
"""

import argparse
import asyncio
import getpass
import socket
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rebond_service import command

# The service's modules are imported where they are used (`rebond_service.command` says why).
if TYPE_CHECKING:
    import uvicorn

    from rebond_coordination.settings import CoordinationSettings


def _add_user_parser() -> argparse.ArgumentParser:
    from rebond_contracts.associations import AssociationId
    from rebond_coordination.domain import Role

    parser = argparse.ArgumentParser(prog="rebond-coordination add-user")
    parser.add_argument("email")
    parser.add_argument("--name", required=True)
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--association", choices=[a.value for a in AssociationId])
    parser.add_argument("--departments", help="the antenna's departments, e.g. 33,24")
    parser.add_argument("--antenna", help="the antenna's name")
    parser.add_argument(
        "--admin", action="store_true", help="may invite members of the association"
    )
    parser.add_argument("--totp", action="store_true", help="require a TOTP code at sign-in")
    return parser


def add_user(
    argv: list[str], settings: "CoordinationSettings", read_password: object = getpass.getpass
) -> int:
    from rebond_coordination import auth
    from rebond_coordination.domain import Role
    from rebond_coordination.store import EmailTaken, NewUser, Store, migrate

    args = _add_user_parser().parse_args(argv)
    role = Role(args.role)
    if role is not Role.COORDINATOR and not args.association:
        print("add-user: --association is required for members and organisers", file=sys.stderr)
        return 2
    password = read_password("Mot de passe : ")  # type: ignore[operator]
    problem = auth.password_problem(password, read_password("Encore une fois : "))  # type: ignore[operator]
    if problem:
        print(f"add-user: {problem}", file=sys.stderr)
        return 2
    departments = [d.strip() for d in (args.departments or "").split(",") if d.strip()] or None
    secret = auth.new_totp_secret() if args.totp else None
    new = NewUser(
        email=args.email, name=args.name, role=role,
        association_id=None if role is Role.COORDINATOR else args.association,
        departments=departments, antenna=args.antenna, admin=args.admin,
    )  # fmt: skip

    async def create() -> None:
        store = Store(settings.database)
        try:
            await store.create_user(
                new, auth.hash_password(password), None, datetime.now(UTC), totp_secret=secret
            )
        finally:
            await store.close()

    if settings.migrate_on_start:
        migrate(settings.database)
    try:
        asyncio.run(create())
    except EmailTaken:
        print(f"add-user: an account exists already for {args.email}", file=sys.stderr)
        return 1
    print(f"add-user: account created for {args.email} ({role.value})")
    if secret:
        print(f"TOTP secret (enter it in your authenticator app): {secret}")
        print(auth.totp_uri(secret, new.email))
    return 0


def build_server(settings: "CoordinationSettings") -> tuple["uvicorn.Server", list[socket.socket]]:
    """COORDINATION_HOST:COORDINATION_PORT, and COORDINATION_INTERNAL_PORT (`/metrics`) when
    set; the sign-in limit's client is `rebond_http.clients`' (COORDINATION_TRUSTED_PROXIES)."""
    from rebond_coordination.app import create_app
    from rebond_http import private

    return private.server_for(create_app(settings), settings)


def _settings() -> "CoordinationSettings":
    from rebond_coordination.settings import CoordinationSettings

    return CoordinationSettings()


def main() -> None:
    if sys.argv[1:2] == ["add-user"]:
        raise SystemExit(add_user(sys.argv[2:], command.configured(_settings())))
    command.run({}, build_server, settings=_settings, program="rebond-coordination", usage=__doc__)


if __name__ == "__main__":
    main()
