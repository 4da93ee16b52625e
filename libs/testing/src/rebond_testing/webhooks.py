"""A webhook sink: a real HTTP server on loopback that records every call and answers as told."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple, Self

from rebond_testing.ports import LOOPBACK

#: How long a "hang" answer holds the request: longer than any sender's timeout in the tests.
HANG_S = 5.0
#: How often the server's loop looks whether `close()` asked it to stop: `close()` waits for
#: that look, and socketserver's default, half a second, was most of a short test's time.
SHUTDOWN_POLL_S = 0.05


class HookCall(NamedTuple):
    """One call received: its path, when (monotonic clock), its headers (lower-cased) and body."""

    path: str
    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def delivery_id(self) -> str:
        """The Standard Webhooks `webhook-id`: the same for a delivery sent again."""
        return self.headers.get("webhook-id", "")


class WebhookSink:
    """A threading HTTP server on a free loopback port, from construction until `close()`.

    `modes[path]` says how to answer a path: "ok" (204, the default), "500", or "hang" (hold
    the request `HANG_S`, then close it unanswered, as a receiver that times out). A request
    whose body is cut short (its sender was killed mid-call) is not a call: nothing arrived."""

    def __init__(self) -> None:
        self.calls: list[HookCall] = []
        self.modes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True
        ).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                with sink._lock:
                    sink.calls.append(HookCall(self.path, time.monotonic(), headers, body))
                mode = sink.modes.get(self.path, "ok")
                if mode == "hang":
                    time.sleep(HANG_S)
                    return
                self.send_response(500 if mode == "500" else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        return Handler

    def received(self) -> list[HookCall]:
        with self._lock:
            return list(self.calls)

    def on(self, path: str) -> list[HookCall]:
        return [call for call in self.received() if call.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
