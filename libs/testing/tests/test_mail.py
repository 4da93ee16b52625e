"""The mail sink is a real SMTP server: what is sent arrives, a test finds its own messages by
recipient and reference, and a stopped sink refuses connections until it starts again."""

import smtplib
from email.message import EmailMessage

import pytest

from rebond_testing import MailSink
from rebond_testing.mail import link_in


def _send(port: int, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = "rebond@example.org"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


def test_messages_arrive_and_are_found_by_recipient_and_reference() -> None:
    """Two messages to two people: each found by address, by the reference in its subject or
    in its text, and waited for by count."""
    with MailSink() as sink:
        _send(
            sink.port, "claire@example.org", "Votre orientation RB-AAAA-BBBB-CCCC-DDDD", "Bonjour"
        )
        _send(
            sink.port, "orientation@apesa.example", "Nouvelle orientation", "RB-AAAA-BBBB-CCCC-DDDD"
        )
        assert len(sink.wait_for(about="RB-AAAA-BBBB-CCCC-DDDD", count=2, within_s=10)) == 2
        [to_person] = sink.to("claire@example.org")
        assert to_person["subject"] == "Votre orientation RB-AAAA-BBBB-CCCC-DDDD"
        assert len(sink.matching(to="orientation@apesa.example", about="RB-AAAA")) == 1
        assert sink.matching(to="claire@example.org", about="RB-ZZZZ") == []


async def test_waiting_from_an_event_loop() -> None:
    """`wait_for_async` returns what arrived while the loop ran; too few after the limit."""
    with MailSink() as sink:
        _send(sink.port, "claire@example.org", "Bonjour", "Première")
        assert len(await sink.wait_for_async(to="claire@example.org", within_s=10)) == 1
        assert len(await sink.wait_for_async(to="claire@example.org", count=2, within_s=0.2)) == 1


def test_a_stopped_sink_refuses_then_serves_again_on_its_port() -> None:
    """Stopped: connection refused (a mail server down). Started again: same port, earlier
    messages kept, new ones arrive."""
    sink = MailSink().start()
    try:
        _send(sink.port, "claire@example.org", "Avant", "1")
        sink.stop()
        with pytest.raises(ConnectionRefusedError):
            _send(sink.port, "claire@example.org", "Pendant", "2")
        sink.start()
        _send(sink.port, "claire@example.org", "Après", "3")
        assert [m["subject"] for m in sink.to("claire@example.org")] == ["Avant", "Après"]
    finally:
        sink.stop()


def test_a_link_in_a_mail_is_found_by_its_label_and_parsed() -> None:
    """`link_in` parses the pattern's first group (the link after "Décliner", not the one
    before it); a mail without the link fails the test, naming the pattern and the text."""
    text = "Accepter : https://n.example/r/a1\nDécliner : https://n.example/r/d2?x=1"
    url = link_in(text, r"Décliner\s*:\s*(\S+)")
    assert (url.netloc, url.path, url.query) == ("n.example", "/r/d2", "x=1")
    with pytest.raises(AssertionError, match=r"Retirer.*Accepter"):
        link_in(text, r"Retirer\s*:\s*(\S+)")
