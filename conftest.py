"""Test fixtures shared by every layer: a real Kafka broker for the tests that need one.

The broker comes from, in order: KAFKA_BOOTSTRAP_SERVERS; testcontainers' Kafka when a Docker
engine answers; else a local broker started from deploy/kafka/kafkactl.py on free ports and
stopped at the end. With CI=true a test that needs the broker fails when none can be had;
elsewhere it is skipped with the reason.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
KAFKACTL = REPO / "deploy" / "kafka" / "kafkactl.py"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"no Kafka broker for this test (CI=true): {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


def free_port_pair() -> int:
    """A free port whose successor is free too (broker + controller)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port + 1)) != 0:
                return int(port)
    raise RuntimeError("no free port pair")


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


async def _metadata_ok(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(client.start(), 10)
        await asyncio.wait_for(client.list_topics(), 10)
        return True
    except Exception:
        return False
    finally:
        await client.close()


def _kafkactl(*args: str) -> None:
    subprocess.run([sys.executable, str(KAFKACTL), *args], check=True, timeout=300)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker whose registry topics exist."""
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        if not asyncio.run(_metadata_ok(bootstrap)):
            _unavailable(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} does not answer")
        _kafkactl("topics", "--bootstrap", bootstrap)
        yield bootstrap
        return
    if _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            _kafkactl("topics", "--bootstrap", bootstrap)
            yield bootstrap
        return
    port = free_port_pair()
    data_dir = Path(tempfile.mkdtemp(prefix="rebond-kafka-"))
    try:
        _kafkactl("start", "--port", str(port), "--data-dir", str(data_dir))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        _kafkactl("stop", "--data-dir", str(data_dir))
        _unavailable(f"could not start the local broker: {error}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _kafkactl("stop", "--data-dir", str(data_dir))
        shutil.rmtree(data_dir, ignore_errors=True)
