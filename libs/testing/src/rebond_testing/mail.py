"""A mail sink: a real SMTP server on loopback that keeps every message it is given."""

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Self
from urllib.parse import SplitResult, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from rebond_testing.ports import LOOPBACK, free_port
from rebond_testing.waiting import until, until_async


@dataclass(frozen=True)
class Mail:
    """One message as the server received it: the envelope's recipients and the message."""

    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def text(self) -> str:
        """The subject and every text part, decoded: where a reference or a link is looked for."""
        parts = [str(self.message["subject"] or "")]
        for part in self.message.walk():
            if part.get_content_maintype() == "text":
                body = part.get_payload(decode=True)
                if isinstance(body, bytes):
                    parts.append(body.decode(part.get_content_charset() or "utf-8", "replace"))
        return "\n".join(parts)


def link_in(text: str, pattern: str) -> SplitResult:
    """The link in a mail's `text` that `pattern` finds (a regular expression whose first group
    is the link), parsed: the mails name the services' public addresses, so a test follows the
    link's path on the server it runs itself. Fails the test, with the text, when there is none."""
    found = re.search(pattern, text)
    assert found, f"no link matching {pattern!r} in {text}"
    return urlsplit(found.group(1))


class MailSink:
    """aiosmtpd's controller (its own thread and loop) on a free loopback port, with itself as
    the handler: every message is kept, in order, in `mails`.

    `stop()` closes the port (a sender then has its connection refused, as when a mail server is
    down) and `start()` opens it again on the same port, keeping what arrived before. The
    handler appends from the server's thread; readers take a copy (`received()`), so a test
    reading while a message arrives sees it or not, never half of it."""

    def __init__(self, host: str = LOOPBACK, port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # --- the server ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._controller is None:
            self._controller = Controller(self, hostname=self.host, port=self.port)
            self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook: keep the message (parsed with the modern e-mail policy)."""
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        recipients = tuple(str(rcpt) for rcpt in envelope.rcpt_tos)
        with self._lock:
            self.mails.append(Mail(recipients, message))
        return "250 OK"

    # --- what arrived ----------------------------------------------------------------------

    def received(self) -> list[Mail]:
        with self._lock:
            return list(self.mails)

    def clear(self) -> None:
        with self._lock:
            self.mails.clear()

    def matching(self, to: str | None = None, about: str | None = None) -> list[EmailMessage]:
        """Messages sent to `to` (an envelope recipient), naming `about` (say, a reference) in
        their subject or text: the sink is shared, so a test picks out its own."""
        return [
            mail.message
            for mail in self.received()
            if (to is None or to in mail.recipients) and (about is None or about in mail.text)
        ]

    def to(self, address: str) -> list[EmailMessage]:
        return self.matching(to=address)

    def wait_for(
        self,
        to: str | None = None,
        about: str | None = None,
        count: int = 1,
        within_s: float = 30,
    ) -> list[EmailMessage]:
        """`matching(to, about)` once it holds `count` messages, or as it stands after
        `within_s` seconds (the caller asserts on how many)."""
        return until(self._at_least(to, about, count), within_s) or self.matching(to, about)

    async def wait_for_async(
        self,
        to: str | None = None,
        about: str | None = None,
        count: int = 1,
        within_s: float = 30,
    ) -> list[EmailMessage]:
        """`wait_for` from a test on an event loop (which runs meanwhile)."""
        found = await until_async(self._at_least(to, about, count), within_s)
        return found or self.matching(to, about)

    def _at_least(
        self, to: str | None, about: str | None, count: int
    ) -> Callable[[], list[EmailMessage]]:
        def check() -> list[EmailMessage]:
            found = self.matching(to, about)
            return found if len(found) >= count else []

        return check
