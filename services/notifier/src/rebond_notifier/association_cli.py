"""`rebond-association`: an association's own client for its referral and response topics.

    rebond-association listen --association 60000-rebonds [--json]
    rebond-association accept RB-7K3M-Q9XA-2DFE-W8NB --association 60000-rebonds
    rebond-association decline RB-7K3M-Q9XA-2DFE-W8NB --reason no_capacity --association 60000-rebonds

Configured by environment: REBOND_KAFKA_BOOTSTRAP_SERVERS (or KAFKA_BOOTSTRAP_SERVERS),
REBOND_ASSOCIATION (default for --association), and for a secured cluster
REBOND_KAFKA_SECURITY_PROTOCOL (SASL_PLAINTEXT, SASL_SSL), REBOND_KAFKA_SASL_MECHANISM
(default SCRAM-SHA-512), REBOND_KAFKA_SASL_USERNAME (association-<id>), REBOND_KAFKA_SASL_PASSWORD
(or REBOND_KAFKA_SASL_PASSWORD_FILE), and over SASL_SSL REBOND_KAFKA_SSL_CAFILE (the CA that
signed the brokers' certificates, when not one the system trusts). Or by the association's
client configuration file, the one kcat reads with -F (`--config FILE` or
REBOND_KAFKA_CONFIG_FILE), whose settings take precedence over the environment's.
`accept` and `decline` find the referral id by reading the association's own referral topic
for the reference (the latest referral with that key), unless `--referral-id` is given.
"""

import argparse
import asyncio
import json
import ssl
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import SettingsConfigDict

from rebond_contracts.answers import answer_event
from rebond_contracts.associations import AssociationId
from rebond_contracts.envelope import EnvelopeError
from rebond_contracts.payloads import (
    Answer,
    DeclineReason,
    ReferralResponseV1,
    ReferralV1,
    ReferralWithdrawnV1,
)
from rebond_contracts.topics import referrals, responses
from rebond_kafka import reconnect
from rebond_kafka.security import aiokafka_options
from rebond_kafka.settings import KafkaClientSettings
from rebond_notifier.text import escape_controls
from rebond_service.settings import FromEnvironment


class ClientSettings(FromEnvironment, KafkaClientSettings):
    """`REBOND_*` variables; the password may come from REBOND_KAFKA_SASL_PASSWORD_FILE."""

    model_config = SettingsConfigDict(env_prefix="REBOND_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("REBOND_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    association: AssociationId | None = None
    kafka_config_file: Path | None = None

    def kafka(self) -> dict[str, Any]:
        try:
            options = aiokafka_options(self)
        except (OSError, ssl.SSLError) as error:  # the TLS files: a CA or certificate
            files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
            named = ", ".join(str(path) for path in files if path)
            raise CliError(f"cannot use the TLS files ({named}): {error}") from error
        return {"bootstrap_servers": self.kafka_bootstrap_servers, **options}


class CliError(Exception):
    """Shown to the user as is, exit status 2."""


#: The settings of a librdkafka client configuration file (what `kafkactl.py` writes into
#: `.run/kafka/clients/<principal>.librdkafka.conf`, what kcat reads with -F), by field.
LIBRDKAFKA_KEYS = {
    "bootstrap.servers": "REBOND_KAFKA_BOOTSTRAP_SERVERS",
    "security.protocol": "kafka_security_protocol",
    "sasl.mechanisms": "kafka_sasl_mechanism",
    "sasl.mechanism": "kafka_sasl_mechanism",
    "sasl.username": "kafka_sasl_username",
    "sasl.password": "kafka_sasl_password",
    "ssl.ca.location": "kafka_ssl_cafile",
    "ssl.certificate.location": "kafka_ssl_certfile",
    "ssl.key.location": "kafka_ssl_keyfile",
}


def load_settings(config_file: Path | None = None) -> ClientSettings:
    """The environment's settings, with those of the association's client configuration file
    (`config_file`, else REBOND_KAFKA_CONFIG_FILE) in their place: the one file an association
    holds then serves kcat, its own scripts and this client alike. A line this client cannot
    honour is refused by name rather than ignored: a setting silently dropped (a CA, say) would
    connect differently from what the file says."""
    settings = ClientSettings()
    path = config_file or settings.kafka_config_file
    if path is None:
        return settings
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read the configuration file {path}: {error.strerror}") from error
    values: dict[str, str] = {}
    lines: dict[str, str] = {}  # field -> the file's setting, to name it in an error
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, equals, value = (part.strip() for part in line.partition("="))
        if not equals or key not in LIBRDKAFKA_KEYS:
            raise CliError(
                f"{path}, line {number}: unsupported setting {key!r} "
                f"(known: {', '.join(sorted(LIBRDKAFKA_KEYS))})"
            )
        values[LIBRDKAFKA_KEYS[key]] = value
        lines[LIBRDKAFKA_KEYS[key]] = f"line {number}: {key}"
    try:
        return ClientSettings(**values)  # type: ignore[arg-type]  # text, which pydantic reads
    except ValidationError as error:
        wrong = ", ".join(lines.get(str(e["loc"][0]), str(e["loc"][0])) for e in error.errors())
        raise CliError(f"{path}, {wrong}: not a value this client knows") from error


def show(line: str, out: TextIO) -> None:
    """Print one line whose text comes from the referrals (a person's first name, an error
    quoting a record): every control or format character is shown as its escape (`\\u001b`),
    so no escape sequence written by a stranger reaches the volunteer's terminal. Inside JSON
    the escape is JSON's own: the line stays valid JSON with the same value."""
    print(escape_controls(line), file=out, flush=True)


TABLE = "{reference:<24} {urgent:<7} {stage:<24} {region:<6} {first_name:<16} {channel:<8} {respond_by:<10} {needs}"


def table_row(referral: ReferralV1) -> str:
    return TABLE.format(
        reference=referral.reference,
        urgent="URGENT" if referral.urgent else "-",
        stage=referral.stage.value,
        region=referral.region,
        first_name=referral.contact.first_name[:16],
        channel=referral.contact.preferred_channel.value,
        respond_by=referral.respond_by.date().isoformat() if referral.respond_by else "-",
        needs=",".join(n.value for n in referral.needs),
    )


def table_header() -> str:
    return TABLE.format(
        reference="REFERENCE",
        urgent="URGENT",
        stage="STAGE",
        region="REGION",
        first_name="FIRST NAME",
        channel="CONTACT",
        respond_by="ANSWER BY",
        needs="NEEDS",
    )


async def listen(
    settings: ClientSettings,
    association: AssociationId,
    *,
    as_json: bool,
    group: str | None,
    out: TextIO = sys.stdout,
) -> None:
    topic = referrals(association)
    consumer = AIOKafkaConsumer(
        topic.name,
        group_id=group or f"association-{association.value}.listen",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.kafka(),
    )
    await consumer.start()
    try:
        if not as_json:
            show(table_header(), out)
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    try:
                        referral = topic.read(record.value, record.headers).data
                    except EnvelopeError as error:
                        show(f"skipped an unreadable record: {error}", sys.stderr)
                        continue
                    if isinstance(referral, ReferralWithdrawnV1):
                        line = (
                            referral.model_dump_json()
                            if as_json
                            else f"{referral.reference}  WITHDRAWN: the person asked for erasure; "
                            "delete what you hold about this referral."
                        )
                        show(line, out)
                        continue
                    show(referral.model_dump_json() if as_json else table_row(referral), out)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


async def find_referral(
    settings: ClientSettings, association: AssociationId, reference: str
) -> ReferralV1:
    """The latest referral for `reference` on the association's own topic."""
    topic = referrals(association)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.kafka())
    await consumer.start()
    try:
        # `topics()` does not refresh the consumer's own metadata: read the fetched cluster.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic.name) or set()
        assigned = [TopicPartition(topic.name, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: ReferralV1 | None = None
        remaining = {tp for tp in assigned if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.key == reference.encode():
                        try:
                            found = topic.read(record.value, record.headers).data
                        except EnvelopeError:
                            continue
                        if isinstance(found, ReferralWithdrawnV1):
                            raise CliError(f"{reference} was withdrawn by the person")
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        if found is None:
            raise CliError(f"no referral {reference} on {topic.name}")
        return found
    finally:
        await consumer.stop()


async def answer(
    settings: ClientSettings,
    association: AssociationId,
    reference: str,
    decision: Answer,
    reason: DeclineReason | None,
    referral_id: uuid.UUID | None,
) -> ReferralResponseV1:
    if referral_id is None:
        referral_id = (await find_referral(settings, association, reference)).referral_id
    response = ReferralResponseV1(
        referral_id=referral_id,
        reference=reference,
        answer=decision,
        reason=reason,
        answered_at=datetime.now(UTC),
    )
    topic = responses(association)
    event = answer_event(association, response)
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **settings.kafka())
    await producer.start()
    try:
        await producer.send_and_wait(
            topic.name,
            event.kafka_value(),
            key=reference.encode(),
            headers=[(k, v.encode()) for k, v in event.kafka_headers().items()],
        )
    finally:
        await producer.stop()
    return response


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="rebond-association",
        description="Read your referrals and answer them (accept or decline).",
    )
    commands = root.add_subparsers(dest="command", required=True)

    def with_association(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--association",
            type=AssociationId,
            help="your association id (default: REBOND_ASSOCIATION)",
        )
        sub.add_argument(
            "--config",
            type=Path,
            help="your client configuration file, association-<id>.librdkafka.conf "
            "(default: REBOND_KAFKA_CONFIG_FILE, else the REBOND_KAFKA_* variables)",
        )

    listen_cmd = commands.add_parser("listen", help="print each new referral as it arrives")
    with_association(listen_cmd)
    listen_cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    listen_cmd.add_argument(
        "--group",
        help="consumer group, starting with association-<id> on a secured cluster "
        "(default association-<id>.listen): remembers what was already printed",
    )
    for name, help_text in (("accept", "accept a referral"), ("decline", "decline a referral")):
        sub = commands.add_parser(name, help=help_text)
        with_association(sub)
        sub.add_argument("reference", help="the referral's reference, RB-XXXX-XXXX-XXXX-XXXX")
        sub.add_argument(
            "--referral-id", type=uuid.UUID, help="skip the lookup on your referral topic"
        )
        if name == "decline":
            sub.add_argument(
                "--reason", type=DeclineReason, required=True, choices=list(DeclineReason)
            )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    reconnect.install()  # a `listen` left running through a broker outage knocks, not spins
    try:
        settings = load_settings(args.config)
    except CliError as error:
        show(f"rebond-association: {error}", sys.stderr)
        return 2
    association = args.association or settings.association
    if association is None:
        print("rebond-association: give --association or set REBOND_ASSOCIATION", file=sys.stderr)
        return 2
    try:
        if args.command == "listen":
            asyncio.run(listen(settings, association, as_json=args.json, group=args.group))
            return 0
        decision = Answer.ACCEPT if args.command == "accept" else Answer.DECLINE
        response = asyncio.run(
            answer(
                settings,
                association,
                args.reference,
                decision,
                getattr(args, "reason", None),
                args.referral_id,
            )
        )
    except CliError as error:
        show(f"rebond-association: {error}", sys.stderr)
        return 2
    except KafkaError as error:
        print(f"rebond-association: Kafka refused: {type(error).__name__}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    summary = {
        "published_to": responses(association).name,
        "reference": response.reference,
        "referral_id": str(response.referral_id),
        "answer": response.answer.value,
        "reason": response.reason.value if response.reason else None,
    }
    show(json.dumps(summary), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
