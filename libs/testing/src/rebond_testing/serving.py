"""An ASGI app served over real HTTP for a test: uvicorn on a free loopback port, in a thread."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from rebond_testing.ports import LOOPBACK, free_port


@contextmanager
def served(app: Any, timeout_s: float = 30.0) -> Iterator[str]:
    """`app` listening on a free port until the block ends; yields its base URL. Its lifespan
    runs as a real server runs it (started before the first request, ended at exit)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=LOOPBACK, port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it served (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {timeout_s} s")
            time.sleep(0.05)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)
