"""Run Apache Kafka locally (KRaft) from Maven Central jars: one combined node, or three.

    kafkactl.py start   [--nodes 1|3] [--port 9092] [--data-dir .run/kafka] [--secure]
                        [--plaintext-port P] [--tls-port T] [--partitions 3]
                                        fetch, format, start, wait, then provision (topics; with
                                        --secure, SCRAM users and ACLs too)
    kafkactl.py stop    [--data-dir .run/kafka] [--node N]   every node of the data dir (or node N),
                                                             SIGTERM: a controlled shutdown
    kafkactl.py kill    [--data-dir .run/kafka] [--node N]   the same with SIGKILL
    kafkactl.py status  [--data-dir .run/kafka]
    kafkactl.py topics | provision [--bootstrap B] [--partitions 3]
    kafkactl.py fetch                                        only fetch the jars into the cache

This script only fetches, starts and stops the local broker(s). What they hold is provisioned by
`rebond_kafka.provision` (the one module compose and Kubernetes use too): the registry's topics
(`topics`), and on a secured broker the principals' SCRAM credentials and the registry's ACLs
(`provision`, which `start` runs). The jars are fetched once (Maven) into $REBOND_CACHE (default
~/.cache/rebond).

`--nodes 3` starts a cluster of three nodes, each both controller and broker, each a JVM of its
own with its own data dir (`<data dir>/node-<id>`) and ports (node k, from 0: `--port` + 2k for
clients, the next one for its controller; `--plaintext-port` + k, `--tls-port` + k); the topics then
get three replicas and `min.insync.replicas` 2, as in production (one node is enough otherwise:
one replica). `stop --node 2` / `kill --node 2` / `start --node 2` act on one node of a running
cluster, for fault tests and rolling restarts. The data dir's `layout.json` remembers the nodes
and their ports.

With --secure the client listener is SASL_PLAINTEXT (SCRAM-SHA-512) and the StandardAuthorizer
denies whatever no ACL allows. Each service (intake, router, notifier, events) and each association
(`association-<id>`) gets its own principal; their passwords are generated at format time into
<data dir>/credentials.json (created with mode 0600, as every file holding a password) unless
KAFKA_CREDENTIALS_FILE names an existing file; they reach Kafka's tools through files, never a
command line. The ACLs are derived from the registry (`rebond_kafka.acl_plan`). `admin` is the
only super user. --plaintext-port adds an unauthenticated listener whose (anonymous) clients are
super users, and --tls-port a SASL_SSL listener (SCRAM over TLS, as production connects) whose
certificate a CA made for the data dir signed (<data dir>/tls/ca.pem): both for the test suite
only, never for `make run`, whose one client listener is SASL_PLAINTEXT on the loopback interface.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from rebond_kafka.acl_plan import acl_plan, principals
from rebond_kafka.provision import Durability, Provisioner, Report, topic_specs
from rebond_kafka.provision import main as provision_main

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KAFKA_VERSION = "4.1.1"
CACHE = Path(os.environ.get("REBOND_CACHE", Path.home() / ".cache" / "rebond"))
LIBS = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
DEFAULT_DATA_DIR = REPO / ".run" / "kafka"
#: Per node: three nodes with 512 MiB of heap each fit beside the services on a 2-core, 24 GiB
#: machine (the cluster test's whole load stays under 3 GiB resident).
JVM_HEAP = os.environ.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m").split()
ADMIN = "admin"

#: Every node's settings; the replication of Kafka's own topics follows the number of nodes.
NODE_PROPERTIES = """\
# Written by deploy/kafka/kafkactl.py: node {node_id} of {nodes}, broker and controller (KRaft).
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners={listeners}
advertised.listeners={advertised}
controller.listener.names=CONTROLLER
inter.broker.listener.name={inter_broker}
listener.security.protocol.map={protocols}
log.dirs={node_dir}/logs
num.partitions=3
default.replication.factor={replicas}
min.insync.replicas={min_insync}
auto.create.topics.enable=false
offsets.topic.replication.factor={replicas}
offsets.topic.num.partitions=10
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={min_insync}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={min_insync}
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
"""

#: --secure: SASL (SCRAM-SHA-512) for clients, PLAIN for the admin between nodes, ACLs enforced.
SECURE_PROPERTIES = """\
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
"""

#: The SASL_SSL listener of `--tls-port`: SCRAM only, over TLS with a certificate from a CA made
#: for this data dir (`<data dir>/tls/ca.pem`, which clients trust).
TLS_PROPERTIES = """\
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={keystore}
"""


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
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
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


def java() -> str:
    """The `java` of JAVA_HOME, else of the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not found:
        sys.exit("kafkactl: Java 17+ is needed (java not found)")
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class KafkaStartError(RuntimeError):
    """A node exited or did not answer in time; the message names its log."""


@dataclass(frozen=True)
class Node:
    """One node's id and ports (127.0.0.1)."""

    node_id: int
    #: The client listener: SASL_PLAINTEXT when secured, else PLAINTEXT.
    port: int
    controller_port: int
    #: Tests only: an unauthenticated listener (super users), and a SASL_SSL one.
    plaintext_port: int | None = None
    tls_port: int | None = None


@dataclass(frozen=True)
class Layout:
    """The nodes of one data dir and how they are secured; `layout.json` keeps it, so that
    `stop`, `status` and a node's restart find the same ports."""

    data_dir: Path
    nodes: tuple[Node, ...]
    secure: bool = False
    #: The KRaft cluster id every node is formatted with (made at the first start).
    cluster_id: str = ""

    @classmethod
    def of(
        cls,
        data_dir: Path,
        *,
        nodes: int = 1,
        port: int = 9092,
        controller_port: int | None = None,
        plaintext_port: int | None = None,
        tls_port: int | None = None,
        secure: bool = False,
    ) -> Layout:
        """`nodes` nodes on ports counted from the given ones (node k, from 0: `port` + 2k for
        clients and the next for its controller; `plaintext_port` + k, `tls_port` + k)."""
        return cls(
            data_dir,
            tuple(
                Node(
                    k + 1,
                    port + 2 * k,
                    (controller_port or port + 1) + 2 * k,
                    plaintext_port + k if plaintext_port else None,
                    tls_port + k if tls_port else None,
                )
                for k in range(nodes)
            ),
            secure,
        )

    @classmethod
    def load(cls, data_dir: Path) -> Layout | None:
        path = data_dir / "layout.json"
        if not path.exists():
            return None
        saved = json.loads(path.read_text())
        nodes = tuple(Node(**node) for node in saved["nodes"])
        return cls(data_dir, nodes, saved["secure"], saved["cluster_id"])

    def save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        saved = {
            "nodes": [asdict(node) for node in self.nodes],
            "secure": self.secure,
            "cluster_id": self.cluster_id,
        }
        (self.data_dir / "layout.json").write_text(json.dumps(saved, indent=2) + "\n")

    def node(self, node_id: int) -> Node:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id} in {self.data_dir} (nodes {self.node_ids})")

    @property
    def node_ids(self) -> list[int]:
        return [node.node_id for node in self.nodes]

    def node_dir(self, node: Node) -> Path:
        """A single node keeps the data dir itself (as it always did); a cluster's nodes each
        have their own folder in it."""
        return self.data_dir if len(self.nodes) == 1 else self.data_dir / f"node-{node.node_id}"

    @property
    def durability(self) -> Durability:
        return Durability.for_brokers(len(self.nodes))

    def _addresses(self, ports: list[int | None]) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in ports if port)

    @property
    def bootstrap(self) -> str:
        """Every node's client listener (SASL_PLAINTEXT when secured)."""
        return self._addresses([node.port for node in self.nodes])

    @property
    def plaintext_bootstrap(self) -> str:
        return self._addresses([node.plaintext_port for node in self.nodes])

    @property
    def tls_bootstrap(self) -> str:
        return self._addresses([node.tls_port for node in self.nodes])


@dataclass
class LocalKafka:
    """The local Kafka of one layout: its nodes' processes, their readiness, the provisioning."""

    layout: Layout
    #: Passwords of the principals (secured): `credentials(data_dir)`.
    passwords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, layout: Layout) -> LocalKafka:
        """The local Kafka of `layout`, with its data dir's passwords when secured."""
        return cls(layout, credentials(layout.data_dir) if layout.secure else {})

    @property
    def data_dir(self) -> Path:
        return self.layout.data_dir

    def admin_config(self, node: Node | None = None) -> dict[str, str | int | float | bool]:
        """librdkafka's settings of the admin (PLAIN, a super user) on the client listener of
        `node`, or of every node."""
        bootstrap = f"127.0.0.1:{node.port}" if node else self.layout.bootstrap
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": bootstrap,
            "log_level": 0,  # "connection refused" while a node starts is expected here
        }
        if self.layout.secure:
            config |= {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN",
                "sasl.username": ADMIN,
                "sasl.password": self.passwords[ADMIN],
            }
        return config

    def brokers(self, node: Node | None = None) -> set[int]:
        """The brokers a node (or any) names in a metadata answer; empty if none answers."""
        try:
            metadata = AdminClient(self.admin_config(node)).list_topics(timeout=3)
        except KafkaException:
            return set()
        return set(metadata.brokers)

    def wait_ready(self, node: Node | None = None, within_s: float = 90.0) -> None:
        """Wait until `node` answers metadata requests naming itself (registered and unfenced),
        or, without `node`, until every node is registered. Stops early if one exits."""
        wanted = {node.node_id} if node else set(self.layout.node_ids)
        deadline = time.monotonic() + within_s
        while not wanted <= self.brokers(node):
            for each in [node] if node else self.layout.nodes:
                if each is not None and not self.running(each):
                    raise RuntimeError(f"node {each.node_id} exited; see {self.log(each)}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Kafka at {self.layout.bootstrap} did not answer with nodes {sorted(wanted)} "
                    f"within {within_s:.0f}s"
                )
            time.sleep(0.5)

    def wait_in_sync(self, within_s: float = 120.0) -> float:
        """Wait until every partition of every topic has all its replicas in sync (a node
        restarted has caught up); returns the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                topics = AdminClient(self.admin_config()).list_topics(timeout=10).topics
                lagging = [
                    f"{name}/{p.id}"
                    for name, topic in topics.items()
                    for p in topic.partitions.values()
                    if set(p.isrs) != set(p.replicas)
                ]
            except KafkaException as error:
                lagging = [str(error)]
            if not lagging:
                return time.monotonic() - started
            if time.monotonic() - started > within_s:
                raise TimeoutError(f"not in sync after {within_s:.0f}s: {lagging[:5]}")
            time.sleep(0.5)

    def leaders(self, topic: str) -> dict[int, int]:
        """The leader node of each partition of `topic`."""
        metadata = AdminClient(self.admin_config()).list_topics(topic, timeout=10)
        return {p.id: p.leader for p in metadata.topics[topic].partitions.values()}

    # --- processes ---------------------------------------------------------------------------

    def log(self, node: Node) -> Path:
        return self.layout.node_dir(node) / "kafka.log"

    def pid(self, node: Node) -> int | None:
        return _pid(self.layout.node_dir(node))

    def running(self, node: Node) -> bool:
        pid = self.pid(node)
        return pid is not None and _alive(pid)

    def properties(self, node: Node) -> str:
        """The text of `node`'s server.properties."""
        layout = self.layout
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in layout.nodes)
        client = "SASL_PLAINTEXT" if layout.secure else "PLAINTEXT"
        advertised = [f"{client}://127.0.0.1:{node.port}"]
        if node.plaintext_port and layout.secure:
            advertised.append(f"PLAINTEXT://127.0.0.1:{node.plaintext_port}")
        if node.tls_port and layout.secure:
            advertised.append(f"SASL_SSL://127.0.0.1:{node.tls_port}")
        listeners = [*advertised, f"CONTROLLER://127.0.0.1:{node.controller_port}"]
        controller = "SASL_PLAINTEXT" if layout.secure else "PLAINTEXT"
        text = NODE_PROPERTIES.format(
            node_id=node.node_id, nodes=len(layout.nodes), voters=voters,
            listeners=",".join(listeners), advertised=",".join(advertised),
            inter_broker=client,
            protocols=f"CONTROLLER:{controller},SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
            node_dir=layout.node_dir(node), replicas=layout.durability.replicas,
            min_insync=layout.durability.min_insync_replicas,
        )  # fmt: skip
        if layout.secure:
            password = self.passwords[ADMIN]
            jaas = (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{ADMIN}" password="{password}" user_{ADMIN}="{password}";'
            )
            super_users = f"User:{ADMIN}" + (";User:ANONYMOUS" if node.plaintext_port else "")
            text += SECURE_PROPERTIES.format(admin_jaas=jaas, super_users=super_users)
            if node.tls_port:
                text += TLS_PROPERTIES.format(keystore=broker_certificate(layout.data_dir))
        return text

    def _prepare(self, node: Node, classpath: str) -> Path:
        """Write the node's properties (private: the admin's password is in them) and format
        its storage the first time, with every principal's SCRAM credential, so that each can
        log in as soon as the node is up."""
        folder = self.layout.node_dir(node)
        properties = folder / "server.properties"
        write_private(properties, self.properties(node))
        if not (folder / "logs" / "meta.properties").exists():
            scram = (
                {name: self.passwords[name] for name in principals()} if self.layout.secure else {}
            )
            format_storage(java(), classpath, self.layout.cluster_id, properties, scram)
        return properties

    def _launch(self, node: Node, classpath: str) -> None:
        properties = self._prepare(node, classpath)
        folder = self.layout.node_dir(node)
        with (folder / "kafka.log").open("ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [java(), *JVM_HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
                 f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
                 "-cp", classpath, "kafka.Kafka", str(properties)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        (folder / "kafka.pid").write_text(str(proc.pid))

    def start(self, partitions: int | None = None) -> bool:
        """Start every node (unless the first one's port answers already: then use what runs
        there), wait until all are registered, then provision. True when this call started
        them."""
        first = self.layout.nodes[0]
        if _port_open(first.port):
            self.wait_ready(within_s=15)
            print(f"kafkactl: Kafka already answers on {self.layout.bootstrap}; using it")
            self.provision(partitions)
            return False
        classpath = os.pathsep.join(str(jar) for jar in fetch())
        if not self.layout.cluster_id:
            cluster_id = subprocess.run(
                [java(), "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
                check=True, capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip
            self.layout = replace(self.layout, cluster_id=cluster_id)
        self.layout.save()
        for node in self.layout.nodes:  # all at once: a cluster's quorum needs two of them
            self._launch(node, classpath)
        try:
            self.wait_ready()
        except (RuntimeError, TimeoutError) as error:
            self.stop(kill=True)
            raise KafkaStartError(f"{error}; see {self.log(first)}") from error
        mode = "SASL_PLAINTEXT with ACLs" if self.layout.secure else "PLAINTEXT"
        pids = ", ".join(str(self.pid(node)) for node in self.layout.nodes)
        print(
            f"kafkactl: Kafka {KAFKA_VERSION} answers on {self.layout.bootstrap}, {mode} "
            f"({len(self.layout.nodes)} node(s), pid {pids})",
            flush=True,
        )
        self.provision(partitions)
        return True

    def start_node(self, node_id: int, within_s: float = 90.0) -> None:
        """Start one node of a cluster already formatted (after `stop_node`), and wait until it
        answers metadata requests as a registered broker."""
        node = self.layout.node(node_id)
        self._launch(node, os.pathsep.join(str(jar) for jar in fetch()))
        self.wait_ready(node, within_s)

    def stop_node(self, node_id: int, kill: bool = False) -> None:
        """SIGTERM one node (a controlled shutdown: its leaderships move first) and wait until
        it is gone, SIGKILL after 60 s; or SIGKILL it at once (`kill`)."""
        _stop(self.layout.node_dir(self.layout.node(node_id)), kill)

    def stop(self, kill: bool = False) -> None:
        """Stop every node: signalled together (one by one, the last nodes' controlled
        shutdowns would wait for a quorum already gone), then waited for."""
        folders = [self.layout.node_dir(node) for node in self.layout.nodes]
        _stop_all(folders, kill)

    def provision(self, partitions: int | None = None, topics_only: bool = False) -> Report:
        """Topics from the registry with this layout's durability; on a secured layout (unless
        `topics_only`) every principal's SCRAM credential, the registry's ACLs, and the
        principals' client configurations."""
        provisioner = Provisioner(self.admin_config())
        specs = topic_specs(self.layout.durability, partitions)
        if self.layout.secure and not topics_only:
            users = {name: pw for name, pw in self.passwords.items() if name != ADMIN}
            report = provisioner.provision(specs, users=users, plan=acl_plan())
            folder = write_client_configs(self.data_dir, self.layout.bootstrap, self.passwords)
            print(f"kafkactl: client configurations per principal in {folder}", flush=True)
        else:
            report = provisioner.provision(specs)
        for line in report.lines():
            print(f"kafkactl: {line}", flush=True)
        return report


def broker_certificate(data_dir: Path) -> Path:
    """A CA of this data dir (`tls/ca.pem`) and the broker's key and certificate for 127.0.0.1
    and localhost, signed by it (`tls/broker.pem`, mode 0600), made once with trustme (a test
    dependency: the TLS listener is for the test suite; production brokers have their own
    certificates). Returns the broker's file (every node of the data dir presents it)."""
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
    java_: str, classpath: str, cluster_id: str, properties: Path, scram: dict[str, str]
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
        subprocess.run([java_, f"@{argfile}"], check=True, capture_output=True)
    finally:
        argfile.unlink(missing_ok=True)


def _java_quoted(arg: str) -> str:
    """`arg` as one argument of a Java argument file: in double quotes, with backslashes and
    double quotes escaped (the launcher's own rules)."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pid(folder: Path) -> int | None:
    try:
        pid = int((folder / "kafka.pid").read_text())
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


def _stop_all(folders: list[Path], kill: bool = False, grace_s: float = 60.0) -> None:
    """Signal the node of each folder (SIGTERM, or SIGKILL with `kill`), then wait until all
    are gone, SIGKILLing those still there after `grace_s`."""
    running = {folder: pid for folder in folders if (pid := _pid(folder)) is not None}
    if not running:
        print("kafkactl: no broker running from this data dir", flush=True)
        return
    for pid in running.values():
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in running.values()):
        time.sleep(0.2)
    for folder, pid in running.items():
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        (folder / "kafka.pid").unlink(missing_ok=True)
        print(f"kafkactl: broker (pid {pid}) {'killed' if kill else 'stopped'}", flush=True)


def _stop(folder: Path, kill: bool = False) -> None:
    _stop_all([folder], kill)


def layout_of(data_dir: Path, secure: bool = False) -> Layout:
    """The layout `start` saved in `data_dir`, or a single node on the default ports."""
    return Layout.load(data_dir) or Layout.of(data_dir, secure=secure)


def start(
    port: int,
    controller_port: int,
    data_dir: Path,
    partitions: int | None,
    secure: bool = False,
    plaintext_port: int | None = None,
    tls_port: int | None = None,
    nodes: int = 1,
) -> bool:
    """Start the local Kafka of `data_dir` (`nodes` nodes from `port`) unless one answers on
    `port`; provision it either way. True when this call started it."""
    layout = Layout.of(
        data_dir, nodes=nodes, port=port, controller_port=controller_port,
        plaintext_port=plaintext_port, tls_port=tls_port, secure=secure,
    )  # fmt: skip
    if (saved := Layout.load(data_dir)) is not None:  # formatted before: the same cluster id
        layout = replace(layout, cluster_id=saved.cluster_id)
    try:
        return LocalKafka.open(layout).start(partitions)
    except KafkaStartError as error:
        sys.exit(f"kafkactl: {error}")


def stop(data_dir: Path, kill: bool = False) -> None:
    """Stop every node started from `data_dir`."""
    LocalKafka(layout_of(data_dir)).stop(kill)


def status(data_dir: Path, secure: bool) -> int:
    kafka = LocalKafka.open(layout_of(data_dir, secure))
    answering = kafka.brokers()
    for node in kafka.layout.nodes:
        state = "answers" if node.node_id in answering else "does not answer"
        print(f"kafkactl: node {node.node_id} pid {kafka.pid(node) or '-'}; "
              f"127.0.0.1:{node.port} {state}")  # fmt: skip
    return 0 if set(kafka.layout.node_ids) <= answering else 1


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
        "--nodes", type=int, choices=[1, 3], default=int(os.environ.get("KAFKA_NODES", "1")),
        help="one node, or a cluster of three (KAFKA_NODES)",
    )  # fmt: skip
    parser.add_argument("--node", type=int, default=None, help="stop, kill or start one node")
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
    elif args.command == "start" and args.node is not None:
        LocalKafka.open(layout_of(data_dir)).start_node(args.node)
    elif args.command == "start":
        start(
            args.port, args.controller_port or args.port + 1, data_dir, args.partitions,
            secure=args.secure, plaintext_port=args.plaintext_port, tls_port=args.tls_port,
            nodes=args.nodes,
        )  # fmt: skip
    elif args.command in ("stop", "kill"):
        kafka = LocalKafka(layout_of(data_dir))
        if args.node is not None:
            kafka.stop_node(args.node, kill=args.command == "kill")
        else:
            kafka.stop(kill=args.command == "kill")
    elif args.command == "status":
        return status(data_dir, args.secure)
    elif args.command == "topics" and args.bootstrap:  # a broker of elsewhere, in clear
        return provision_main(["--bootstrap", args.bootstrap, "--partitions", str(args.partitions)])
    else:  # topics or provision (users and ACLs too), again, on this data dir's Kafka
        kafka = LocalKafka.open(layout_of(data_dir, args.secure))
        kafka.provision(args.partitions, topics_only=args.command == "topics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
