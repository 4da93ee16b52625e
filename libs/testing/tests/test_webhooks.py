"""The webhook sink records each call with its headers and answers each path as told."""

import httpx
import pytest

from rebond_testing import WebhookSink


def test_calls_are_recorded_and_answered_per_path() -> None:
    """A call to an "ok" path gets 204, to a "500" path 500; both are recorded, in order, with
    their body and their `webhook-id`."""
    with WebhookSink() as sink:
        sink.modes["/failing"] = "500"
        ok = httpx.post(f"{sink.url}/ok", content=b"{}", headers={"webhook-id": "msg_1"})
        failing = httpx.post(f"{sink.url}/failing", content=b"[]")
        assert (ok.status_code, failing.status_code) == (204, 500)
        assert [(c.path, c.body, c.delivery_id) for c in sink.received()] == [
            ("/ok", b"{}", "msg_1"),
            ("/failing", b"[]", ""),
        ]
        assert [c.body for c in sink.on("/ok")] == [b"{}"]


def test_a_hanging_path_times_the_sender_out() -> None:
    """A "hang" path holds the call past the sender's timeout, and the call is recorded."""
    with WebhookSink() as sink:
        sink.modes["/slow"] = "hang"
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{sink.url}/slow", content=b"{}", timeout=0.2)
        assert [c.path for c in sink.received()] == ["/slow"]
