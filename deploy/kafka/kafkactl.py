"""Run a real Apache Kafka broker (KRaft, one combined node) from Maven Central jars.

    kafkactl.py start   [--port 9092] [--data-dir .run/kafka]   fetch, format, start, wait, create topics
    kafkactl.py stop    [--data-dir .run/kafka]                  stop the broker this data dir started
    kafkactl.py status  [--port 9092] [--data-dir .run/kafka]
    kafkactl.py topics  [--bootstrap 127.0.0.1:9092] [--partitions 3]
    kafkactl.py fetch                                            only fetch the jars into the cache

The jars are fetched once (Maven) into $REBOND_CACHE (default ~/.cache/rebond). Topics come from
the registry in rebond_contracts.topics and are created idempotently.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


async def _answers_metadata(bootstrap: str, timeout: float) -> bool:
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "not up yet" is expected here
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000)
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
    bootstrap: str, deadline_s: float = 90.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the broker exited with code {proc.returncode}")
        if asyncio.run(_answers_metadata(bootstrap, 3.0)):
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"Kafka at {bootstrap} did not answer metadata requests within {deadline_s:.0f}s"
    )


async def _create_topics(bootstrap: str, partitions: int | None) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    sys.path.insert(0, str(REPO / "contracts" / "src"))
    from rebond_contracts.topics import all_topics

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
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
            )
            for topic in all_topics()
            if topic.name not in existing
        ]
        if wanted:
            await client.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await client.close()


def create_topics(bootstrap: str, partitions: int | None = None) -> list[str]:
    """Create every registry topic that does not exist yet; returns the names created."""
    return asyncio.run(_create_topics(bootstrap, partitions))


def start(port: int, controller_port: int, data_dir: Path, partitions: int | None) -> bool:
    """Start a broker unless one answers on `port`. True when this call started it."""
    bootstrap = f"127.0.0.1:{port}"
    if _port_open(port):
        wait_until_ready(bootstrap, 15)
        print(f"kafkactl: a broker already answers on {bootstrap}; using it", flush=True)
        created = create_topics(bootstrap, partitions)
        print(f"kafkactl: topics created: {', '.join(created) or 'none (all present)'}", flush=True)
        return False
    classpath = os.pathsep.join(str(jar) for jar in fetch())
    data_dir.mkdir(parents=True, exist_ok=True)
    properties = data_dir / "server.properties"
    properties.write_text(
        SERVER_PROPERTIES.format(port=port, controller_port=controller_port, data_dir=data_dir)
    )
    java = _java()
    if not (data_dir / "logs" / "meta.properties").exists():
        cluster_id = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(properties), "--ignore-formatted"],
            check=True, capture_output=True,
        )  # fmt: skip
    log = (data_dir / "kafka.log").open("ab")
    proc = subprocess.Popen(
        [java, *JVM_HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
         f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
         "-cp", classpath, "kafka.Kafka", str(properties)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    (data_dir / "kafka.pid").write_text(str(proc.pid))
    try:
        wait_until_ready(bootstrap, proc=proc)
    except (RuntimeError, TimeoutError) as error:
        stop(data_dir)
        sys.exit(f"kafkactl: {error}; see {data_dir / 'kafka.log'}")
    print(f"kafkactl: Kafka {KAFKA_VERSION} answers on {bootstrap} (pid {proc.pid})", flush=True)
    created = create_topics(bootstrap, partitions)
    print(f"kafkactl: topics created: {', '.join(created) or 'none (all present)'}", flush=True)
    return True


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


def status(port: int, data_dir: Path) -> int:
    pid = _pid(data_dir)
    ready = _port_open(port) and asyncio.run(_answers_metadata(f"127.0.0.1:{port}", 3.0))
    print(
        f"kafkactl: pid {pid or '-'}; 127.0.0.1:{port} {'answers' if ready else 'does not answer'}"
    )
    return 0 if ready else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["start", "stop", "kill", "status", "topics", "fetch"])
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
        start(args.port, args.controller_port or args.port + 1, data_dir, args.partitions)
    elif args.command in ("stop", "kill"):
        stop(data_dir, kill=args.command == "kill")
    elif args.command == "status":
        return status(args.port, data_dir)
    elif args.command == "topics":
        created = create_topics(args.bootstrap or f"127.0.0.1:{args.port}", args.partitions)
        print(f"kafkactl: topics created: {', '.join(created) or 'none (all present)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
