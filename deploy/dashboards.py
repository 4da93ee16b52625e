"""Grafana dashboards: one per service and one for the whole pipeline, on the series the services
export (docs/operations.md, "Metrics"), written to deploy/k8s/monitoring/dashboards/*.json.

    python deploy/validate.py --generate    # writes them, with the Strimzi resources

They are made here rather than edited as JSON so that the four service dashboards stay one
design (a panel added is added to each), and `tests/deploy` checks every query in them names a
series the services' code registers. Grafana loads them from the ConfigMap that
deploy/k8s/monitoring makes of the folder (the dashboard sidecar's `grafana_dashboard` label).
"""

from __future__ import annotations

import json
from typing import Any

SERVICES = ("intake", "router", "notifier", "events")
RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def panel(
    title: str, unit: str, *queries: tuple[str, str], kind: str = "timeseries"
) -> dict[str, Any]:
    """A panel of `kind` showing each (PromQL, legend) of `queries`, in `unit`."""
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"]}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (expr, legend) in enumerate(queries)
        ],
    }


def dashboard(
    uid: str, title: str, description: str, rows: list[list[dict[str, Any]]]
) -> dict[str, Any]:
    """A dashboard whose panels sit in `rows`, each row's panels sharing its width."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        width = 24 // len(row)
        for x, item in enumerate(row):
            panels.append(
                {
                    **item,
                    "id": len(panels) + 1,
                    "gridPos": {"x": x * width, "y": y, "w": width, "h": 8},
                }
            )
        y += 8
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["rebond"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                }
            ]
        },
        "panels": panels,
    }


def per_second(series: str, selector: str, by: str) -> str:
    """`sum by (<by>) (rate(<series>{<selector>}[…]))`: a counter's rate per label."""
    return f"sum by ({by}) (rate({series}{{{selector}}}[{RATE}]))"


def p95(histogram: str, selector: str, by: str) -> str:
    """The 95th percentile of a histogram per label."""
    return f"histogram_quantile(0.95, sum by (le, {by}) (rate({histogram}_bucket{{{selector}}}[{RATE}])))"


def _kafka_rows(service: str) -> list[list[dict[str, Any]]]:
    """What every service shows of its Kafka side (FastStream's series carry `app_name`)."""
    app = f'app_name="rebond-{service}"'
    job = f'job="rebond-{service}"'
    return [
        [
            panel("Records consumed / s, by topic", "ops",
                  (per_second("faststream_received_messages_total", app, "handler"), "{{handler}}")),
            panel("Records handled / s, by outcome", "ops",
                  (per_second("faststream_received_processed_messages_total", app, "status"), "{{status}}")),
            panel("Handling time, 95th percentile, by topic", "s",
                  (p95("faststream_received_processed_messages_duration_seconds", app, "handler"), "{{handler}}")),
        ],
        [
            panel("Records published / s, by topic and outcome", "ops",
                  (per_second("faststream_published_messages_total", app, "destination, status"), "{{destination}} {{status}}")),
            panel("Consumer lag, by topic", "short",
                  (f"sum by (topic) (rebond_consumer_lag{{{job}}})", "{{topic}}")),
            panel("Records failed (read again) and dead-lettered, by topic", "short",
                  (f"sum by (topic) (increase(rebond_messages_failed_total{{{job}}}[{RATE}]))", "failed {{topic}}"),
                  (f"sum by (topic) (increase(rebond_messages_dead_lettered_total{{{job}}}[{RATE}]))", "dead-lettered {{topic}}")),
        ],
    ]  # fmt: skip


def _http_row(service: str) -> list[dict[str, Any]]:
    job = f'job="rebond-{service}"'
    return [
        panel("HTTP requests / s, by route and status", "reqps",
              (per_second("rebond_http_requests_total", job, "route, status"), "{{route}} {{status}}")),
        panel("HTTP latency, 95th percentile, by route", "s",
              (p95("rebond_http_request_duration_seconds", job, "route"), "{{route}}")),
        panel("Share of HTTP answers in 5xx", "percentunit",
              (f'sum(rate(rebond_http_requests_total{{{job},status=~"5.."}}[{RATE}])) / sum(rate(rebond_http_requests_total{{{job}}}[{RATE}]))', "5xx")),
    ]  # fmt: skip


#: Panels both a service's dashboard and the pipeline's show.
SUBMISSIONS = panel(
    "Submissions / s, by answer", "reqps",
    (f'sum by (status) (rate(rebond_http_requests_total{{job="rebond-intake",route="/v1/submissions",method="POST"}}[{RATE}]))', "{{status}}"),
)  # fmt: skip
DECISIONS = panel(
    "Decisions / s, by association chosen", "ops",
    (f"sum by (association) (rate(rebond_router_decisions_total[{RATE}]))", "{{association}}"),
)  # fmt: skip

#: Each service's own series, beside the shared ones.
OWN: dict[str, list[dict[str, Any]]] = {
    "intake": [
        SUBMISSIONS,
        panel("Erasure requests / s, by answer", "reqps",
              (f'sum by (status) (rate(rebond_http_requests_total{{job="rebond-intake",route="/v1/submissions/{{reference}}/erasure"}}[{RATE}]))', "{{status}}")),
    ],
    "router": [
        DECISIONS,
        panel("Decisions / s, by rule-set version", "ops",
              (f"sum by (rule_set_version) (rate(rebond_router_decisions_total[{RATE}]))", "{{rule_set_version}}")),
    ],
    "notifier": [
        panel("Referrals published / s, by association", "ops",
              (f"sum by (association) (rate(rebond_notifier_referrals_published_total[{RATE}]))", "{{association}}")),
        panel("E-mails and webhooks / s, by channel and outcome", "ops",
              (f"sum by (channel, outcome) (rate(rebond_notifier_deliveries_total[{RATE}]))", "{{channel}} {{outcome}}")),
    ],
    "events": [
        panel("Registrations / s, by answer", "reqps",
              (f'sum by (status) (rate(rebond_http_requests_total{{job="rebond-events",route="/evenements/{{event_id}}/inscription"}}[{RATE}]))', "{{status}}")),
        panel("Organisers' API requests / s, by route", "reqps",
              (f'sum by (route) (rate(rebond_http_requests_total{{job="rebond-events",route=~"/v1/.*"}}[{RATE}]))', "{{route}}")),
    ],
}  # fmt: skip


def service_dashboard(service: str) -> dict[str, Any]:
    return dashboard(
        f"rebond-{service}",
        f"Rebond / {service}",
        f"rebond-{service}: its own series, its HTTP side and its Kafka side (docs/operations.md).",
        [OWN[service], _http_row(service), *_kafka_rows(service)],
    )


def _range(expr: str) -> str:
    return expr.replace(RATE, "$__range")


ANSWERS = 'handler=~"responses\\\\..+"'


def pipeline_dashboard() -> dict[str, Any]:
    """The flow end to end: what came in, what was decided, what reached each association, what
    came back, and where it waits or fails."""
    submissions = f'sum(increase(rebond_http_requests_total{{job="rebond-intake",route="/v1/submissions",method="POST",status="202"}}[{RATE}]))'
    decisions = f"sum(increase(rebond_router_decisions_total[{RATE}]))"
    referrals = f"sum(increase(rebond_notifier_referrals_published_total[{RATE}]))"
    answers = f'sum(increase(faststream_received_messages_total{{app_name="rebond-router",{ANSWERS}}}[{RATE}]))'
    dead = f"sum(increase(rebond_messages_dead_lettered_total[{RATE}]))"
    return dashboard(
        "rebond-pipeline",
        "Rebond / pipeline",
        "Submissions, decisions, referrals per association, answers, lag, errors and dead letters.",
        [
            [
                panel("Submissions accepted", "short", (_range(submissions), "accepted"), kind="stat"),
                panel("Decisions", "short", (_range(decisions), "decisions"), kind="stat"),
                panel("Referrals sent", "short", (_range(referrals), "referrals"), kind="stat"),
                panel("Answers from associations", "short", (_range(answers), "answers"), kind="stat"),
                panel("Dead letters", "short", (_range(dead), "dead letters"), kind="stat"),
            ],
            [
                SUBMISSIONS,
                DECISIONS,
            ],
            [
                panel("Referrals per association", "short",
                      (f"sum by (association) (increase(rebond_notifier_referrals_published_total[{RATE}]))", "{{association}}")),
                panel("Answers per association (responses.<id>, as the router reads them)", "short",
                      (f'sum by (handler) (increase(faststream_received_messages_total{{app_name="rebond-router",{ANSWERS}}}[{RATE}]))', "{{handler}}")),
                panel("People no association holds (referrals.unrouted)", "short",
                      (f'sum(increase(faststream_published_messages_total{{destination="referrals.unrouted",status="success"}}[{RATE}]))', "unrouted")),
            ],
            [
                panel("Consumer lag, by group", "short",
                      ("sum by (group) (rebond_consumer_lag)", "{{group}}")),
                panel("Errors / s: records failed, HTTP 5xx, by service", "ops",
                      (f"sum by (job) (rate(rebond_messages_failed_total[{RATE}]))", "failed {{job}}"),
                      (f'sum by (job) (rate(rebond_http_requests_total{{status=~"5.."}}[{RATE}]))', "5xx {{job}}")),
                panel("Dead letters, by service and topic", "short",
                      (f"sum by (job, topic) (increase(rebond_messages_dead_lettered_total[{RATE}]))", "{{job}} {{topic}}"),
                      (f'sum by (channel) (increase(rebond_notifier_deliveries_total{{outcome="dead_lettered"}}[{RATE}]))', "deliveries {{channel}}")),
            ],
        ],
    )  # fmt: skip


def all_dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard, for every dashboard."""
    return {
        "rebond-pipeline.json": pipeline_dashboard(),
        **{f"rebond-{s}.json": service_dashboard(s) for s in SERVICES},
    }


def text(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"
