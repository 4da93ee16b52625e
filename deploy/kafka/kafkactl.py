"""Run a real Apache Kafka broker (KRaft, one combined node) from Maven Central jars.

    kafkactl.py start   [--port 9092] [--data-dir .run/kafka] [--secure] [--plaintext-port P] [--tls-port T]
                                                                 fetch, format, start, wait, create topics
                                                                 (and, --secure, principals and ACLs)
    kafkactl.py stop    [--data-dir .run/kafka]                  stop the broker this data dir started
    kafkactl.py status  [--port 9092] [--data-dir .run/kafka]
    kafkactl.py topics  [--bootstrap 127.0.0.1:9092] [--partitions 3]
    kafkactl.py fetch                                            only fetch the jars into the cache

The jars are fetched once (Maven) into $REBOND_CACHE (default ~/.cache/rebond). Topics come from
the registry in rebond_contracts.topics and are created idempotently.

With --secure the client listener is SASL_PLAINTEXT (SCRAM-SHA-512) and the StandardAuthorizer
denies whatever no ACL allows. Each service (intake, router, notifier, events) and each association
(`association-<id>`) gets its own principal; their passwords are generated at format time into
<data dir>/credentials.json (created with mode 0600, as every file holding a password) unless
KAFKA_CREDENTIALS_FILE names an existing file; they reach Kafka's tools through files, never a
command line. The ACLs are derived from the registry: a topic's writer may write it, its readers
may read it with consumer groups named after them (`rebond-<service>` or `rebond-<service>.<name>`,
`association-<id>` or `association-<id>.<name>`). `admin` is the only super user.
--plaintext-port adds an unauthenticated listener whose (anonymous) clients are super users, and
--tls-port a SASL_SSL listener (SCRAM over TLS, as production connects) whose certificate a CA
made for the data dir signed (<data dir>/tls/ca.pem): both for the test suite only, never for
`make run`, whose one client listener is SASL_PLAINTEXT on the loopback interface.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KAFKA_VERSION = "4.1.1"
CACHE = Path(os.environ.get("REBOND_CACHE", Path.home() / ".cache" / "rebond"))
LIBS = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
DEFAULT_DATA_DIR = REPO / ".run" / "kafka"
JVM_HEAP = os.environ.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m").split()

SERVER_PROPERTIES = """\
# Written by deploy/kafka/kafkactl.py: one combined broker+controller node in KRaft mode.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}/logs
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
"""

SECURE_PROPERTIES = """\
# Written by deploy/kafka/kafkactl.py --secure: SASL (SCRAM-SHA-512) for clients, ACLs enforced.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}{extra_listeners}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}{extra_listeners}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config={admin_jaas}
listener.name.sasl_plaintext.plain.sasl.jaas.config={admin_jaas}
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users={super_users}
log.dirs={data_dir}/logs
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
{tls_settings}"""

#: The SASL_SSL listener of `--tls-port`: SCRAM only, over TLS with a certificate from a CA made
#: for this data dir (`<data dir>/tls/ca.pem`, which clients trust).
TLS_PROPERTIES = """\
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={keystore}
"""

ADMIN = "admin"


def _registry():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "contracts" / "src"))
    from rebond_contracts import topics

    return topics


def principals() -> list[str]:
    """Every principal of a secured broker besides `admin`: one per service and per association."""
    from rebond_kafka import acl_plan  # the one derivation, shared with the Strimzi KafkaUsers

    return acl_plan.principals()


def acl_plan() -> list[tuple[str, str, str, str, str]]:
    """(principal, resource type, resource name, pattern, operation) allowed, from the registry."""
    from rebond_kafka import acl_plan as plan

    return list(plan.acl_plan())


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only from the moment it exists: the file
    is created with mode 0600 (no window in which the umask's 0644 lets another user read a
    password), and an existing one is narrowed to 0600 before anything is written to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)
        file.write(text)


def credentials(data_dir: Path) -> dict[str, str]:
    """Passwords of every principal: KAFKA_CREDENTIALS_FILE, or generated once per data dir."""
    path = Path(os.environ.get("KAFKA_CREDENTIALS_FILE", data_dir / "credentials.json"))
    if path.exists():
        known: dict[str, str] = json.loads(path.read_text())
    else:
        known = {}
    wanted = [ADMIN, *principals()]
    if missing := [name for name in wanted if name not in known]:
        known.update({name: secrets.token_urlsafe(18) for name in missing})
        write_private(path, json.dumps(known, indent=2) + "\n")
    return known


def write_client_configs(data_dir: Path, bootstrap: str, secrets_: dict[str, str]) -> Path:
    """Per principal, a client configuration for Kafka's console tools (`<name>.properties`) and
    for kcat / librdkafka (`<name>.librdkafka.conf`), in <data dir>/clients (mode 0600)."""
    folder = data_dir / "clients"
    folder.mkdir(parents=True, exist_ok=True)
    for name, password in secrets_.items():
        if name == ADMIN:
            continue
        write_private(
            folder / f"{name}.properties",
            f"bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_PLAINTEXT\n"
            "sasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security."
            f'scram.ScramLoginModule required username="{name}" password="{password}";\n',
        )
        write_private(
            folder / f"{name}.librdkafka.conf",
            f"bootstrap.servers={bootstrap}\nsecurity.protocol=SASL_PLAINTEXT\n"
            f"sasl.mechanisms=SCRAM-SHA-512\nsasl.username={name}\nsasl.password={password}\n",
        )
    return folder


def sasl_config(username: str, password: str, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    """aiokafka keyword arguments for a SASL_PLAINTEXT client."""
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


def fetch() -> list[Path]:
    """The broker's jars, fetched from Maven Central on first use."""
    marker = LIBS / ".complete"
    if not marker.exists():
        if shutil.which("mvn") is None:
            sys.exit("kafkactl: Maven (mvn) is needed once to fetch the Kafka jars")
        LIBS.mkdir(parents=True, exist_ok=True)
        print(
            f"kafkactl: fetching Apache Kafka {KAFKA_VERSION} jars into {LIBS} (once)", flush=True
        )
        subprocess.run(
            [
                "mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(HERE / "pom.xml"),
                f"-Dkafka.version={KAFKA_VERSION}",
                "dependency:copy-dependencies", f"-DoutputDirectory={LIBS}", "-DincludeScope=runtime",
            ],
            check=True,
        )  # fmt: skip
        marker.touch()
    return sorted(LIBS.glob("*.jar"))


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java:
        sys.exit("kafkactl: Java 17+ is needed (java not found)")
    return java


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _answers_metadata(
    bootstrap: str, timeout: float, auth: dict[str, str] | None = None
) -> bool:
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "not up yet" is expected here
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **(auth or {})
    )
    try:
        await asyncio.wait_for(client.start(), timeout)
        await asyncio.wait_for(client.list_topics(), timeout)
        return True
    except Exception:
        return False
    finally:
        await client.close()


def wait_until_ready(
    bootstrap: str,
    deadline_s: float = 90.0,
    proc: subprocess.Popen[bytes] | None = None,
    auth: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the broker exited with code {proc.returncode}")
        if asyncio.run(_answers_metadata(bootstrap, 3.0, auth)):
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"Kafka at {bootstrap} did not answer metadata requests within {deadline_s:.0f}s"
    )


async def _create_topics(
    bootstrap: str, partitions: int | None, auth: dict[str, str] | None
) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    all_topics = _registry().all_topics
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(auth or {}))
    await client.start()
    try:
        existing = set(await client.list_topics())
        wanted = [
            NewTopic(
                name=topic.name,
                num_partitions=max(topic.partitions, partitions or 0)
                if topic.partitions > 1
                else 1,
                replication_factor=1,
                topic_configs=_topic_configs(topic),
            )
            for topic in all_topics()
            if topic.name not in existing
        ]
        if wanted:
            await client.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await client.close()


def _topic_configs(topic) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The topic-level configuration the registry asks for: `retention.ms`, and `segment.ms`
    for the topics with personal data (so that a record's overstay past its retention is
    bounded: `rebond_contracts.topics.erasure_window_ms`)."""
    configs = {"retention.ms": str(topic.retention_ms)} if topic.retention_ms else {}
    if topic.segment_ms:
        configs["segment.ms"] = str(topic.segment_ms)
    return configs


def create_topics(
    bootstrap: str, partitions: int | None = None, auth: dict[str, str] | None = None
) -> list[str]:
    """Create every registry topic that does not exist yet (with its `retention.ms`), then
    align the retention of those that existed already; returns the names created."""
    created = asyncio.run(_create_topics(bootstrap, partitions, auth))
    changed = align_topic_configs(bootstrap, auth)
    if changed:
        print(f"kafkactl: retention aligned with the registry: {', '.join(changed)}", flush=True)
    return created


def _librdkafka(bootstrap: str, auth: dict[str, str] | None) -> dict[str, object]:
    """librdkafka settings equivalent to aiokafka's keyword arguments `auth`."""
    config: dict[str, object] = {"bootstrap.servers": bootstrap, "log_level": 3}
    if auth:
        config |= {
            "security.protocol": auth["security_protocol"],
            "sasl.mechanism": auth["sasl_mechanism"],
            "sasl.username": auth["sasl_plain_username"],
            "sasl.password": auth["sasl_plain_password"],
        }
    return config


def align_topic_configs(bootstrap: str, auth: dict[str, str] | None = None) -> list[str]:
    """Set, on existing topics, the configuration the registry asks for where it differs
    (incrementally: other topic settings are left alone). Returns the topics changed."""
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    admin = AdminClient(_librdkafka(bootstrap, auth))
    wanted = {t.name: _topic_configs(t) for t in _registry().all_topics() if _topic_configs(t)}
    existing = set(admin.list_topics(timeout=30).topics)
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in wanted if name in existing]
    if not resources:
        return []
    current = {
        resource.name: {k: entry.value for k, entry in future.result().items()}
        for resource, future in admin.describe_configs(resources, request_timeout=30).items()
    }
    changes = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in configs.items()
            ],
        )
        for name, configs in wanted.items()
        if name in current and any(current[name].get(k) != v for k, v in configs.items())
    ]
    if changes:
        for future in admin.incremental_alter_configs(changes, request_timeout=30).values():
            future.result()
    return sorted(c.name for c in changes)


def _confluent_admin(bootstrap: str, admin_password: str):  # type: ignore[no-untyped-def]
    from confluent_kafka.admin import AdminClient

    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": ADMIN,
            "sasl.password": admin_password,
            "log_level": 3,  # librdkafka's informational lines are noise here
        }
    )


def create_acls(bootstrap: str, admin_password: str) -> int:
    """Grant exactly what `acl_plan()` lists (idempotent); returns how many bindings it holds."""
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    bindings = [
        AclBinding(
            ResourceType[kind.upper()],
            name,
            ResourcePatternType[pattern.upper()],
            f"User:{principal}",
            "*",
            AclOperation[operation.upper()],
            AclPermissionType.ALLOW,
        )
        for principal, kind, name, pattern, operation in acl_plan()
    ]
    admin = _confluent_admin(bootstrap, admin_password)
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result()
    # The authorizer learns them through the metadata log: wait until it applies them all.
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
        AclPermissionType.ANY,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(admin.describe_acls(everything).result()) < len(bindings):
        if time.monotonic() > deadline:
            raise TimeoutError("the broker did not apply the ACLs within 30 s")
        time.sleep(0.1)
    return len(bindings)


def add_scram_users(bootstrap: str, admin_password: str, users: dict[str, str]) -> list[str]:
    """Create the SCRAM-SHA-512 credentials a running broker lacks (e.g. a new association).

    Returns the names added, once each of them can log in."""
    from confluent_kafka.admin import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = _confluent_admin(bootstrap, admin_password)
    known = set(admin.describe_user_scram_credentials().result())
    upserts = [
        UserScramCredentialUpsertion(
            name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password.encode()
        )
        for name, password in users.items()
        if name not in known
    ]
    if not upserts:
        return []
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result()
    added = [upsert.user for upsert in upserts]
    for name in added:  # credentials reach the authenticator through the metadata log
        wait_until_ready(bootstrap, 30, auth=sasl_config(name, users[name]))
    return added


def broker_certificate(data_dir: Path) -> Path:
    """A CA of this data dir (`tls/ca.pem`) and the broker's key and certificate for 127.0.0.1
    and localhost, signed by it (`tls/broker.pem`, mode 0600), made once with trustme (a test
    dependency: the TLS listener is for the test suite; production brokers have their own
    certificates). Returns the broker's file."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    folder = data_dir / "tls"
    broker = folder / "broker.pem"
    if not broker.exists():
        ca = trustme.CA(organization_name="Rebond local Kafka")
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        pkcs8 = key.private_bytes(  # the only key format Kafka's PEM keystore reads
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
        write_private(folder / "ca.pem", ca.cert_pem.bytes().decode())
        write_private(broker, (pkcs8 + chain).decode())
    return broker


def format_storage(
    java: str, classpath: str, cluster_id: str, properties: Path, scram: dict[str, str]
) -> None:
    """Format the broker's storage, with a SCRAM-SHA-512 credential for each of `scram`'s
    principals. The passwords reach Kafka's StorageTool through a Java argument file (mode
    0600, deleted afterwards), never on its command line, which any local user can read in
    `ps` or /proc while it runs."""
    args = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties),
            "--ignore-formatted"]  # fmt: skip
    for name, password in scram.items():
        args += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
    argfile = properties.parent / "format.args"
    write_private(argfile, "".join(_java_quoted(arg) + "\n" for arg in ["-cp", classpath, *args]))
    try:
        subprocess.run([java, f"@{argfile}"], check=True, capture_output=True)
    finally:
        argfile.unlink(missing_ok=True)


def _java_quoted(arg: str) -> str:
    """`arg` as one argument of a Java argument file: in double quotes, with backslashes and
    double quotes escaped (the launcher's own rules)."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def start(
    port: int,
    controller_port: int,
    data_dir: Path,
    partitions: int | None,
    secure: bool = False,
    plaintext_port: int | None = None,
    tls_port: int | None = None,
) -> bool:
    """Start a broker unless one answers on `port`. True when this call started it."""
    bootstrap = f"127.0.0.1:{port}"
    secrets_ = credentials(data_dir) if secure else {}
    admin = sasl_config(ADMIN, secrets_[ADMIN], "PLAIN") if secure else None
    if _port_open(port):
        wait_until_ready(bootstrap, 15, auth=admin)
        print(f"kafkactl: a broker already answers on {bootstrap}; using it", flush=True)
        _provision(bootstrap, partitions, admin, secrets_, data_dir)
        return False
    classpath = os.pathsep.join(str(jar) for jar in fetch())
    data_dir.mkdir(parents=True, exist_ok=True)
    properties = data_dir / "server.properties"
    if secure:
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{ADMIN}" password="{secrets_[ADMIN]}" user_{ADMIN}="{secrets_[ADMIN]}";'
        )
        extra = f",PLAINTEXT://127.0.0.1:{plaintext_port}" if plaintext_port else ""
        extra += f",SASL_SSL://127.0.0.1:{tls_port}" if tls_port else ""
        tls = TLS_PROPERTIES.format(keystore=broker_certificate(data_dir)) if tls_port else ""
        text = SECURE_PROPERTIES.format(
            port=port, controller_port=controller_port, data_dir=data_dir, admin_jaas=jaas,
            extra_listeners=extra, tls_settings=tls,
            super_users=f"User:{ADMIN}" + (";User:ANONYMOUS" if plaintext_port else ""),
        )  # fmt: skip
    else:
        text = SERVER_PROPERTIES.format(
            port=port, controller_port=controller_port, data_dir=data_dir
        )
    write_private(properties, text)  # the admin's password is in it
    java = _java()
    if not (data_dir / "logs" / "meta.properties").exists():
        cluster_id = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        # SCRAM users known now are written with the metadata, so they can log in at once.
        scram = {name: secrets_[name] for name in (principals() if secure else [])}
        format_storage(java, classpath, cluster_id, properties, scram)
    log = (data_dir / "kafka.log").open("ab")
    proc = subprocess.Popen(
        [java, *JVM_HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
         f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
         "-cp", classpath, "kafka.Kafka", str(properties)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    (data_dir / "kafka.pid").write_text(str(proc.pid))
    try:
        wait_until_ready(bootstrap, proc=proc, auth=admin)
    except (RuntimeError, TimeoutError) as error:
        stop(data_dir)
        sys.exit(f"kafkactl: {error}; see {data_dir / 'kafka.log'}")
    mode = "SASL_PLAINTEXT with ACLs" if secure else "PLAINTEXT"
    print(
        f"kafkactl: Kafka {KAFKA_VERSION} answers on {bootstrap}, {mode} (pid {proc.pid})",
        flush=True,
    )
    _provision(bootstrap, partitions, admin, secrets_, data_dir)
    return True


def _provision(
    bootstrap: str,
    partitions: int | None,
    admin: dict[str, str] | None,
    secrets_: dict[str, str],
    data_dir: Path,
) -> None:
    created = create_topics(bootstrap, partitions, admin)
    print(f"kafkactl: topics created: {', '.join(created) or 'none (all present)'}", flush=True)
    if admin is not None:
        added = add_scram_users(
            bootstrap, secrets_[ADMIN], {n: p for n, p in secrets_.items() if n != ADMIN}
        )
        if added:
            print(f"kafkactl: SCRAM credentials added for {', '.join(added)}", flush=True)
        folder = write_client_configs(data_dir, bootstrap, secrets_)
        print(f"kafkactl: client configurations per principal in {folder}", flush=True)
        count = create_acls(bootstrap, secrets_[ADMIN])
        print(
            f"kafkactl: {count} ACL bindings in place for {len(secrets_) - 1} principals",
            flush=True,
        )


def _pid(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / "kafka.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def _alive(pid: int) -> bool:
    """True while `pid` runs; reaps it when it is our own child (make run starts it)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # started by another process: only signal 0 can tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(data_dir: Path, kill: bool = False) -> None:
    """Stop the broker started from `data_dir` (SIGTERM, then SIGKILL after 30 s)."""
    pid = _pid(data_dir)
    if pid is None:
        print("kafkactl: no broker running from this data dir", flush=True)
        return
    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    (data_dir / "kafka.pid").unlink(missing_ok=True)
    print(f"kafkactl: broker (pid {pid}) {'killed' if kill else 'stopped'}", flush=True)


def status(port: int, data_dir: Path, secure: bool) -> int:
    pid = _pid(data_dir)
    auth = sasl_config(ADMIN, credentials(data_dir)[ADMIN], "PLAIN") if secure else None
    ready = _port_open(port) and asyncio.run(_answers_metadata(f"127.0.0.1:{port}", 3.0, auth))
    print(
        f"kafkactl: pid {pid or '-'}; 127.0.0.1:{port} {'answers' if ready else 'does not answer'}"
    )
    return 0 if ready else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", choices=["start", "stop", "kill", "status", "topics", "provision", "fetch"]
    )
    parser.add_argument(
        "--secure",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("KAFKA_SECURE", "").lower() in ("1", "true", "yes"),
        help="SASL/SCRAM listener and ACLs (KAFKA_SECURE=1)",
    )
    parser.add_argument(
        "--plaintext-port", type=int, default=None, help="tests only: anonymous super users"
    )
    parser.add_argument(
        "--tls-port", type=int, default=None,
        help="with --secure: a SASL_SSL listener too (SCRAM over TLS, CA in <data dir>/tls/ca.pem)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "9092")))
    parser.add_argument("--controller-port", type=int, default=None)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("KAFKA_DATA_DIR", DEFAULT_DATA_DIR))
    )
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument(
        "--partitions", type=int, default=int(os.environ.get("KAFKA_PARTITIONS", "3"))
    )
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.command == "fetch":
        print(f"kafkactl: {len(fetch())} jars in {LIBS}")
    elif args.command == "start":
        start(
            args.port, args.controller_port or args.port + 1, data_dir, args.partitions,
            secure=args.secure, plaintext_port=args.plaintext_port, tls_port=args.tls_port,
        )  # fmt: skip
    elif args.command in ("stop", "kill"):
        stop(data_dir, kill=args.command == "kill")
    elif args.command == "status":
        return status(args.port, data_dir, args.secure)
    elif args.command in ("topics", "provision"):
        # provision: topics, then (secured broker) principals' credentials and ACLs, all from the
        # registry; run it after adding an association to the registry.
        secrets_ = credentials(data_dir) if args.secure else {}
        admin = sasl_config(ADMIN, secrets_[ADMIN], "PLAIN") if args.secure else None
        bootstrap = args.bootstrap or f"127.0.0.1:{args.port}"
        if args.command == "topics":
            created = create_topics(bootstrap, args.partitions, admin)
            print(f"kafkactl: topics created: {', '.join(created) or 'none (all present)'}")
        else:
            _provision(bootstrap, args.partitions, admin, secrets_, data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
