"""The SMTP mailer against a real SMTP server (aiosmtpd, the `smtp_server` fixture)."""

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from rebond_contracts.payloads import RegistrationChange
from rebond_notifier import channels, templates
from rebond_notifier.channels import HttpWebhookPoster, SmtpMailer, Unbuildable
from rebond_notifier.templates import Mail

from .conftest import CollectMail, MailBox, free_port, make_conference, make_registration


async def test_the_ehlo_name_is_looked_up_once_not_per_mail(smtp_server, monkeypatch) -> None:
    """The mailer asks for this host's name once, when made (aiosmtplib alone would ask the
    resolver for every e-mail), and gives it, or the configured one, in every EHLO."""
    lookups: list[str] = []

    def getfqdn(name: str = "") -> str:
        lookups.append(name)
        return "notifier.host.test"

    monkeypatch.setattr(channels, "socket", SimpleNamespace(getfqdn=getfqdn))
    looked_up = SmtpMailer(smtp_server.host, smtp_server.port, "orientation@rebond.local")
    named = SmtpMailer(
        smtp_server.host, smtp_server.port, "orientation@rebond.local",
        local_hostname="mx-out.rebond.test",
    )  # fmt: skip
    before = len(smtp_server.client_names)
    for mailer in (looked_up, looked_up, named):
        await mailer.send(Mail(to="a@example.org", subject="ehlo-test", text="t"))
    assert len(lookups) == 1
    assert smtp_server.client_names[before:] == [
        "notifier.host.test", "notifier.host.test", "mx-out.rebond.test"
    ]  # fmt: skip


async def test_a_french_mail_arrives_as_written(smtp_server) -> None:
    """Accents in the subject and the text, long lines, a line starting with a dot: what the
    server receives reads back exactly as the template wrote it, in 7-bit-safe encodings."""
    text = (
        "Bonjour,\n\nVotre demande a été orientée vers l'association la plus proche de votre "
        "situation ; elle vous écrira d'ici quelques jours, sans engagement de votre part.\n"
        ".Référence : RB-7K3M-Q9XA-2DFE-W8NB\n"
    )
    subject = "Votre demande RB-7K3M-Q9XA-2DFE-W8NB : orientée vers « Second Souffle »"
    mailer = SmtpMailer(
        smtp_server.host, smtp_server.port, "Portail du rebond <orientation@rebond.local>"
    )
    await mailer.send(Mail(to="a@example.org", subject=subject, text=text, message_id="m-1"))
    (received,) = await smtp_server.wait_for("RB-7K3M-Q9XA-2DFE-W8NB", 1)
    raw = received.as_bytes()
    assert raw.isascii()
    assert received["Subject"] == subject
    assert received["From"] == "Portail du rebond <orientation@rebond.local>"
    assert received["To"] == "a@example.org"
    assert received["Message-ID"] == "<m-1@rebond.local>"
    assert received.get_content_type() == "text/plain"
    assert received.get_content().replace("\r\n", "\n") == text


def test_an_address_beyond_ascii_is_kept_as_written() -> None:
    """An internationalised address (it needs SMTPUTF8 from the server) is not encoded away."""
    mailer = SmtpMailer("127.0.0.1", 25, "orientation@rebond.local")
    message = mailer.build(Mail(to="élodie@exemple.fr", subject="Réponse", text="Merci"))
    assert message["To"] == "élodie@exemple.fr"
    assert message["Subject"] == "Réponse"


async def test_e_mails_in_a_row_share_one_connection(smtp_server) -> None:
    """Connect and EHLO once for e-mails sent one after another; e-mails sent at the same
    time each take a connection of their own, all kept for what follows."""
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, "orientation@rebond.local")
    before = len(smtp_server.client_peers)
    for n in range(3):
        await mailer.send(Mail(to="a@example.org", subject=f"in-a-row-{n}", text="t"))
    await asyncio.gather(
        *(
            mailer.send(Mail(to="a@example.org", subject=f"together-{n}", text="t"))
            for n in range(3)
        )
    )
    in_a_row, together = (
        smtp_server.client_peers[before : before + 3],
        smtp_server.client_peers[before + 3 :],
    )
    assert len(set(in_a_row)) == 1
    assert len(set(together)) == 3 and in_a_row[0] in together
    await mailer.close()
    await mailer.send(Mail(to="a@example.org", subject="after-close", text="t"))
    assert smtp_server.client_peers[-1] not in together  # closed ones are not used again


async def test_a_connection_closed_while_idle_is_replaced_and_the_mail_goes_out() -> None:
    """The server went away (restarted) between two e-mails: the second still goes out, on a
    new connection, instead of failing on the dead one."""
    box = MailBox("127.0.0.1", free_port())
    mailer = SmtpMailer(box.host, box.port, "orientation@rebond.local")
    first = Controller(CollectMail(box), hostname=box.host, port=box.port)
    first.start()
    await mailer.send(Mail(to="a@example.org", subject="before-restart", text="t"))
    first.stop()
    second = Controller(CollectMail(box), hostname=box.host, port=box.port)
    second.start()
    try:
        await mailer.send(Mail(to="a@example.org", subject="after-restart", text="t"))
        assert [str(m["Subject"]) for m in box.messages] == ["before-restart", "after-restart"]
        assert box.client_peers[0] != box.client_peers[1]
    finally:
        await mailer.close()
        second.stop()


async def test_a_connection_idle_too_long_is_not_used_again(smtp_server) -> None:
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, "orientation@rebond.local", idle_s=0)
    for n in range(2):
        await mailer.send(Mail(to="a@example.org", subject=f"idle-{n}", text="t"))
    assert len(set(smtp_server.client_peers[-2:])) == 2
    await mailer.close()


@pytest.mark.parametrize("title", ["Rebondir\r\nBcc: intrus@example.org", "Rebondir\nensemble"])
async def test_a_conference_title_with_line_breaks_is_sent_on_one_subject_line(
    smtp_server, title: str
) -> None:
    """A title holding a line break (or a would-be header) gives a one-line subject and no
    extra header; the e-mail goes out instead of failing at every attempt."""
    conference = make_conference(title=title)
    registration = make_registration(RegistrationChange.WAITLISTED, conference=conference)
    mail = templates.registration_mail(registration, None)
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, "orientation@rebond.local")
    await mailer.send(mail)
    one_line = " ".join(title.split())
    (received,) = await smtp_server.wait_for(one_line, 1)
    assert received["Subject"] == f"Liste d'attente : {one_line}"
    assert received["Bcc"] is None and received["To"] == "claire@example.org"
    await mailer.close()


async def test_an_address_with_a_line_break_is_unbuildable_not_retried() -> None:
    """A recipient holding a line break cannot be mended: `Unbuildable`, before any connection."""
    mailer = SmtpMailer("127.0.0.1", free_port(), "orientation@rebond.local")  # nobody listens
    with pytest.raises(Unbuildable, match="address"):
        await mailer.send(
            Mail(to="claire@example.org\r\nBcc: x@example.org", subject="s", text="t")
        )


@pytest.mark.parametrize(
    "url", ["ftp://crm.example/hook", "crm.example/hook", "http://crm\x00/hook"]
)
async def test_a_webhook_url_no_client_can_call_is_unbuildable(url: str) -> None:
    """A URL httpx cannot even turn into a request is permanent (`Unbuildable`), not a retry."""
    poster = HttpWebhookPoster()
    try:
        with pytest.raises(Unbuildable):
            await poster.post(url, b"k" * 32, b"{}", 1.0, "delivery-1")
    finally:
        await poster.close()


# --- TLS: what production requires (NOTIFIER_SMTP_STARTTLS or NOTIFIER_SMTP_TLS) -------------


@pytest.fixture(scope="module")
def tls_certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1, and the file of the CA that signed it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca_file = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, str(ca_file)


@contextmanager
def _serving(**tls: Any) -> Iterator[MailBox]:
    """An aiosmtpd server on loopback with `tls` (aiosmtpd's TLS arguments)."""
    box = MailBox("127.0.0.1", free_port())
    controller = Controller(CollectMail(box), hostname=box.host, port=box.port, **tls)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def smtps_server(tls_certificates: tuple[ssl.SSLContext, str]) -> Iterator[MailBox]:
    """An SMTP server speaking TLS from the first byte (SMTPS)."""
    with _serving(ssl_context=tls_certificates[0], server_hostname="127.0.0.1") as box:
        yield box


@pytest.fixture
def starttls_server(tls_certificates: tuple[ssl.SSLContext, str]) -> Iterator[MailBox]:
    """An SMTP server that refuses any e-mail before STARTTLS."""
    with _serving(tls_context=tls_certificates[0], require_starttls=True) as box:
        yield box


@pytest.mark.parametrize(
    ("server", "tls"),
    [("smtps_server", {"use_tls": True}), ("starttls_server", {"start_tls": True})],
)
async def test_e_mail_goes_out_over_tls(
    server: str,
    tls: dict[str, bool],
    tls_certificates: tuple[ssl.SSLContext, str],
    request: pytest.FixtureRequest,
) -> None:
    """NOTIFIER_SMTP_TLS: the session is TLS from the start; NOTIFIER_SMTP_STARTTLS: it is
    upgraded before anything is sent (that server refuses any e-mail before). Either way the
    server's certificate is checked against NOTIFIER_SMTP_CA_FILE."""
    box: MailBox = request.getfixturevalue(server)
    mailer = SmtpMailer(
        box.host, box.port, "orientation@rebond.local", ca_file=tls_certificates[1], **tls
    )
    await mailer.send(Mail(to="a@example.org", subject=f"{server}-RB-TLS1", text="t"))
    await mailer.close()
    assert len(await box.wait_for(f"{server}-RB-TLS1", 1)) == 1


async def test_a_server_certificate_no_trusted_ca_signed_is_refused(smtps_server: MailBox) -> None:
    """Without the CA that signed it, the server's certificate fails verification: the e-mail
    is not sent in clear or unverified, it waits for a retry."""
    mailer = SmtpMailer(
        smtps_server.host, smtps_server.port, "orientation@rebond.local", use_tls=True
    )
    with pytest.raises(channels.Retry):
        await mailer.send(Mail(to="a@example.org", subject="smtps-RB-TLS2", text="t"))
    assert smtps_server.about("smtps-RB-TLS2") == []
