"""The outside world: SMTP and webhooks, each attempt classified as sent, retry or failed.

`Retry` covers what may succeed later (timeouts, connection errors, `5xx`, SMTP `4xx`);
`Failed` what the receiver will not take (`4xx` from a webhook, a refused recipient);
`Unbuildable` a delivery that cannot even be put together (an address with a line break in it,
a webhook URL no client can call): the same on every attempt, so it is never retried.
"""

import socket
import time
from email.charset import QP, Charset
from email.errors import MessageError
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.text import MIMEText
from email.utils import make_msgid
from typing import Protocol

import aiosmtplib
import httpx

from rebond_notifier.signing import webhook_headers
from rebond_notifier.templates import Mail
from rebond_notifier.text import has_controls, one_line

#: E-mail bodies: UTF-8, quoted-printable (7-bit safe, still readable as text).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


class DeliveryError(Exception):
    """Base of an unsuccessful attempt; the message names no personal data."""


class Retry(DeliveryError):
    """Temporary: try again later."""


class Failed(DeliveryError):
    """Permanent: do not try again."""


class Unbuildable(DeliveryError):
    """The message or request cannot be built from what the delivery holds: permanent, and
    for an operator to look at (it is dead-lettered at once)."""


def classify_status(status: int) -> type[DeliveryError] | None:
    """None for success; `Retry` for 5xx; `Failed` for anything else (4xx are not retried)."""
    if 200 <= status < 300:
        return None
    if status >= 500:
        return Retry
    return Failed


def retry_delay(attempts: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff after `attempts` failed attempts: base, 2·base, 4·base… up to cap."""
    return float(min(cap_s, base_s * 2 ** max(0, attempts - 1)))


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class WebhookPoster(Protocol):
    async def post(
        self, url: str, secret: bytes, body: bytes, timeout_s: float, delivery_id: str
    ) -> None: ...


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
        use_tls: bool = False,
        ca_file: str | None = None,
        timeout_s: float = 10.0,
        local_hostname: str | None = None,
        keep_open: int = 8,
        idle_s: float = 30.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.start_tls, self.timeout_s = start_tls, timeout_s
        #: Implicit TLS (SMTPS) instead of STARTTLS; `ca_file` trusted for the server's
        #: certificate besides the system's CAs (aiosmtplib verifies it and the host name).
        self.use_tls, self.ca_file = use_tls, ca_file
        #: The name given in EHLO, looked up once: left to aiosmtplib, every e-mail would ask
        #: the resolver again (`socket.getfqdn`, in a thread), a good part of an e-mail's cost.
        self.local_hostname = local_hostname or socket.getfqdn()
        #: Connections kept open between e-mails (at most `keep_open`, each closed after
        #: `idle_s` unused): connect, EHLO (and STARTTLS, login) and QUIT once per connection
        #: instead of once per e-mail. Each e-mail takes one to itself, so lanes sending at
        #: the same time use as many.
        self.keep_open, self.idle_s = keep_open, idle_s
        self._open: list[tuple[aiosmtplib.SMTP, float]] = []

    def build(self, mail: Mail) -> Message:
        """The e-mail as text/plain UTF-8, quoted-printable, a non-ASCII subject in RFC 2047
        words. Built with the `email` package's classic classes: its `EmailMessage` parses
        again every header it is given and encodes more slowly (measured: 0.8-1.1 against
        0.4-0.5 ms per e-mail, a third of the dispatcher's CPU). Addresses beyond ASCII
        (which need SMTPUTF8) still take `EmailMessage`."""
        # Every header value that comes from data is one line: a line break in a conference
        # title would make the message unbuildable (or, unchecked, add a header). An address
        # cannot be mended that way; it is refused.
        if has_controls(mail.to) or has_controls(self.sender):
            raise Unbuildable("an address holds a line break or a control character")
        subject = one_line(mail.subject)
        message_id = (
            f"<{mail.message_id}@rebond.local>"
            if mail.message_id
            else make_msgid(domain="rebond.local")
        )
        if not (mail.to.isascii() and self.sender.isascii()):
            modern = EmailMessage()
            modern["From"], modern["To"], modern["Subject"] = self.sender, mail.to, subject
            modern["Message-ID"] = message_id
            modern.set_content(mail.text)
            return modern
        # typeshed types `_charset` as `str` and headers as `str`, but `email` takes a `Charset`
        # (`set_payload`) and a `Header` (compat32 policy) too.
        message = MIMEText(mail.text, "plain", _UTF8_QP)  # type: ignore[arg-type]
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
        message["Message-ID"] = message_id
        return message

    async def send(self, mail: Mail) -> None:
        try:
            message = self.build(mail)
        except (ValueError, TypeError, MessageError) as error:  # `email` refuses the headers
            raise Unbuildable(f"message cannot be built: {type(error).__name__}") from error
        client = self._take()
        try:
            if client is not None:
                try:
                    await client.send_message(message)
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    # The server closed it while it was idle: the e-mail was not taken.
                    client.close()
                    client = None
            if client is None:
                client = await self._connect()
                await client.send_message(message)
        except MessageError as error:  # flattening refused a header: nothing was sent
            self._put_back(client)
            raise Unbuildable(f"message cannot be built: {type(error).__name__}") from error
        except aiosmtplib.SMTPRecipientsRefused as error:
            self._put_back(client)  # the session is still good; only this e-mail is refused
            raise Failed("recipient refused") from error
        except aiosmtplib.SMTPResponseException as error:
            _drop(client)
            kind = Failed if 500 <= error.code < 600 else Retry
            raise kind(f"smtp {error.code}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            _drop(client)
            raise Retry(f"smtp {type(error).__name__}") from error
        except BaseException:  # cancelled mid-conversation: the session's state is unknown
            _drop(client)
            raise
        self._put_back(client)

    async def close(self) -> None:
        """Say QUIT on the connections kept open."""
        kept, self._open = self._open, []
        for client, _ in kept:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.start_tls or None,
            use_tls=self.use_tls,
            cert_bundle=self.ca_file,
            timeout=self.timeout_s,
            local_hostname=self.local_hostname,
        )
        await client.connect()
        return client

    def _take(self) -> aiosmtplib.SMTP | None:
        """The most recently used open connection, closing those idle too long."""
        oldest_kept = time.monotonic() - self.idle_s
        while self._open:
            client, used_at = self._open.pop()
            if used_at >= oldest_kept and client.is_connected:
                return client
            client.close()
        return None

    def _put_back(self, client: aiosmtplib.SMTP | None) -> None:
        if client is None:
            return
        if len(self._open) >= self.keep_open or not client.is_connected:
            client.close()
            return
        self._open.append((client, time.monotonic()))


def _drop(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()


class HttpWebhookPoster:
    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or httpx.AsyncClient(follow_redirects=False)

    async def post(
        self, url: str, secret: bytes, body: bytes, timeout_s: float, delivery_id: str
    ) -> None:
        # `webhook-id` is the delivery id, the same on every attempt: receivers deduplicate on
        # it (at-least-once); it is signed with the body and this attempt's timestamp.
        headers = {
            "content-type": "application/json",
            "user-agent": "rebond-notifier",
            **webhook_headers(secret, delivery_id, body),
        }
        try:
            response = await self.client.post(url, content=body, headers=headers, timeout=timeout_s)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as error:
            raise Unbuildable(f"webhook request cannot be built: {type(error).__name__}") from error
        except httpx.TimeoutException as error:
            raise Retry("webhook timeout") from error
        except httpx.TransportError as error:
            raise Retry(f"webhook {type(error).__name__}") from error
        kind = classify_status(response.status_code)
        if kind is not None:
            raise kind(f"webhook http {response.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
