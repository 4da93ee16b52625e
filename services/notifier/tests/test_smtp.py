"""The SMTP mailer against a real SMTP server (aiosmtpd, the `smtp_server` fixture)."""

from types import SimpleNamespace

from rebond_notifier import channels
from rebond_notifier.channels import SmtpMailer
from rebond_notifier.templates import Mail


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
