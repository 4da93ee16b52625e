"""`make run`: start Kafka (secured), a mail sink and the five services; Ctrl-C stops them all.

The broker runs with SASL/SCRAM and the registry's ACLs; each service connects as its own
principal, in clear (SASL_PLAINTEXT) on 127.0.0.1 only, in the development environment: the
services refuse that transport with <SERVICE>_ENVIRONMENT=production, which needs SASL_SSL.
Logs go to .run/logs/<service>.log (JSON lines), Kafka's to .run/kafka/kafka.log, and every
e-mail the notifier sends lands as a file in .run/mail/. KAFKA_NODES=3 starts a three-node cluster
instead of one broker (its logs in .run/kafka/node-<id>/kafka.log), as production runs. The staff
console (coordination) listens on 127.0.0.1 only; the first `make run` makes it a development
coordinator account and prints its password once (never stored: `python -m rebond_coordination
add-user` makes others).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from deploy.kafka import kafkactl

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / ".run"
SERVICES = {"intake": 8000, "router": 8001, "notifier": 8002, "events": 8003, "coordination": 8004}
MAIL_PORT = int(os.environ.get("REBOND_MAIL_PORT", "1025"))
DEV_COORDINATOR = "coordination@rebond.localhost"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _service_env(name: str, port: int, bootstrap: str, password: str) -> dict[str, str]:
    prefix = name.upper()
    return {
        f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        f"{prefix}_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        f"{prefix}_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        f"{prefix}_KAFKA_SASL_USERNAME": name,
        f"{prefix}_KAFKA_SASL_PASSWORD": password,
        f"{prefix}_PORT": str(port),
        "NOTIFIER_SMTP_HOST": "127.0.0.1",
        "NOTIFIER_SMTP_PORT": str(MAIL_PORT),
        "COORDINATION_SMTP_PORT": str(MAIL_PORT),
        "COORDINATION_HOST": "127.0.0.1",  # staff only: never on another interface
        # The policy preview asks the router (both sides use the development token).
        "COORDINATION_ROUTER_URL": f"http://127.0.0.1:{SERVICES['router']}",
    }


def _dev_coordinator() -> str | None:
    """The development coordinator's password, the first time (None once the account exists):
    made with the console's own `add-user`, printed once by `main`, kept nowhere."""
    marker = RUN / "coordination-dev-account"
    if marker.exists():
        return None
    from rebond_coordination.__main__ import add_user
    from rebond_coordination.settings import CoordinationSettings

    password = secrets.token_urlsafe(15)
    args = [DEV_COORDINATOR, "--name", "Coordination (développement)", "--role", "coordinator"]
    settings = CoordinationSettings(environment="development")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        created = add_user(args, settings, read_password=lambda _prompt: password) == 0
    marker.write_text(DEV_COORDINATOR + "\n")
    return password if created else None


def main() -> int:
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    data_dir = RUN / "kafka"
    partitions = int(os.environ.get("KAFKA_PARTITIONS", "3"))
    nodes = int(os.environ.get("KAFKA_NODES", "1"))  # 3: a local cluster, as production runs
    started_kafka = kafkactl.start(port, port + 1, data_dir, partitions, secure=True, nodes=nodes)
    passwords = kafkactl.credentials(data_dir)
    bootstrap = kafkactl.layout_of(data_dir).bootstrap
    logs = RUN / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)  # the console's default store, .run/coordination.sqlite3, as it will open it
    coordinator_password = _dev_coordinator()
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def spawn(name: str, args: list[str], env: dict[str, str]) -> None:
        children[name] = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            cwd=REPO,
            stdout=(logs / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop them in order
        )

    try:
        mail_dir = RUN / "mail"
        spawn(
            "mailsink",
            ["-m", "rebond_notifier.mailsink", "--port", str(MAIL_PORT), "--dir", str(mail_dir)],
            {},
        )
        for name, service_port in SERVICES.items():
            spawn(
                name,
                ["-m", f"rebond_{name}"],
                _service_env(name, service_port, bootstrap, passwords[name]),
            )
        deadline = time.monotonic() + 60
        while not stopping and time.monotonic() < deadline:
            if all(_ready(p) for p in SERVICES.values()):
                break
            time.sleep(0.3)
        for name, service_port in SERVICES.items():
            state = "ready" if _ready(service_port) else "NOT READY"
            print(
                f"  {name:9} http://127.0.0.1:{service_port}  {state}  logs: {logs / (name + '.log')}"
            )
        clients = data_dir / "clients"
        print(
            f"  mail sink smtp://127.0.0.1:{MAIL_PORT}: every e-mail is kept as a file in {mail_dir}\n"
            f"  kafka     {bootstrap} (SASL/SCRAM; client configurations per principal in {clients})\n"
            "            in clear (SASL_PLAINTEXT) on the loopback interface only: a development\n"
            "            broker for this machine; in production the services require SASL_SSL\n"
            f"  console   http://127.0.0.1:{SERVICES['coordination']}  sign in as {DEV_COORDINATOR}"
            + (
                f" with {coordinator_password} (shown once)\n"
                if coordinator_password
                else " (password shown at the first `make run`)\n"
            )
            + "\nRebond runs. The portal and intake listen on http://127.0.0.1:8000 — try:\n"
            "  curl -X POST http://127.0.0.1:8000/v1/submissions -H 'content-type: application/json' "
            "-d @contracts/examples/questionnaire.v1.json\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(
                        f"{name} exited with code {child.returncode}; see {logs / (name + '.log')}"
                    )
                    stopping = True
            time.sleep(0.5)
    finally:
        print("\nStopping…", flush=True)
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if started_kafka:
            kafkactl.stop(data_dir)
        print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
