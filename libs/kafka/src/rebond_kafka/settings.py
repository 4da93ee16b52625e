"""The Kafka connection settings every Rebond process shares, and what production asks of them.

`KafkaClientSettings` holds the fields of a Kafka client: protocol, SASL mechanism and
credentials, and the TLS files. Each subclass names its own environment prefix (`INTAKE_`,
`ROUTER_`, ..., `REBOND_` for the associations' client), so the variables are
`<PREFIX>_KAFKA_SECURITY_PROTOCOL` and so on. The password may come from a mounted file
(`<PREFIX>_KAFKA_SASL_PASSWORD_FILE`) when the subclass reads its settings through
`rebond_service.settings.FromEnvironment`, as every service and the associations' client do.

`kafka_production_problems` says what keeps a connection from what production requires: an
encrypted and authenticated one, `SASL_SSL` with SCRAM-SHA-256 or -512 and both credentials.
PLAIN is refused even over TLS because it sends the password itself to the broker at every
connection, and SCRAM does not. A service's settings (`rebond_service.settings`) run it while
they are read, so a service so configured stops before it opens any connection, with a message
naming each variable to change.
"""

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaClientSettings(BaseSettings):
    """How a process connects to Kafka; the subclass's `env_prefix` names the variables."""

    #: PLAINTEXT (a local broker), SASL_PLAINTEXT (`make run`'s loopback broker) or SASL_SSL.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    #: The process's own principal on a secured cluster.
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    #: SASL_SSL: the CA certificate(s) that signed the brokers' certificates, as PEM; the
    #: system's trusted CAs when unset. The brokers' host names are checked either way.
    kafka_ssl_cafile: Path | None = None
    #: SASL_SSL with client certificates (mutual TLS), as PEM: the certificate chain, and its
    #: key when not in the same file.
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None


def kafka_production_problems(settings: KafkaClientSettings) -> list[str]:
    """What keeps `settings` from the Kafka connection production requires, each naming the
    variable to set (empty when there is nothing)."""
    prefix = settings.model_config.get("env_prefix", "")
    problems = []
    if settings.kafka_security_protocol != "SASL_SSL":
        problems.append(
            f"{prefix}KAFKA_SECURITY_PROTOCOL must be SASL_SSL "
            f"(not {settings.kafka_security_protocol})"
        )
    if not settings.kafka_sasl_mechanism.startswith("SCRAM-"):
        problems.append(
            f"{prefix}KAFKA_SASL_MECHANISM must be SCRAM-SHA-512 or SCRAM-SHA-256 "
            f"(not {settings.kafka_sasl_mechanism}, which sends the password itself)"
        )
    if not settings.kafka_sasl_username:
        problems.append(f"{prefix}KAFKA_SASL_USERNAME must be set")
    if settings.kafka_sasl_password is None or not settings.kafka_sasl_password.get_secret_value():
        problems.append(
            f"{prefix}KAFKA_SASL_PASSWORD (or {prefix}KAFKA_SASL_PASSWORD_FILE) must be set"
        )
    return problems


def bootstrap_servers(servers: str) -> list[str]:
    """`<PREFIX>_KAFKA_BOOTSTRAP_SERVERS` (`host:port[,host:port…]`) as a list of addresses,
    which is how every service hands it to FastStream. FastStream's `KafkaBroker` takes one
    string as *one* address (it wraps it in a list, which aiokafka then does not split), so a
    cluster's `a:9092,b:9092,c:9092` given as a string names a host that does not exist and the
    service never connects."""
    return [server.strip() for server in servers.split(",") if server.strip()]
