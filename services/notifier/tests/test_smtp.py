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
