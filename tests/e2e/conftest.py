"""Fixtures of the end-to-end tests: the four services as processes on the session's broker,
started once for the whole folder, with a mail sink and a webhook receiver; helpers to read an
association's topic and a service's SQLite store.

One set of processes serves every test here (starting four services is most of an end-to-end
test's time): each test keeps to its own submissions (references are unguessable, and e-mail
addresses or names fresh where a test looks for them), so tests sharing the services cannot see
each other's outcomes.
"""

import base64
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rebond_testing import MailSink, WebhookSink, headers, read_until, until
from rebond_testing.probe import Record
from rebond_testing.services import SERVICES, RunningService, running

ASSOCIATIONS = ("60000-rebonds", "sos-entrepreneur", "second-souffle", "re-creer", "apesa")
#: The one association with a webhook (Standard Webhooks, signed with this secret).
WEBHOOK_ASSOCIATION = "60000-rebonds"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e-webhook-key-of-32-bytes-long").decode()
#: Each service's consumer group, named as its default is, so /metrics shows the usual labels.
GROUPS = {name: f"rebond-{name}" for name in SERVICES}
#: How long after an acceptance the router asks the person whether they were contacted.
FOLLOW_UP_AFTER_S = 3.0


class Pipeline(dict[str, RunningService]):
    """The running services by name, with what they write to: their stores' folder, the mail
    sink and the webhook receiver."""

    def __init__(
        self, services: dict[str, RunningService], folder: Path, mail: MailSink, hooks: WebhookSink
    ) -> None:
        super().__init__(services)
        self.folder = folder
        self.mail = mail
        self.hooks = hooks

    def rows(self, service: str, query: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows of `query` on `service`'s own SQLite store (read-only)."""
        path = self.folder / f"{service}.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as connection:
            return connection.execute(query, args).fetchall()


@pytest.fixture(scope="package")
def running_services(_kafka_broker: Any) -> Iterator[Pipeline]:
    """intake, router, notifier and events, each its own process, all ready, for every test of
    this folder; e-mails go to a `MailSink`, 60 000 rebonds' webhook to a `WebhookSink`.

    On the secured local broker each connects with its own principal, so the registry's ACLs
    apply to the whole pipeline as they do in production. Log lines reach their files at once
    (unbuffered), for the tests that read them."""
    secure = _kafka_broker.secure
    folder = Path(tempfile.mkdtemp(prefix="rebond-e2e-"))
    with MailSink() as mail, WebhookSink() as hooks, pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONUNBUFFERED", "1")
        env.setenv("E2E_WEBHOOK_SECRET", WEBHOOK_SECRET)  # named by associations.yaml
        associations = folder / "associations.yaml"
        associations.write_text(
            "associations:\n"
            + "".join(
                f"  {a}:\n    email: orientation@{a}.example\n"
                for a in ASSOCIATIONS
                if a != WEBHOOK_ASSOCIATION
            )
            + f"  {WEBHOOK_ASSOCIATION}:\n    email: orientation@{WEBHOOK_ASSOCIATION}.example\n"
            f"    webhook_url: {hooks.url}/rebond\n    webhook_secret: env:E2E_WEBHOOK_SECRET\n"
        )
        settings = {
            # Every test of the folder, and the console, are one client (127.0.0.1) of services
            # that now run once for the whole folder: their per-client limit (tested in their
            # own tests) would refuse the folder's later requests (the console's got a 429).
            "intake": {"rate_limit_per_minute": "0"},
            "events": {"rate_limit_per_minute": "0"},
            # The follow-up comes seconds after an acceptance (not 30 days), checked every
            # half second, so the journey test sees it asked and answered.
            "router": {
                "follow_up_after_days": str(FOLLOW_UP_AFTER_S / 86_400),
                "deadline_check_interval_s": "0.5",
            },
            "notifier": {"smtp_port": str(mail.port), "associations_file": str(associations)},
        }
        with running(
            secure.bootstrap if secure else _kafka_broker.bootstrap,
            folder,
            sasl={name: secure.sasl(name) for name in SERVICES} if secure else None,
            settings={
                name: {"group_id": GROUPS[name], **settings.get(name, {})} for name in SERVICES
            },
        ) as services:
            yield Pipeline(services, folder, mail, hooks)


#: The query that finds a reference's tombstone in each service's store: the last thing each
#: does with an erasure, so all four found means every service is done with it.
TOMBSTONES = {
    "router": "SELECT 1 FROM router_erasures WHERE reference_sha256 = ?",
    "notifier": "SELECT 1 FROM notifier_tombstones WHERE reference_sha256 = ?",
    "events": "SELECT 1 FROM erasures WHERE reference_sha256 = ?",
    "intake": "SELECT 1 FROM intake_erasures WHERE reference_sha256 = ?",
}


def erased_everywhere(run: Pipeline, digest: str, within_s: float = 30) -> list[str]:
    """The services whose store still has no tombstone for `digest` (the reference's SHA-256)
    after waiting up to `within_s` for each: empty once all four erased it."""
    return [
        service
        for service, query in TOMBSTONES.items()
        if not until(lambda s=service, q=query: run.rows(s, q, digest), within_s)
    ]


def association_records(
    kafka_secure: Any, association: str, reference: str, wanted: set[str], within_s: float = 40
) -> dict[str, Record]:
    """Records of `reference` on `referrals.<association>` read as that association, by
    ce_type, once every type in `wanted` was seen (empty if not within `within_s`)."""

    def by_type(records: list[Record]) -> dict[str, Record]:
        found = {headers(r)["ce_type"]: r for r in records if r.key == reference.encode()}
        return found if wanted <= found.keys() else {}

    return read_until(
        kafka_secure.bootstrap, [f"referrals.{association}"], by_type, within_s,
        **kafka_secure.sasl(f"association-{association}"),
    )  # fmt: skip
