"""Every association client the README documents, run as the association runs it, on the real
secured broker: each reads its own referral (key, `ce_*` headers, value) and is refused another
association's topic with an authorisation error that ends the client, not a timeout.

The commands are read from the README's blocks marked `<!-- client: NAME -->` and run with bash,
unchanged but for three things that differ between `make run` and the test session: the broker's
address (`127.0.0.1:9092`), the folder of the client configurations (`.run/kafka/`; `kafkactl.py`
writes them into every secured broker's data dir the same way) and the association's Python
environment (`~/rebond-kafka`, made once by the guide's own setup commands and kept in the cache,
as the Kafka jars are). The guide (`services/notifier/README.md`) must show the same blocks, so
what it tells associations is what runs here.

Every consumer group is `association-<id>.<name>` (`group`), one of the two forms the ACLs grant
an association (`rebond_kafka.acl_plan.groups_of`: its base, or under it after a dot, so that
`association-x` cannot join `association-xy`'s groups).
"""

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.payloads import ReferralV1, new_reference
from rebond_contracts.topics import referrals, responses
from rebond_kafka.acl_plan import groups_of
from rebond_kafka.testing import records_to_end
from rebond_testing.events import publish_event

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
GUIDE = REPO / "services" / "notifier" / "README.md"
EXAMPLE = REPO / "services" / "notifier" / "examples" / "read_referrals.py"
GOLDEN = REPO / "contracts" / "golden" / "fr.rebond.referral.offered" / "v1" / "example.json"
CACHE = Path(os.environ.get("REBOND_CACHE", Path.home() / ".cache" / "rebond"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

OWN = AssociationId.SOIXANTE_MILLE_REBONDS
OTHER = AssociationId.SECOND_SOUFFLE
#: The first librdkafka whose SCRAM exchange Kafka 4 accepts (librdkafka#4895: earlier ones sent
#: the client nonce twice, which Kafka 4 rejects as invalid credentials).
MINIMUM_LIBRDKAFKA = (2, 6, 1)
REFERENCE = re.compile(r"RB-[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}")
BLOCK = re.compile(
    r"<!-- (client|file): (?P<name>[\w./-]+) -->\n```\w*\n(?P<body>.*?)^```", re.M | re.S
)


def group(client: str) -> str:
    """The consumer group our association's `client` reads with, `association-<id>.<client>`:
    a name under the prefix the ACLs grant it (from the same derivation)."""
    [prefix] = [name for name, kind in groups_of(f"association-{OWN.value}") if kind == "prefixed"]
    return prefix + client


def blocks(path: Path) -> dict[str, str]:
    """The fenced blocks of `path` marked `<!-- client: NAME -->` or `<!-- file: PATH -->`."""
    return {match["name"]: match["body"] for match in BLOCK.finditer(path.read_text())}


def commands(path: Path, client: str) -> list[str]:
    """The commands of `path`'s block for `client`, each on one line (continuations joined)."""
    body = blocks(path)[client].replace("\\\n", " ")
    return [line for line in body.splitlines() if line.strip()]


def subcommand(path: Path, client: str, name: str) -> str:
    """The command of `path`'s `client` block that runs `rebond-association <name>`."""
    [command] = [c for c in commands(path, client) if f"rebond-association {name}" in c]
    return command


def needs(program: str) -> None:
    if shutil.which(program) is None:
        message = f"{program} is not installed (deploy/local/ensure-test-packages.sh installs it)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@dataclass(frozen=True)
class Context:
    """What differs between `make run` and this test session, and the referral published."""

    bootstrap: str
    data_dir: Path
    venv: Path
    referral: ReferralV1

    def here(self, command: str) -> str:
        """`command`, written for `make run`, aimed at this session's broker and folders."""
        return (
            command.replace("127.0.0.1:9092", self.bootstrap)
            .replace(".run/kafka/", f"{self.data_dir}/")
            .replace("~/rebond-kafka", str(self.venv))
        )


@dataclass(frozen=True)
class Ran:
    stdout: str
    stderr: str
    #: True when the client ended by itself, False when the test stopped it (it had printed
    #: what was awaited and went on waiting for more records, as consumers do).
    ended: bool


def _ctrl_c_works() -> None:
    """In the child: SIGINT back to its default, since a test run from a background job inherits
    it ignored (and an ignored SIGINT stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def run(
    command: str, until: Callable[[str], bool] | None = None, within_s: float = 90
) -> Ran:
    """Run `command` with bash from the repository's root, as a person types it, until its
    output satisfies `until` (then stop it) or it ends by itself; fail after `within_s`."""
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=REPO, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=_ctrl_c_works,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())
    out = b""
    ended = timed_out = False
    try:
        async with asyncio.timeout(within_s):
            while line := await proc.stdout.readline():
                out += line
                if until is not None and until(out.decode(errors="replace")):
                    break
            else:
                await proc.wait()
                ended = True
    except TimeoutError:
        timed_out = True
    finally:
        if proc.returncode is None:  # Ctrl-C, as the docs say: each client leaves its group
            # A client leaving its group on a loaded machine may take longer than a person waits;
            # the group may also be gone by the time the wait gives up (hence no error then).
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                os.killpg(proc.pid, signal.SIGINT)
                async with asyncio.timeout(30):
                    await proc.wait()
        # Nothing the command started outlives it (a process left holding stderr open would
        # keep the read below waiting), and no wait here is without a bound.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            async with asyncio.timeout(15):
                await proc.wait()
                stderr = await errors
        except TimeoutError:
            errors.cancel()
            pytest.fail(f"did not end within 15 s of being stopped: {command}\n{out.decode()}")
    ran = Ran(out.decode(errors="replace"), stderr.decode(errors="replace"), ended)
    if timed_out:
        pytest.fail(f"still running after {within_s} s: {command}\n{ran.stdout}\n{ran.stderr}")
    return ran


def referral_for(association: AssociationId) -> ReferralV1:
    """The golden referral, as a new one for `association` (its own reference and id)."""
    data = json.loads(GOLDEN.read_text())["data"]
    return ReferralV1.model_validate(
        data | {"reference": new_reference(), "referral_id": str(uuid.uuid4()),
                "association_id": association.value}
    )  # fmt: skip


async def publish_as_notifier(kafka_secure, referral: ReferralV1) -> None:  # type: ignore[no-untyped-def]
    """Publish `referral` on its association's topic as the notifier does: as principal
    `notifier`, binary-mode CloudEvent keyed by the reference, acks=all, idempotent."""
    topic = referrals(referral.association_id)
    event = topic.envelope(
        referral, subject=referral.reference, correlationid=referral.reference,
        id=str(referral.referral_id),
    )  # fmt: skip
    await publish_event(
        kafka_secure.bootstrap, topic.name, event, referral.reference,
        **kafka_secure.sasl("notifier"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def association_venv() -> Path:
    """`~/rebond-kafka`: the association's Python environment with confluent-kafka, made by the
    guide's setup commands themselves (pip from PyPI) once per version of those commands."""
    setup = commands(GUIDE, "kcat-setup")
    digest = hashlib.sha256("\n".join(setup).encode()).hexdigest()[:12]
    venv = CACHE / f"association-{digest}" / "rebond-kafka"
    if not (venv / "librdkafka.so.1").exists():
        for command in setup:
            subprocess.run(
                ["bash", "-c", command.replace("~/rebond-kafka", str(venv))],
                check=True, timeout=600,
            )  # fmt: skip
    return venv


@pytest.fixture(scope="module")
async def context(kafka_secure, association_venv: Path) -> Context:  # type: ignore[no-untyped-def]
    """One referral published on our association's topic, one on another's."""
    referral = referral_for(OWN)
    await publish_as_notifier(kafka_secure, referral)
    await publish_as_notifier(kafka_secure, referral_for(OTHER))
    return Context(kafka_secure.bootstrap, kafka_secure.data_dir, association_venv, referral)


# --- what each client prints of a record ------------------------------------------------------


@dataclass(frozen=True)
class Record:
    key: str
    headers: dict[str, str]
    value: dict[str, object]


def console_records(out: str) -> Iterator[Record]:
    """`print.headers=true print.key=true`: `h1:v1,h2:v2<TAB>key<TAB>value` per record."""
    for line in out.splitlines():
        if line.count("\t") == 2:
            headers, key, value = line.split("\t")
            pairs = (pair.partition(":") for pair in headers.split(","))
            yield Record(key, {name: v for name, _, v in pairs}, json.loads(value))


def kcat_records(out: str) -> Iterator[Record]:
    """`-f 'key=%k headers=%h\\n%s\\n\\n'`: a line with the key and headers, then the value."""
    lines = out.splitlines()
    for first, value in itertools.pairwise(lines):
        if match := re.fullmatch(r"key=(\S*) headers=(\S*)", first):
            pairs = (pair.partition("=") for pair in match[2].split(","))
            yield Record(match[1], {name: v for name, _, v in pairs}, json.loads(value))


def python_records(out: str) -> Iterator[Record]:
    """The guide's script: one JSON object per record, `{"key", "headers", "value"}`."""
    for line in out.splitlines():
        yield Record(**json.loads(line))


PARSERS: dict[str, Callable[[str], Iterator[Record]]] = {
    "console": console_records,
    "kcat": kcat_records,
    "python": python_records,
}
#: What each client says when the broker refuses it the topic.
REFUSED = {
    "console": "TopicAuthorizationException",
    "kcat": "Topic authorization failed",
    "python": "TOPIC_AUTHORIZATION_FAILED",
    "cli": "TopicAuthorizationFailedError",
}


def found(parse: Callable[[str], Iterator[Record]], reference: str) -> Callable[[str], bool]:
    """Whether the output so far holds a complete record keyed `reference`."""

    def done(out: str) -> bool:
        try:
            return any(record.key == reference for record in parse(out))
        except (ValueError, TypeError):  # a record half printed: wait for the rest
            return False

    return done


# --- the clients ------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["console", "kcat", "python"])
async def test_a_documented_client_reads_its_own_referral(client: str, context: Context) -> None:
    """The README's command for `client` prints our referral: its key, `ce_*` headers and value."""
    needs("java" if client == "console" else "kcat")
    [command] = commands(README, client)
    assert group(client) in command, "the README's group follows association-<id>.<client>"
    reference = context.referral.reference
    ran = await run(context.here(command), until=found(PARSERS[client], reference))
    assert not ran.ended, f"{client} ended before printing the referral:\n{ran.stderr}"
    [record] = [r for r in PARSERS[client](ran.stdout) if r.key == reference]
    assert record.value == context.referral.model_dump(mode="json")
    assert record.headers["ce_id"] == str(context.referral.referral_id)
    assert record.headers["ce_type"] == "fr.rebond.referral.offered"
    assert record.headers["ce_subject"] == reference
    assert record.headers["ce_specversion"] == "1.0"
    assert record.headers["content-type"] == "application/json"


@pytest.mark.parametrize("client", ["console", "kcat", "python"])
async def test_a_documented_client_is_refused_another_associations_topic(
    client: str, context: Context
) -> None:
    """The same command aimed at another association's topic ends with an authorisation error."""
    needs("java" if client == "console" else "kcat")
    [command] = commands(README, client)
    foreign = command.replace(referrals(OWN).name, referrals(OTHER).name)
    assert foreign != command
    ran = await run(context.here(foreign), within_s=60)
    assert ran.ended, "the client ended by itself"
    said = ran.stdout + ran.stderr  # Kafka's console tools log their errors on standard output
    assert REFUSED[client] in said, said
    assert "RB-" not in said  # nothing of the other association's referral


def _librdkafka_of(ran: Ran) -> tuple[int, ...]:
    match = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", ran.stdout + ran.stderr)
    assert match, ran.stdout + ran.stderr
    return tuple(int(part) for part in match.groups())


async def test_debian_kcat_alone_cannot_authenticate_to_kafka_4(context: Context) -> None:
    """Why the guide's setup exists: Debian's kcat with its own librdkafka (2.0.2, < 2.6.1) fails
    SCRAM with Kafka 4, running the README's command without `LD_LIBRARY_PATH`."""
    needs("kcat")
    own_version = _librdkafka_of(await run("kcat -V"))
    if own_version >= MINIMUM_LIBRDKAFKA:
        pytest.skip(f"this kcat links librdkafka {own_version}: it needs no setup any more")
    [command] = commands(README, "kcat")
    prefix = "LD_LIBRARY_PATH=~/rebond-kafka "
    assert command.startswith(prefix)
    ran = await run(context.here(command.removeprefix(prefix)), within_s=60)
    assert ran.ended, "kcat gave up by itself"
    assert "SASL authentication error" in ran.stderr, ran.stderr
    assert "invalid credentials" in ran.stderr


async def test_the_guides_kcat_loads_a_librdkafka_that_kafka_4_accepts(context: Context) -> None:
    """After the guide's setup, kcat reports librdkafka 2.6.1 or later (the guide's check)."""
    needs("kcat")
    [command] = commands(GUIDE, "kcat-version")
    assert _librdkafka_of(await run(context.here(command))) >= MINIMUM_LIBRDKAFKA


async def test_the_association_cli_lists_its_own_referrals(context: Context, kafka_secure) -> None:  # type: ignore[no-untyped-def]
    """`rebond-association listen` (table and `--json`) shows our referral, read from its topic."""
    listen = subcommand(README, "cli", "listen")
    reference = context.referral.reference
    ran = await run(context.here(listen), until=lambda out: reference in out)
    assert not ran.ended, f"listen ended before printing the referral:\n{ran.stderr}"
    [row] = [line for line in ran.stdout.splitlines() if reference in line]
    assert "Claire" in row and "after_liquidation" in row
    # The same group remembers what it showed: `--json` is awaited with a new referral.
    newer = referral_for(OWN)
    await publish_as_notifier(kafka_secure, newer)
    as_json = subcommand(GUIDE, "cli-more", "listen")
    ran = await run(context.here(as_json), until=lambda out: newer.reference in out)
    [line] = [line for line in ran.stdout.splitlines() if newer.reference in line]
    assert ReferralV1.model_validate_json(line) == newer


async def test_the_association_cli_is_refused_another_associations_topic(context: Context) -> None:
    """`listen` with our identity on another association's topic ends with an authorisation error
    (with our own group, so that the topic is what is refused)."""
    listen = subcommand(README, "cli", "listen")
    foreign = listen.replace(f"--association {OWN.value}", f"--association {OTHER.value}")
    ran = await run(context.here(f"{foreign} --group {group('listen')}"), within_s=60)
    assert ran.ended
    assert REFUSED["cli"] in ran.stderr, ran.stderr


async def _answers_on(
    kafka_bootstrap: str, association: AssociationId, reference: str
) -> list[str]:
    """`ce_type` of every record keyed `reference` on `responses.<association>`."""
    records = await records_to_end(kafka_bootstrap, [responses(association).name])
    return [
        dict(record.headers)["ce_type"].decode()
        for record in records
        if record.key == reference.encode()
    ]


async def test_the_association_cli_answers_on_its_own_responses_topic(
    context: Context, kafka_bootstrap: str
) -> None:
    """`accept` and `decline` find our referral on our topic and publish on `responses.<our id>`."""
    reference = context.referral.reference
    accept = subcommand(README, "cli", "accept")
    decline = subcommand(GUIDE, "cli-more", "decline")
    for command in (accept, decline):
        ran = await run(context.here(REFERENCE.sub(reference, command)))
        assert ran.ended and json.loads(ran.stdout)["published_to"] == responses(OWN).name
    assert await _answers_on(kafka_bootstrap, OWN, reference) == ["fr.rebond.referral.answered"] * 2


async def test_the_association_cli_is_refused_another_associations_responses(
    context: Context, kafka_bootstrap: str
) -> None:
    """`accept` as another association (given the referral id: no lookup on its topic) is refused
    on `responses.<its id>`: nothing is published there."""
    reference = context.referral.reference
    accept = subcommand(README, "cli", "accept")
    foreign = REFERENCE.sub(reference, accept).replace(
        f"--association {OWN.value}", f"--association {OTHER.value}"
    )
    ran = await run(context.here(f"{foreign} --referral-id {context.referral.referral_id}"))
    assert ran.ended
    assert REFUSED["cli"] in ran.stderr, ran.stderr
    assert await _answers_on(kafka_bootstrap, OTHER, reference) == []


# --- the documents agree ----------------------------------------------------------------------


def test_the_guide_shows_the_readmes_commands() -> None:
    """Every client block of the README is in the associations' guide, word for word."""
    readme, guide = blocks(README), blocks(GUIDE)
    assert set(readme) == {"console", "kcat", "python", "cli"}
    for name, body in readme.items():
        assert guide.get(name) == body, f"the guide's {name!r} block differs from the README's"


def test_the_guide_shows_the_example_script_itself() -> None:
    """The Python script the guide shows is the file the tests run."""
    assert blocks(GUIDE)["services/notifier/examples/read_referrals.py"] == EXAMPLE.read_text()


async def test_the_association_cli_reads_over_sasl_ssl_with_its_file(
    context: Context,
    kafka_secure,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """With a configuration file for SASL_SSL (the brokers' CA as `ssl.ca.location`, as
    production hands it out), `listen` reads our referral over TLS."""
    principal = f"association-{OWN.value}"
    config = tmp_path / f"{principal}.librdkafka.conf"
    config.write_text(
        f"bootstrap.servers={kafka_secure.tls_bootstrap}\nsecurity.protocol=SASL_SSL\n"
        f"ssl.ca.location={kafka_secure.ca_file}\nsasl.mechanisms=SCRAM-SHA-512\n"
        f"sasl.username={principal}\nsasl.password={kafka_secure.credentials[principal]}\n"
    )
    reference = context.referral.reference
    ran = await run(
        f"uv run rebond-association listen --association {OWN.value} --json "
        f"--group {group('tls')} --config {config}",
        until=lambda out: reference in out,
    )
    assert not ran.ended, ran.stderr
    [line] = [line for line in ran.stdout.splitlines() if reference in line]
    assert ReferralV1.model_validate_json(line) == context.referral
