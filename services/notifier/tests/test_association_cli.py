"""`rebond-association` prints what strangers wrote (a first name) without letting a terminal
escape sequence through; the rules of `rebond_notifier.text` it relies on (pure, then on the
real broker); its connection settings from the association's client configuration file."""

import asyncio
import io
import json
import re
import ssl
import unicodedata
import uuid
from pathlib import Path

import certifi
import pytest

from rebond_contracts.associations import AssociationId
from rebond_contracts.topics import referrals
from rebond_notifier.association_cli import (
    ClientSettings,
    CliError,
    listen,
    load_settings,
    main,
    show,
    table_row,
)
from rebond_notifier.text import escape_controls, has_controls, one_line
from rebond_testing.events import publish_event

from .conftest import make_decision, poll_until

#: A first name as an attacker would write it: set the terminal's title (OSC), colour red (CSI,
#: in its C1 form too), a bidi override, a line break and a bell.
HOSTILE = "Cl\x1b]0;owned\x07aire\x1b[31m\x9b2J\u202eeriF\nRM -rf"


def _terminal_safe(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text.rstrip("\n"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Claire", "Claire"),
        ("Rebondir\r\nBcc: x@example.org", "Rebondir Bcc: x@example.org"),
        ("Soirée\u2028de\u2029témoignages", "Soirée de témoignages"),
        ("Ré\u202ecréer\u200b !", "Récréer !"),  # format characters simply go
        ("Déjà\u00a0là", "Déjà\u00a0là"),  # a no-break space is no control
    ],
)
def test_one_line_keeps_text_and_drops_what_breaks_a_header(value: str, expected: str) -> None:
    """Line breaks and controls become a space, format characters go, the rest is kept."""
    assert one_line(value) == expected
    assert not has_controls(one_line(value))


def test_escapes_show_every_control_and_stay_valid_json() -> None:
    """Each control or format character becomes a visible escape; inside a JSON string the
    result is still valid JSON holding the very same text."""
    escaped = escape_controls(HOSTILE)
    assert _terminal_safe(escaped)
    assert "\\u001b]0;owned\\u0007" in escaped and "\\u009b" in escaped and "\\u202e" in escaped
    assert json.loads(escape_controls(json.dumps(HOSTILE, ensure_ascii=False))) == HOSTILE


@pytest.mark.parametrize("as_json", [False, True])
def test_a_hostile_first_name_is_printed_escaped(as_json: bool) -> None:
    """The table row and the JSON line of a referral whose first name holds escape sequences
    reach the terminal with those sequences shown, not run; JSON still reads back the name."""
    referral = make_decision().referral
    referral = referral.model_copy(
        update={"contact": referral.contact.model_copy(update={"first_name": HOSTILE})}
    )
    out = io.StringIO()
    show(referral.model_dump_json() if as_json else table_row(referral), out)
    printed = out.getvalue()
    assert _terminal_safe(printed) and printed.count("\n") == 1
    if as_json:
        assert json.loads(printed)["contact"]["first_name"] == HOSTILE
    else:
        assert "Cl\\u001b]0;" in printed


@pytest.mark.kafka
async def test_listen_escapes_a_hostile_first_name_read_from_kafka(kafka_bootstrap: str) -> None:
    """`rebond-association listen` reading a real referral topic prints the hostile name escaped."""
    decision = make_decision(AssociationId.RE_CREER)
    referral = decision.referral.model_copy(
        update={"contact": decision.referral.contact.model_copy(update={"first_name": HOSTILE})}
    )
    topic = referrals(AssociationId.RE_CREER)
    event = topic.envelope(
        referral, subject=referral.reference, correlationid=referral.reference,
        id=str(referral.referral_id),
    )  # fmt: skip
    await publish_event(kafka_bootstrap, topic.name, event, referral.reference)
    out = io.StringIO()
    settings = ClientSettings(REBOND_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    task = asyncio.create_task(
        listen(
            settings, AssociationId.RE_CREER, as_json=False, group=f"t-{uuid.uuid4().hex}", out=out
        )
    )
    try:
        await poll_until(lambda: referral.reference in out.getvalue(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    [line] = [ln for ln in out.getvalue().splitlines() if referral.reference in ln]
    assert _terminal_safe(line) and "Cl\\u001b]0;owned" in line


# --- the association's client configuration file, and TLS -------------------------------------


def test_the_client_configuration_file_sets_the_connection(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`--config` reads the librdkafka file kcat reads (as kafkactl writes it); its settings win
    over the environment's."""
    monkeypatch.setenv("REBOND_KAFKA_BOOTSTRAP_SERVERS", "elsewhere:9092")
    config = tmp_path / "association-apesa.librdkafka.conf"
    config.write_text(
        "# given by the portal team\nbootstrap.servers=127.0.0.1:19092\n"
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=SCRAM-SHA-512\n"
        "sasl.username=association-apesa\nsasl.password=pa=ss word\n\n"
    )
    assert load_settings(config).kafka() == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "association-apesa",
        "sasl_plain_password": "pa=ss word",
        "ssl_context": None,
    }


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            "bootstrap.servers=127.0.0.1:9092\nssl.keystore.location=/k.p12\n",
            "line 2: unsupported setting 'ssl.keystore.location'",
        ),
        ("sasl.username\n", "line 1: unsupported setting 'sasl.username'"),
    ],
)
def test_a_setting_the_client_cannot_honour_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    """A line the client does not understand stops it with the file, line and setting named."""
    config = tmp_path / "client.conf"
    config.write_text(text)
    assert main(["listen", "--association", "apesa", "--config", str(config)]) == 2
    assert f"{config}, {named}" in capsys.readouterr().err


def test_a_missing_configuration_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration file that cannot be read is named in a one-line error, not a traceback."""
    assert main(["listen", "--association", "apesa", "--config", str(tmp_path / "nope.conf")]) == 2
    assert "cannot read the configuration file" in capsys.readouterr().err


def test_the_files_tls_settings_reach_the_connection(tmp_path: Path) -> None:
    """`ssl.ca.location` in the file is the CA the TLS context trusts; a CA that cannot be read
    stops the client with a one-line error naming it."""
    config = tmp_path / "client.conf"  # any CA bundle will do: certifi's
    config.write_text(f"security.protocol=SASL_SSL\nssl.ca.location={certifi.where()}\n")
    context = load_settings(config).kafka()["ssl_context"]
    assert context.get_ca_certs() and context.verify_mode == ssl.CERT_REQUIRED
    missing = tmp_path / "no-ca.pem"
    config.write_text(f"security.protocol=SASL_SSL\nssl.ca.location={missing}\n")
    with pytest.raises(CliError, match=re.escape(f"cannot use the TLS files ({missing})")):
        load_settings(config).kafka()


def test_a_value_the_client_does_not_know_is_named(tmp_path: Path) -> None:
    """A protocol this client does not speak is refused naming the file's line and setting."""
    config = tmp_path / "client.conf"
    config.write_text("bootstrap.servers=127.0.0.1:9092\nsecurity.protocol=SSL\n")
    with pytest.raises(CliError, match=re.escape("line 2: security.protocol: not a value")):
        load_settings(config)
