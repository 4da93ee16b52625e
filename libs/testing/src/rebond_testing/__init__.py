"""Rebond's test support, one place for what every layer of tests (and the bench) needs.

A dev-only workspace package: no service depends on it. `rebond_testing.plugin` is the pytest
plugin the root `conftest.py` loads (tiers, the session's broker and PostgreSQL, Chromium).
"""

from rebond_contracts.payloads import new_reference
from rebond_testing.mail import Mail, MailSink
from rebond_testing.needs import IN_CI, unavailable
from rebond_testing.ports import free_port, free_port_pair, free_ports
from rebond_testing.probe import TopicProbe, committed, headers, processed, read_until
from rebond_testing.waiting import until, until_async
from rebond_testing.webhooks import HookCall, WebhookSink

__all__ = [
    "IN_CI",
    "HookCall",
    "Mail",
    "MailSink",
    "TopicProbe",
    "WebhookSink",
    "committed",
    "free_port",
    "free_port_pair",
    "free_ports",
    "headers",
    "new_reference",
    "processed",
    "read_until",
    "unavailable",
    "until",
    "until_async",
]
