"""Provisioning as code: the registry's topics, the principals' SCRAM credentials and the ACL plan,
made on a running Kafka cluster, idempotently.

One module makes Kafka ready for Rebond wherever it runs:

- `deploy/kafka/kafkactl.py`, the local broker or three-node cluster (`make run`, the tests, the
  bench): topics, users and ACLs, with the passwords of the data dir's `credentials.json`;
- the compose stack's `topics` service and the Kubernetes dev overlay's Job
  (`python -m rebond_kafka.provision`): topics, on brokers without authentication;
- the prod overlay, where Strimzi's operators make the topics and users: its `KafkaTopic`s
  (`rebond_kafka.strimzi`) are `topic_spec`s, and its `KafkaUser`s carry the same `acl_plan`.

What a topic gets (`topic_spec`): its registry partitions (raised to `partitions` when asked; a
single-partition topic stays single, a dead-letter topic keeps its order), the replication factor
and `min.insync.replicas` of the cluster's `Durability`, its retention, and, for a topic with
personal data, `segment.ms` (`rebond_contracts.topics.erasure_window_ms`). Each setting is set on
the topic itself, so no broker default can weaken it.

Why confluent-kafka (librdkafka) rather than aiokafka: aiokafka's admin client has no calls for
ACLs, SCRAM credentials or incremental configuration changes. SCRAM credentials go through Kafka's
admin API (`AlterUserScramCredentials`, KIP-554), which Kafka 4.x serves in KRaft mode: a password
travels inside the request on the admin's connection, never on a command line.

Idempotent: each step makes only what is missing or different, so running it again after an
association joined the registry adds its topics, its user and its ACLs, and nothing else.
"""

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self, cast

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from rebond_contracts.topics import Topic, all_topics
from rebond_kafka.acl_plan import Grant, acl_plan
from rebond_kafka.backoff import Backoff
from rebond_kafka.security import librdkafka_options
from rebond_kafka.settings import KafkaClientSettings

#: librdkafka's settings: `bootstrap.servers` and the connection's (`librdkafka_options`).
AdminConfig = Mapping[str, str | int | float | bool]
#: What confluent-kafka's calls about several users answer: a future per user.
_Futures = dict[str, Future[object]]
#: confluent-kafka annotates a filter's strings as `str`; None is its documented "any value".
_ANY = cast(str, None)
#: How long one probe for the brokers waits for an answer (at most: `wait_for_brokers`).
PROBE_S = 5.0


class ProvisioningError(RuntimeError):
    """Kafka refused or did not answer a provisioning step; the message says which."""


@dataclass(frozen=True)
class Durability:
    """How many copies of each partition the cluster keeps (`replicas`), and how many must hold
    a record before a producer with `acks=all` is told it is written (`min_insync_replicas`).
    Below that many in-sync copies, Kafka refuses writes rather than accept one it may lose."""

    replicas: int
    min_insync_replicas: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_insync_replicas <= self.replicas:
            raise ValueError(
                f"need 1 <= min.insync.replicas ({self.min_insync_replicas}) "
                f"<= replicas ({self.replicas})"
            )

    @classmethod
    def of(cls, replicas: int) -> "Durability":
        """`replicas` copies, all but one of which must have each write: one broker may be lost
        (drained, restarting, dead) without a write refused or lost. One copy on one broker."""
        return cls(replicas, max(1, replicas - 1))

    @classmethod
    def for_brokers(cls, brokers: int) -> "Durability":
        """Three copies (two in sync) on three brokers or more; as many as there are below."""
        return cls.of(min(3, max(1, brokers)))


#: A single broker (`make run`, the test suite's session broker): one copy.
SINGLE_BROKER = Durability(1, 1)
#: Three brokers or more (the local cluster, compose, Kubernetes): three copies, two in sync.
CLUSTER = Durability(3, 2)


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the cluster should hold it."""

    name: str
    partitions: int
    replication_factor: int
    #: Topic-level configuration, as Kafka takes it (strings).
    configs: Mapping[str, str]


def topic_spec(
    topic: Topic, durability: Durability = SINGLE_BROKER, partitions: int | None = None
) -> TopicSpec:
    """`topic` as the cluster should hold it: its partitions (at least `partitions` unless the
    registry gives it a single one, whose order matters), the durability's copies and minimum
    in sync, its retention (or compaction) and (personal data) its segments' span."""
    configs = {"min.insync.replicas": str(durability.min_insync_replicas)}
    if topic.retention_ms is not None:
        configs["retention.ms"] = str(topic.retention_ms)
    if topic.segment_ms is not None:
        configs["segment.ms"] = str(topic.segment_ms)
    if topic.compacted:
        configs["cleanup.policy"] = "compact"
    count = max(topic.partitions, partitions or 0) if topic.partitions > 1 else 1
    return TopicSpec(topic.name, count, durability.replicas, configs)


def topic_specs(
    durability: Durability = SINGLE_BROKER,
    partitions: int | None = None,
    topics: Iterable[Topic] | None = None,
) -> list[TopicSpec]:
    """A `topic_spec` per registry topic (`topics`, by default all of them), in registry order."""
    return [
        topic_spec(t, durability, partitions) for t in (all_topics() if topics is None else topics)
    ]


@dataclass
class Report:
    """What one provisioning run did."""

    created: list[str] = field(default_factory=list)
    #: Existing topics whose configuration was set back to the plan's.
    aligned: list[str] = field(default_factory=list)
    #: Existing topics with another replication factor than the plan's (left as they are:
    #: changing it means moving replicas, an operator's decision).
    replication_drift: list[str] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)
    acl_bindings: int | None = None

    def lines(self) -> list[str]:
        """The run, told in a few lines for an operator."""
        said = [f"topics created: {', '.join(self.created) or 'none (all present)'}"]
        if self.aligned:
            said.append(f"configuration aligned with the registry: {', '.join(self.aligned)}")
        said += [f"replication differs (left as is): {drift}" for drift in self.replication_drift]
        if self.users_added:
            said.append(f"SCRAM credentials added for {', '.join(self.users_added)}")
        if self.acl_bindings is not None:
            said.append(f"{self.acl_bindings} ACL bindings in place")
        return said


class Provisioner:
    """What one admin connection makes on a cluster.

    `admin_config` is librdkafka's: `bootstrap.servers` and, on a secured cluster, a super
    user's connection (`librdkafka_options`). Every call waits for Kafka's answer, at most
    `timeout_s` each."""

    def __init__(
        self,
        admin_config: AdminConfig,
        *,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # librdkafka would log each refused connection while the brokers start (every 50 ms);
        # what fails reaches the caller as an exception or a timeout, which says it once.
        self._config: dict[str, str | int | float | bool] = {"log_level": 0, **admin_config}
        self._admin = AdminClient(self._config)
        self._timeout_s = timeout_s
        self._sleep = sleep
        self._clock = clock

    def _until(self, done: Callable[[], bool], within_s: float, what: str) -> None:
        """Poll `done` with a growing, capped delay until it holds; else ProvisioningError."""
        backoff = Backoff(first_s=0.1, cap_s=2.0)
        deadline = self._clock() + within_s
        while not done():
            if self._clock() > deadline:
                raise ProvisioningError(f"{what} within {within_s:.0f} s")
            self._sleep(backoff.next_delay())

    def brokers(self, timeout_s: float = PROBE_S) -> int:
        """How many brokers the cluster has registered (0 when none answers within
        `timeout_s`)."""
        try:
            return len(self._admin.list_topics(timeout=timeout_s).brokers)
        except KafkaException:
            return 0

    def wait_for_brokers(self, count: int, within_s: float = 120.0) -> int:
        """Wait until `count` brokers are registered (a topic with three replicas cannot be
        created while fewer are up, and compose and Kubernetes start them together); returns
        how many are."""
        # Each probe waits no longer than the whole wait: `--wait-s 1` gives up after about
        # a second, not after a probe's 5 s.
        probe_s = min(PROBE_S, within_s)
        self._until(
            lambda: self.brokers(probe_s) >= count, within_s,
            f"{count} Kafka broker(s) did not answer",
        )  # fmt: skip
        return self.brokers()

    def create_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create the topics of `specs` that do not exist yet; the names created."""
        existing = set(self._admin.list_topics(timeout=self._timeout_s).topics)
        wanted = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                config=dict(spec.configs),
            )
            for spec in specs
            if spec.name not in existing
        ]
        if not wanted:
            return []
        futures = self._admin.create_topics(wanted, request_timeout=self._timeout_s)
        created = []
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except KafkaException as error:  # another run made it meanwhile: as wanted
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ProvisioningError(f"topic {name}: {error.args[0].str()}") from error
        return sorted(created)

    def align_topics(self, specs: Sequence[TopicSpec]) -> tuple[list[str], list[str]]:
        """Set, on existing topics, the configuration `specs` give them where it differs
        (incrementally: other topic settings are left alone). Returns the topics changed, and
        those whose replication factor differs from the plan's; those keep their
        `min.insync.replicas`, which could otherwise exceed their copies and refuse every write."""
        metadata = self._admin.list_topics(timeout=self._timeout_s).topics
        present = [spec for spec in specs if spec.name in metadata]
        if not present:
            return [], []
        described = self._admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, spec.name) for spec in present],
            request_timeout=self._timeout_s,
        )
        current = {
            resource.name: {key: entry.value for key, entry in future.result().items()}
            for resource, future in described.items()
        }
        changes, drift = [], []
        for spec in present:
            wanted = dict(spec.configs)
            partitions = list(metadata[spec.name].partitions.values())
            copies = len(partitions[0].replicas) if partitions else spec.replication_factor
            if copies != spec.replication_factor:
                drift.append(
                    f"{spec.name}: {copies} replicas, the plan says {spec.replication_factor}"
                )
                wanted.pop("min.insync.replicas", None)
            different = {k: v for k, v in wanted.items() if current[spec.name].get(k) != v}
            if different:
                changes.append(
                    ConfigResource(
                        ResourceType.TOPIC,
                        spec.name,
                        incremental_configs=[
                            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                            for k, v in different.items()
                        ],
                    )
                )
        if changes:
            altered = self._admin.incremental_alter_configs(
                changes, request_timeout=self._timeout_s
            )
            for future in altered.values():
                future.result()
        return sorted(change.name for change in changes), drift

    def add_scram_users(self, users: Mapping[str, str]) -> list[str]:
        """Create the SCRAM-SHA-512 credentials of `users` (name: password) the cluster lacks
        (an existing user's password is left as it is). Returns the names added, once each
        can log in: credentials reach the brokers' authenticators through the metadata log."""
        everyone = self._admin.describe_user_scram_credentials(request_timeout=self._timeout_s)
        known = set(cast(Future[dict[str, object]], everyone).result())
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(
                name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password.encode()
            )
            for name, password in users.items()
            if name not in known
        ]
        if not upserts:
            return []
        altered = self._admin.alter_user_scram_credentials(upserts, request_timeout=self._timeout_s)
        for future in altered.values():
            future.result()
        added = [upsert.user for upsert in upserts]
        for name in added:
            self._until(
                functools.partial(self._logs_in, name, users[name]),
                self._timeout_s,
                f"the new SCRAM user {name} could not log in",
            )
        return added

    def _logs_in(self, user: str, password: str) -> bool:
        """Whether `user` can log in, on this connection's listener when it has SASL, else
        whether the cluster lists the credential (a listener without SASL cannot tell more)."""
        if "sasl.mechanism" not in self._config:
            listed = self._admin.describe_user_scram_credentials(
                [user], request_timeout=self._timeout_s
            )
            try:
                return all(future.result() for future in cast(_Futures, listed).values())
            except KafkaException:
                return False
        client = AdminClient(
            self._config
            | {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}
        )
        try:
            client.list_topics(timeout=3)
            return True
        except KafkaException:
            return False

    def grant(self, plan: Sequence[Grant]) -> int:
        """Grant every binding of `plan` (idempotent: Kafka keeps one of each) and wait until
        the authorizer applied them, which it learns through the metadata log. Returns how many
        bindings the plan holds."""
        bindings = [
            AclBinding(
                ResourceType[grant.resource_type.upper()],
                grant.resource_name,
                ResourcePatternType[grant.pattern.upper()],
                f"User:{grant.principal}",
                "*",
                AclOperation[grant.operation.upper()],
                AclPermissionType.ALLOW,
            )
            for grant in plan
        ]
        for future in self._admin.create_acls(bindings, request_timeout=self._timeout_s).values():
            future.result()
        everything = AclBindingFilter(
            ResourceType.ANY, _ANY, ResourcePatternType.ANY, _ANY, _ANY, AclOperation.ANY,
            AclPermissionType.ANY,
        )  # fmt: skip

        def applied() -> bool:
            found = self._admin.describe_acls(everything, request_timeout=self._timeout_s)
            return len(found.result()) >= len(bindings)

        self._until(applied, self._timeout_s, "the brokers did not apply the ACLs")
        return len(bindings)

    def provision(
        self,
        specs: Sequence[TopicSpec],
        users: Mapping[str, str] | None = None,
        plan: Sequence[Grant] | None = None,
    ) -> Report:
        """Topics (created, then aligned), then SCRAM users (`users`, when given), then ACLs
        (`plan`, when given): a principal's credential exists before its grants."""
        report = Report(created=self.create_topics(specs))
        report.aligned, report.replication_drift = self.align_topics(specs)
        if users:
            report.users_added = self.add_scram_users(users)
        if plan is not None:
            report.acl_bindings = self.grant(plan)
        return report


class ProvisionSettings(KafkaClientSettings):
    """The provisioning's connection and plan, from `PROVISION_*` variables (a Job's, a
    compose service's environment); the command line's options win over them."""

    model_config = SettingsConfigDict(env_prefix="PROVISION_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices(
            "kafka_bootstrap_servers",
            "PROVISION_KAFKA_BOOTSTRAP_SERVERS",
            "KAFKA_BOOTSTRAP_SERVERS",
        ),
    )
    #: Copies of each partition (unset: as many as brokers are registered, up to three);
    #: `min.insync.replicas` is one less unless set, at least 1.
    replicas: int | None = Field(default=None, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    #: Partitions of each multi-partition topic, when more than the registry's.
    partitions: int | None = Field(default=None, ge=1)
    #: Also grant the registry's ACL plan (a cluster with an authorizer).
    acls: bool = False
    #: A JSON file `{principal: password}` whose missing SCRAM users are created.
    users_file: Path | None = None
    #: How long to wait for the brokers before giving up (the Job or service is then retried).
    wait_s: float = Field(default=120.0, gt=0)
    #: A file holding the super user's password (a mounted secret); it wins over the variable.
    #: Declared here because the services' reading of `<PREFIX>_<NAME>_FILE`
    #: (`rebond_service.settings.FromEnvironment`) lives in a package that depends on this one.
    kafka_sasl_password_file: Path | None = None

    @model_validator(mode="after")
    def _password_from_file(self) -> Self:
        if self.kafka_sasl_password_file is not None:
            try:
                password = self.kafka_sasl_password_file.read_text().strip()
            except OSError as error:
                raise ValueError(
                    f"PROVISION_KAFKA_SASL_PASSWORD_FILE names {self.kafka_sasl_password_file}, "
                    f"which cannot be read: {error.strerror or type(error).__name__}"
                ) from error
            self.kafka_sasl_password = SecretStr(password)
        return self

    @model_validator(mode="after")
    def _enough_copies(self) -> Self:
        if self.replicas and self.min_insync_replicas and self.min_insync_replicas > self.replicas:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) may not exceed replicas "
                f"({self.replicas}): every write would be refused"
            )
        return self

    def durability(self, brokers: int) -> Durability:
        """The copies asked for, else what `brokers` registered brokers allow."""
        if self.replicas is None:
            planned = Durability.for_brokers(brokers)
        else:
            planned = Durability.of(self.replicas)
        if self.min_insync_replicas is None:
            return planned
        return Durability(planned.replicas, self.min_insync_replicas)

    def admin_config(self) -> dict[str, str | int | float | bool]:
        return {"bootstrap.servers": self.kafka_bootstrap_servers, **librdkafka_options(self)}


def settings_from(argv: list[str] | None = None) -> ProvisionSettings:
    """The command line's options over the `PROVISION_*` variables."""
    parser = argparse.ArgumentParser(
        prog="python -m rebond_kafka.provision",
        description="Create Rebond's topics from the registry (and SCRAM users and ACLs), "
        "idempotently. The connection comes from PROVISION_KAFKA_* variables (as each "
        "service's: SECURITY_PROTOCOL, SASL_MECHANISM, SASL_USERNAME, SASL_PASSWORD_FILE, ...).",
    )
    parser.add_argument("--bootstrap", dest="kafka_bootstrap_servers")
    parser.add_argument("--replicas", type=int, help="default: the brokers registered, up to 3")
    parser.add_argument("--min-insync-replicas", type=int, help="default: replicas - 1, >= 1")
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--acls", action="store_true", default=None)
    parser.add_argument("--users-file", type=Path, help="JSON {principal: password}")
    parser.add_argument("--wait-s", type=float)
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    return ProvisionSettings(**given)


def main(argv: list[str] | None = None) -> int:
    """`python -m rebond_kafka.provision`: make the registry's topics (and, asked, its users and
    ACLs) on the cluster the options and `PROVISION_KAFKA_*` variables name."""
    try:
        settings = settings_from(argv)
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "options"
            print(f"provision: {where}: {problem['msg']}", file=sys.stderr)
        return 2
    users = json.loads(settings.users_file.read_text()) if settings.users_file else None
    try:
        provisioner = Provisioner(settings.admin_config())
        brokers = provisioner.wait_for_brokers(settings.replicas or 1, settings.wait_s)
        report = provisioner.provision(
            topic_specs(settings.durability(brokers), settings.partitions),
            users=users,
            plan=acl_plan() if settings.acls else None,
        )
    except (KafkaException, ProvisioningError) as error:
        print(f"provision: {error}; run it again (each step is idempotent)", file=sys.stderr)
        return 1
    for line in report.lines():
        print(f"provision: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
