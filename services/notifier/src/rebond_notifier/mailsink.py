"""A development mail sink: an SMTP server that keeps each message as a `.eml` file.

    python -m rebond_notifier.mailsink --port 1025 --dir .run/mail

Nothing is ever delivered to anyone; open the files with any mail reader or `cat`.
"""

import argparse
import asyncio
import itertools
import signal
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


class FileSink:
    """aiosmtpd handler: write each accepted message to `directory/<time>-<n>.eml`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self._counter):05d}.eml"
        path = self.directory / name
        path.write_bytes(content)
        return "250 Message kept"


async def serve(host: str, port: int, directory: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = FileSink(directory)
    server = await loop.create_server(lambda: SMTP(handler, hostname="rebond-mailsink"), host, port)
    print(
        f"mail sink: smtp://{host}:{port} keeps each message as a file in {directory}",
        flush=True,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rebond_notifier.mailsink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".run/mail"))
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.dir.resolve()))


if __name__ == "__main__":
    main()
