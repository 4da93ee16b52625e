"""Durability on a three-node Kafka cluster (issue #25), the four services running on it.

Every topic has three replicas and `min.insync.replicas` 2 (`rebond_kafka.provision`), intake and
the other producers send with `acks=all` and idempotence, consumers commit after processing. The
load posts questionnaires as the portal does, each with its `Idempotency-Key`, and a submission
answered `503` is posted again with the same key, as a person pressing "send" again would.

- the node leading `questionnaires.completed` SIGKILLed while 2,000 submissions are posted;
- one node SIGKILLed, then a second: one left, below `min.insync.replicas`; both brought back;
- a rolling restart of the three nodes under a steady 20 submissions a second.

Each time: every accepted submission is decided once and, when the person consented to sharing,
referred once (its referral record, the association's e-mail and the person's); figures in
tests/faults/results/cluster_*.json.
"""

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from deploy.kafka.kafkactl import LocalKafka
from rebond_contracts.topics import QUESTIONNAIRES
from rebond_intake.submissions import IDEMPOTENCY_NAMESPACE
from rebond_kafka.testing import records_to_end
from rebond_testing import MailSink
from tests.conftest import RunningService
from tests.faults.rebond_faultkit import (
    Posted,
    Readiness,
    decided,
    latency_figures,
    outcome,
    post_submissions,
    questionnaire,
    record_figures,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

#: A person's retry after a `503`, as the portal does it: the same key, after `Retry-After`.
RETRY_RATE_PER_S = 20.0
ROUNDS = 6


class Load:
    """The submissions of one test: numbered, every fifth without consent to sharing, each with
    its own e-mail address and `Idempotency-Key`."""

    def __init__(self, intake_url: str) -> None:
        self.intake_url = intake_url
        self.tag = uuid.uuid4().hex[:8]
        self.first: dict[int, Posted] = {}
        self.last: dict[int, Posted] = {}

    def consents(self, index: int) -> bool:
        return index % 5 != 0

    def email(self, index: int) -> str:
        return f"cluster-{self.tag}-{index}@example.org"

    def body(self, index: int) -> dict[str, Any]:
        return questionnaire(consenting=self.consents(index), email=self.email(index))

    def key(self, index: int) -> str:
        return f"cluster-{self.tag}-{index:05d}"

    def post(self, indices: Iterable[int], rate_per_s: float) -> list[Posted]:
        posted = asyncio.run(
            post_submissions(self.intake_url, indices, rate_per_s, self.body, self.key)
        )
        for answer in posted:
            self.first.setdefault(answer.index, answer)
            self.last[answer.index] = answer
        return posted

    def refused(self) -> list[int]:
        return [i for i, answer in self.last.items() if answer.status != 202]

    def post_refused_again(self) -> int:
        """Post every refused submission again with its key until each is accepted (a few
        rounds, `Retry-After` apart); returns how many were posted again."""
        again = self.refused()
        for _ in range(ROUNDS):
            if not (pending := self.refused()):
                break
            posted = self.post(pending, RETRY_RATE_PER_S)
            if self.refused():
                time.sleep(max(int(a.retry_after or 1) for a in posted if a.status != 202))
        return len(again)

    def written_although_refused(self, bootstrap: str) -> int:
        """How many submissions answered `503` (first attempt) are on
        `questionnaires.completed` all the same: the producer, idempotent, kept retrying them
        after intake gave up waiting. Their retry, with the same key and so the same event id,
        is taken once."""
        refused = {
            str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, self.key(i)))
            for i, answer in self.first.items()
            if answer.status != 202
        }
        records = asyncio.run(records_to_end(bootstrap, [QUESTIONNAIRES.name]))
        ids = {dict(r.headers).get("ce_id", b"").decode() for r in records}
        return len(refused & ids)

    def verify(self, bootstrap: str, smtp: MailSink, within_s: float = 300.0) -> dict[str, Any]:
        """Every submission finally accepted: decided once, referred once when consenting (the
        referral record, the association's and the person's e-mail, each one delivery)."""
        began = time.monotonic()
        accepted = {a.reference: self.consents(i) for i, a in self.last.items() if a.reference}
        found = decided(bootstrap, accepted, within_s)
        sharing = [ref for ref, consents in accepted.items() if consents]
        addresses = {a.reference: self.email(i) for i, a in self.last.items() if a.reference}
        delivered = outcome(bootstrap, sharing, smtp, None, within_s, addresses)
        return {
            "accepted_in_the_end": len(accepted),
            "not_accepted_in_the_end": len(self.refused()),
            "lost": len(found.lost),
            "several_decisions": len(found.several),
            "wrong_referrals": len(found.wrong_referrals),
            "raw_duplicate_decision_records": found.raw_duplicates,
            "referred_missing": len(delivered.missing(sharing)),
            "doubled": delivered.doubled(sharing),
            **delivered.repeated(sharing),
            "verified_in_s": round(time.monotonic() - began, 1),
        }


def assert_nothing_lost_nor_doubled(figures: dict[str, Any]) -> None:
    assert figures["not_accepted_in_the_end"] == 0, figures
    assert figures["lost"] == 0 and figures["referred_missing"] == 0, figures
    assert figures["several_decisions"] == 0 and figures["wrong_referrals"] == 0, figures
    assert set(figures["doubled"].values()) == {0}, figures


#: A connection the client saw broken under load: a kept-alive connection the server closed just
#: as a request went out. No answer, which the person's browser sends again (same key).
BROKEN_CONNECTION = {"ReadError", "RemoteProtocolError"}


def assert_only_accepted_or_refused(answers: list[Posted]) -> None:
    """Intake answered `202`, or `503` with `Retry-After`: never a `500`, a `4xx`, or nothing
    within a minute."""
    wrong = [a for a in answers if a.status not in (202, 503) and a.error not in BROKEN_CONNECTION]
    assert not wrong, Counter(a.error or a.status for a in wrong)
    assert all(a.retry_after for a in answers if a.status == 503)


def statuses(answers: list[Posted]) -> dict[str, int]:
    """How many answers of each status; no answer at all is counted under its error's name."""
    return dict(sorted(Counter(a.error or str(a.status) for a in answers).items()))


class Faults(threading.Thread):
    """A test's faults, run beside its load: `schedule(moments)` notes its moments (monotonic)
    in `moments`; `finish()` waits for it and raises, in the test's thread, what it raised."""

    def __init__(self, schedule: Callable[[dict[str, float]], None]) -> None:
        super().__init__(daemon=True)
        self.schedule = schedule
        self.moments: dict[str, float] = {}
        self.failure: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.schedule(self.moments)
        except BaseException as error:  # raised again by finish()
            self.failure = error

    def finish(self) -> dict[str, float]:
        self.join()
        if self.failure is not None:
            raise self.failure
        return self.moments


def leaders_moved_off(kafka: LocalKafka, node_id: int, since: float, within_s: float = 60) -> float:
    """Seconds from `since` until no partition of `questionnaires.completed` is led by `node_id`."""
    while node_id in kafka.leaders(QUESTIONNAIRES.name).values():
        if time.monotonic() - since > within_s:
            raise TimeoutError(f"node {node_id} still leads after {within_s} s")
        time.sleep(0.25)
    return round(time.monotonic() - since, 1)


def test_the_leader_sigkilled_under_2000_submissions_loses_and_doubles_nothing(
    kafka_cluster: LocalKafka, pipeline: dict[str, RunningService], mail: MailSink
) -> None:
    """SIGKILL of the node leading most of questionnaires.completed's partitions while 2,000
    submissions are posted: every 202 (and every 503 posted again with its key) is decided and
    referred exactly once; the 503s stop within seconds, once the leaders moved."""
    mail.clear()
    rate, count, kill_after_s = 25.0, 2000, 20.0
    leaders = kafka_cluster.leaders(QUESTIONNAIRES.name)
    victim = Counter(leaders.values()).most_common(1)[0][0]
    load = Load(pipeline["intake"].url)

    def kill(moments: dict[str, float]) -> None:
        time.sleep(kill_after_s)
        moments["killed"] = time.monotonic()
        kafka_cluster.stop_node(victim, kill=True)
        moments["leaders_moved_s"] = leaders_moved_off(kafka_cluster, victim, moments["killed"])

    killer = Faults(kill)
    posted = load.post(range(count), rate)
    moments = killer.finish()
    killed = moments["killed"]
    refused = [a for a in posted if a.status != 202]
    written_anyway = load.written_although_refused(kafka_cluster.layout.plaintext_bootstrap)
    posted_again = load.post_refused_again()
    figures = {
        "posted": len(posted),
        "rate_per_s": rate,
        "killed_node": victim,
        "leaders_before": leaders,
        "leaders_moved_after_s": moments["leaders_moved_s"],
        "first_answers": statuses(posted),
        "refused_with_retry_after": sum(1 for a in refused if a.retry_after),
        "refused_before_kill": sum(1 for a in refused if a.at < killed),
        "refused_first_30_s_after": sum(1 for a in refused if killed <= a.at < killed + 30),
        "refused_later": sum(1 for a in refused if a.at >= killed + 30),
        "written_although_refused": written_anyway,
        "posted_again": posted_again,
        "latency_before_kill": latency_figures(a for a in posted if a.at < killed),
        "latency_first_30_s_after": latency_figures(
            a for a in posted if killed <= a.at < killed + 30 and a.status == 202
        ),
        "latency_after": latency_figures(a for a in posted if a.at >= killed + 30),
        **load.verify(kafka_cluster.layout.plaintext_bootstrap, mail),
    }
    started = time.monotonic()
    kafka_cluster.start_node(victim)
    figures["restarted_node_in_sync_s"] = round(
        time.monotonic() - started + kafka_cluster.wait_in_sync(), 1
    )
    record_figures("cluster_leader_kill", figures)

    assert_only_accepted_or_refused(posted)
    assert figures["leaders_moved_after_s"] < 30, figures
    assert_nothing_lost_nor_doubled(figures)


def test_below_min_insync_replicas_intake_refuses_then_the_flow_resumes_whole(
    kafka_cluster: LocalKafka, pipeline: dict[str, RunningService], mail: MailSink
) -> None:
    """One node SIGKILLed, then a second: with one left (below min.insync.replicas) every
    submission is answered 503 with Retry-After and none is accepted; both nodes back, the flow
    resumes, and every accepted or re-posted submission is decided and referred exactly once."""
    mail.clear()
    rate, hold_s = 10.0, 20.0
    first, second = (n.node_id for n in kafka_cluster.layout.nodes[:2])
    load = Load(pipeline["intake"].url)

    def faults(moments: dict[str, float]) -> None:
        time.sleep(5)
        moments["first_killed"] = time.monotonic()
        kafka_cluster.stop_node(first, kill=True)
        leaders_moved_off(kafka_cluster, first, moments["first_killed"])
        time.sleep(5)
        moments["second_killed"] = time.monotonic()
        kafka_cluster.stop_node(second, kill=True)
        time.sleep(hold_s)
        moments["restarting"] = time.monotonic()
        restarts = [
            threading.Thread(target=kafka_cluster.start_node, args=(node,))
            for node in (first, second)
        ]
        for thread in restarts:
            thread.start()
        for thread in restarts:
            thread.join()
        moments["nodes_back"] = time.monotonic()
        kafka_cluster.wait_in_sync()
        moments["in_sync"] = time.monotonic()

    with Readiness({"intake": pipeline["intake"].url}) as readiness:
        runner = Faults(faults)
        load.post(range(0, int(rate * 90)), rate)
        moments = runner.finish()
        after = load.post(range(10_000, 10_000 + int(rate * 15)), rate)  # the flow resumes
    one_left = [
        a
        for a in load.first.values()
        if moments["second_killed"] + 1 <= a.at < moments["restarting"]
    ]
    written_anyway = load.written_although_refused(kafka_cluster.layout.plaintext_bootstrap)
    posted_again = load.post_refused_again()
    figures = {
        "posted": len(load.first),
        "rate_per_s": rate,
        "killed_nodes": [first, second],
        "one_node_left_s": round(moments["restarting"] - moments["second_killed"], 1),
        "answers_with_one_node_left": statuses(one_left),
        "retry_after_with_one_node_left": sorted({a.retry_after or "" for a in one_left}),
        "latency_of_503_with_one_node_left": latency_figures(one_left),
        "intake_readyz_with_one_node_left": dict(
            Counter(
                readiness.between("intake", moments["second_killed"] + 1, moments["restarting"])
            )
        ),
        "nodes_back_after_s": round(moments["nodes_back"] - moments["restarting"], 1),
        "in_sync_after_s": round(moments["in_sync"] - moments["restarting"], 1),
        "answers_after_recovery": statuses(after),
        "all_first_answers": statuses(list(load.first.values())),
        "written_although_refused": written_anyway,
        "posted_again": posted_again,
        **load.verify(kafka_cluster.layout.plaintext_bootstrap, mail),
    }
    record_figures("cluster_below_min_isr", figures)

    assert one_left and figures["answers_with_one_node_left"] == {"503": len(one_left)}, figures
    assert figures["retry_after_with_one_node_left"] == ["10"], figures
    assert figures["answers_after_recovery"] == {"202": len(after)}, figures
    assert_only_accepted_or_refused(list(load.first.values()))
    assert_nothing_lost_nor_doubled(figures)


def test_a_rolling_restart_under_20_per_second_loses_and_doubles_nothing(
    kafka_cluster: LocalKafka, pipeline: dict[str, RunningService], mail: MailSink
) -> None:
    """Each node in turn stopped (SIGTERM: a controlled shutdown moves its leaderships first),
    started again and caught up, under a steady 20 submissions/s: nothing lost or doubled;
    the latency while a node is down beside the latency of the whole cluster."""
    mail.clear()
    rate = 20.0
    load = Load(pipeline["intake"].url)
    restarts: list[dict[str, float]] = []

    def roll(moments: dict[str, float]) -> None:
        time.sleep(10)
        for node in kafka_cluster.layout.nodes:
            began = time.monotonic()
            kafka_cluster.stop_node(node.node_id)
            stopped = time.monotonic()
            kafka_cluster.start_node(node.node_id)
            started = time.monotonic()
            kafka_cluster.wait_in_sync()
            restarts.append(
                {"node": node.node_id, "from": began, "stop_s": stopped - began,
                 "start_s": started - stopped, "in_sync_at": time.monotonic()}
            )  # fmt: skip
            time.sleep(5)
        moments["done"] = time.monotonic()

    runner = Faults(roll)
    posted = load.post(range(0, int(rate * 150)), rate)
    moments = runner.finish()
    if moments["done"] > posted[-1].at:  # the roll outlasted the load: a little more after it
        posted += load.post(range(10_000, 10_000 + int(rate * 10)), rate)

    def restarting(answer: Posted) -> bool:
        return any(r["from"] <= answer.at < r["in_sync_at"] for r in restarts)

    written_anyway = load.written_although_refused(kafka_cluster.layout.plaintext_bootstrap)
    posted_again = load.post_refused_again()
    figures = {
        "posted": len(posted),
        "rate_per_s": rate,
        "restarts": [
            {
                "node": int(r["node"]),
                "stop_s": round(r["stop_s"], 1),
                "start_s": round(r["start_s"], 1),
                "until_in_sync_s": round(r["in_sync_at"] - r["from"], 1),
            }
            for r in restarts
        ],
        "first_answers": statuses(posted),
        "latency_all": latency_figures(posted),
        "latency_while_a_node_restarts": latency_figures(a for a in posted if restarting(a)),
        "latency_whole_cluster": latency_figures(a for a in posted if not restarting(a)),
        "written_although_refused": written_anyway,
        "posted_again": posted_again,
        **load.verify(kafka_cluster.layout.plaintext_bootstrap, mail),
    }
    record_figures("cluster_rolling_restart", figures)

    assert len(restarts) == 3, figures
    assert_only_accepted_or_refused(posted)
    assert_nothing_lost_nor_doubled(figures)
