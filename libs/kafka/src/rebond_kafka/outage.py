"""Whether this process reaches Kafka, told once and clearly, for readiness, metrics and logs.

When the broker goes away, aiokafka logs each failed step of each of its loops, in each client
(a service holds a producer, an admin client and one consumer per subscriber): one outage of 15 s
made 24,000 `error` lines across the four services. What an operator needs is one line saying
what is down and what it means, a reminder now and then, and one line when it is back.

- `KafkaLink` is that outage's state: `rebond_kafka.reconnect` (the clients' connections) and
  `rebond_kafka.startup` (a broker's start) tell it when Kafka could not be reached and when it
  was reached again. It logs the first line (`error`, with what it means for this service), a
  summary every `summary_every_s` with the number of library lines condensed, and one `info`
  line with the outage's length once Kafka answers; `/readyz` and the metrics read it.
- `CondenseOutageLines` is the logging filter (`rebond_observability.logging` puts it on the one
  handler of each service) that drops aiokafka's connectivity lines while a link is down, and
  counts them. Any other line, and any line while no link is down, passes untouched: a failure
  that is not the outage is never hidden by it.
- `LINKS` holds this process's links, one per set of bootstrap servers. It is process-wide on
  purpose: aiokafka's clients are made deep inside FastStream, so the only place that sees them
  all is a patch of their class (`rebond_kafka.reconnect`), and the links it reports to must be
  found from there. A link holds no connection: it is the state of the process's clients.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

_log = structlog.get_logger(__name__)

#: aiokafka 0.14's messages (their format strings) that only say "the broker cannot be reached",
#: read in its client, coordinator, fetcher and sender. A line of another format is condensed
#: only if it carries one of `_CONNECTIVITY_ERRORS`.
_SYMPTOMS = frozenset(
    {
        'Unable connect to "%s:%s": %s',
        'Unable to request metadata from "%s:%s": %s',
        "Unable connect to node with id %s: %s",
        "Unable to request metadata from node with id %s: %r",
        "Unable to update metadata from %s",
        "Group Coordinator Request failed: %s",
        "Marking the coordinator dead (node %s)for group %s.",
        "Error sending %s to node %s [%s] -- marking coordinator dead",
        "Heartbeat session expired - marking coordinator dead",
        "Heartbeat send request failed: %s. Will retry.",
        "Heartbeat failed for group %s: coordinator (node %s) is either not started or not valid",
        "Failed fetch messages from %s: %s",
        "Failed fetch offsets from %s: %s",
        "Cannot send %r to %s: %r",
        "Could not send %r: %r",
    }
)
_CONNECTIVITY_ERRORS = (
    KafkaConnectionError,
    NodeNotReadyError,
    RequestTimedOutError,
    KafkaTimeoutError,
    GroupCoordinatorNotAvailableError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class Impact:
    """What an outage means for a service's users, in French and in English."""

    fr: str
    en: str


def bootstrap_key(servers: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """The set of `host:port` a client bootstraps from, however it was written."""
    items = servers.split(",") if isinstance(servers, str) else servers
    return frozenset(item.strip() for item in items if item.strip())


def _fr(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}".replace(".", ",")


def _en(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


class KafkaLink:
    """One service's view of one Kafka cluster: reachable, or down since when.

    `unreachable` is called only when no client of the process holds a live connection to any
    of the cluster's brokers (`rebond_kafka.reconnect` checks), so one broker of three going
    away is not an outage of the service. `clock` is injectable (tests use a fake one)."""

    def __init__(
        self,
        bootstrap_servers: str,
        impact: Impact,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: Any = _log,
        summary_every_s: float = 30.0,
    ) -> None:
        self.key = bootstrap_key(bootstrap_servers)
        self.impact = impact
        self._clock = clock
        self._log = log
        self._summary_every_s = summary_every_s
        self._down_since: float | None = None
        self._next_try_at = 0.0
        self._summary_at = 0.0
        self._condensed = 0  # library lines dropped since the last line this link logged
        self._condensed_total = 0  # ... during the whole outage
        self.outages = 0
        self._past_outage_s = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def down_for_s(self) -> float:
        return 0.0 if self._down_since is None else self._clock() - self._down_since

    def outage_seconds(self) -> float:
        """Seconds of outage so far, the one going on included."""
        return self._past_outage_s + self.down_for_s()

    def condensed(self) -> None:
        """One library line about this outage was dropped (`CondenseOutageLines`)."""
        self._condensed += 1
        self._condensed_total += 1

    def unreachable(self, retry_in_s: float, cause: str | None = None) -> None:
        """Kafka could not be reached (`cause`: the error's class, when known); the next try is
        in `retry_in_s`. The first call of an outage logs it; later ones log a summary once
        `summary_every_s` have passed."""
        now = self._clock()
        self._next_try_at = now + retry_in_s
        if self._down_since is None:
            self._down_since = self._summary_at = now
            self.outages += 1
            self._log.error(
                "kafka_unreachable",
                message=f"Kafka injoignable : {self.impact.fr} ; "
                f"nouvel essai dans {_fr(retry_in_s)} s",
                message_en=f"Kafka unreachable: {self.impact.en}; retrying in {_en(retry_in_s)} s",
                retry_in_s=round(retry_in_s, 2),
                **({"error": cause} if cause else {}),
            )
        elif now - self._summary_at >= self._summary_every_s:
            self._summary_at = now
            down_s, condensed = now - self._down_since, self._condensed
            self._condensed = 0
            self._log.error(
                "kafka_still_unreachable",
                message=f"Kafka toujours injoignable depuis {_fr(down_s)} s : "
                f"{self.impact.fr} ; {condensed} messages d'erreur de la bibliothèque "
                f"Kafka résumés ici ; nouvel essai dans {_fr(retry_in_s)} s",
                message_en=f"Kafka still unreachable after {_en(down_s)} s: {self.impact.en}; "
                f"{condensed} Kafka library error lines condensed here; "
                f"retrying in {_en(retry_in_s)} s",
                down_for_s=round(down_s, 1),
                condensed=condensed,
                retry_in_s=round(retry_in_s, 2),
            )

    def reachable(self) -> None:
        """Kafka answered. Ends the outage, if one was going on, with its length."""
        if self._down_since is None:
            return
        outage_s = self._clock() - self._down_since
        self._past_outage_s += outage_s
        self._down_since = None
        condensed, self._condensed, self._condensed_total = self._condensed_total, 0, 0
        self._log.info(
            "kafka_reachable_again",
            message=f"Kafka de nouveau joignable après {_fr(outage_s)} s de coupure "
            f"({condensed} messages d'erreur de la bibliothèque Kafka résumés)",
            message_en=f"Kafka reachable again after a {_en(outage_s)} s outage "
            f"({condensed} Kafka library error lines condensed)",
            outage_s=round(outage_s, 1),
            condensed=condensed,
        )


class KafkaLinks:
    """The links of one process, by bootstrap servers."""

    def __init__(self) -> None:
        self._links: dict[frozenset[str], KafkaLink] = {}

    def link(self, bootstrap_servers: str, impact: Impact) -> KafkaLink:
        """The link to these servers, made on first use. A second service in the same process
        (tests) shares it, as it shares the broker; the last impact given is the one told."""
        key = bootstrap_key(bootstrap_servers)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = KafkaLink(bootstrap_servers, impact)
        link.impact = impact
        return link

    def find(self, key: frozenset[str]) -> KafkaLink | None:
        return self._links.get(key)

    def down(self) -> list[KafkaLink]:
        return [link for link in self._links.values() if link.down]


LINKS = KafkaLinks()


def is_outage_symptom(record: logging.LogRecord) -> bool:
    """An aiokafka line that only says the broker cannot be reached."""
    if not record.name.startswith("aiokafka") or record.levelno < logging.WARNING:
        return False
    if record.msg in _SYMPTOMS:
        return True
    args = record.args.values() if isinstance(record.args, dict) else record.args or ()
    return any(isinstance(arg, _CONNECTIVITY_ERRORS) for arg in args)


class CondenseOutageLines(logging.Filter):
    """Drops aiokafka's connectivity lines while a link is down, counting them on the link (its
    summaries and last line say how many). Every other line passes."""

    def __init__(self, links: KafkaLinks = LINKS) -> None:
        super().__init__()
        self._links = links

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True  # ours, uvicorn's, FastStream's: never condensed
        down = self._links.down()
        if not down or not is_outage_symptom(record):
            return True
        for link in down:
            link.condensed()
        return False
