"""The session's Kafka broker for tests: given from outside, testcontainers', or a local secured
one started with `deploy/kafka/kafkactl.py`.

The local broker is the secured one (`kafkactl.py start --secure`: SASL/SCRAM, ACLs from the
registry, a principal per service and per association), with an extra unauthenticated listener
whose clients are super users, so that tests about something else need no credentials.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rebond_testing.needs import unavailable
from rebond_testing.ports import LOOPBACK, free_port_pair


@dataclass(frozen=True)
class SecureKafka:
    """The secured listener of the session's broker and every principal's password."""

    bootstrap: str
    credentials: dict[str, str]
    data_dir: Path
    #: The same broker's SASL_SSL listener (SCRAM over TLS, as production connects), whose
    #: certificate `ca_file` signed.
    tls_bootstrap: str = ""

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def sasl(self, principal: str) -> dict[str, str]:
        """aiokafka keyword arguments to connect as `principal` (SCRAM-SHA-512)."""
        return {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": principal,
            "sasl_plain_password": self.credentials[principal],
        }


@dataclass(frozen=True)
class Broker:
    """A broker for the session: its unauthenticated address, and its secured side if it has one."""

    bootstrap: str
    secure: SecureKafka | None


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


async def metadata_ok(bootstrap: str) -> bool:
    """Whether a broker answers at `bootstrap` with its topics' metadata within 10 s."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(client.start(), 10)
        await asyncio.wait_for(client.list_topics(), 10)
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()


class Kafkactl:
    """`deploy/kafka/kafkactl.py` of the checkout under test, run as its command line."""

    def __init__(self, script: Path) -> None:
        self.script = script

    def __call__(self, *args: str) -> None:
        subprocess.run([sys.executable, str(self.script), *args], check=True, timeout=300)


@contextmanager
def session_broker(kafkactl: Kafkactl, external: str | None) -> Iterator[Broker]:
    """The broker at `external` (KAFKA_BOOTSTRAP_SERVERS), else testcontainers' when a Docker
    engine answers, else a local secured broker on free ports, stopped and removed at the end.
    The registry's topics exist in each."""
    if external:
        if not asyncio.run(metadata_ok(external)):
            unavailable(f"no Kafka broker: KAFKA_BOOTSTRAP_SERVERS={external} does not answer")
        kafkactl("topics", "--bootstrap", external)
        yield Broker(external, None)
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            kafkactl("topics", "--bootstrap", bootstrap)
            yield Broker(bootstrap, None)
        return
    port, plaintext_port, tls_port = free_port_pair(), free_port_pair(), free_port_pair()
    data_dir = Path(tempfile.mkdtemp(prefix="rebond-kafka-"))
    try:
        kafkactl(
            "start", "--secure", "--port", str(port), "--plaintext-port", str(plaintext_port),
            "--tls-port", str(tls_port), "--data-dir", str(data_dir),
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        kafkactl("stop", "--data-dir", str(data_dir))
        unavailable(f"no Kafka broker: could not start the local broker: {error}")
    credentials = json.loads((data_dir / "credentials.json").read_text())
    try:
        yield Broker(
            f"{LOOPBACK}:{plaintext_port}",
            SecureKafka(f"{LOOPBACK}:{port}", credentials, data_dir, f"{LOOPBACK}:{tls_port}"),
        )
    finally:
        kafkactl("stop", "--data-dir", str(data_dir))
        shutil.rmtree(data_dir, ignore_errors=True)
