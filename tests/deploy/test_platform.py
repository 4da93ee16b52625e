"""The prod overlay's platform: Kafka topics and users as the registry says, each service on its own
database, the public edge and the console's, the network paths, and dashboards on real series."""

import copy
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import promql_parser
import pytest
import yaml

from deploy import dashboards, validate
from rebond_contracts.topics import all_topics
from rebond_kafka.acl_plan import Grant, acl_plan, principals
from rebond_kafka.provision import settings_from

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "router", "notifier", "events")
#: Every deployed service: the four above and the staff console (no KEDA, no dashboard).
DEPLOYED = (*SERVICES, "coordination")


@pytest.fixture(scope="module")
def prod() -> dict[str, dict[str, dict[str, Any]]]:
    """The rendered prod overlay, by kind then name."""
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for resource in validate.render(REPO / "deploy" / "k8s" / "overlays" / "prod"):
        by_kind.setdefault(resource["kind"], {})[resource["metadata"]["name"]] = resource
    return by_kind


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- Kafka by Strimzi ------------------------------------------------------------------------


def test_committed_strimzi_resources_and_dashboards_are_what_the_generators_make() -> None:
    """kafka/topics.yaml, kafka/users.yaml and the dashboards equal a fresh generation."""
    assert validate.stale_generated() == []


def test_a_registry_change_not_generated_again_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated file that no longer matches what the registry makes fails validation."""
    stale = tmp_path / "topics.yaml"
    stale.write_text("# topics from before a registry change\n")
    monkeypatch.setattr(validate, "GENERATED", {stale: lambda: "# what the registry says now\n"})
    assert len(validate.stale_generated()) == 1


def test_every_registry_topic_is_a_kafka_topic_as_registered(prod: dict[str, Any]) -> None:
    """One KafkaTopic per registry topic and no other, with its partitions and retention,
    replicated so that one broker may be down without refusing a write."""
    topics = prod["KafkaTopic"]
    assert set(topics) == {t.name for t in all_topics()}
    for topic in all_topics():
        spec = topics[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions
        assert spec["config"].get("retention.ms") == topic.retention_ms
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
        assert topics[topic.name]["metadata"]["labels"]["strimzi.io/cluster"] == "rebond"


def test_compose_holds_the_topics_and_kafkas_own_as_the_prod_overlay_does(
    prod: dict[str, Any],
) -> None:
    """The compose stack's provisioning gives every topic the prod overlay's replicas and
    min.insync.replicas, on as many brokers, and its brokers replicate Kafka's own topics (and
    default new ones) as the prod cluster does."""
    compose = yaml.safe_load((REPO / "deploy" / "compose" / "compose.yaml").read_text())
    brokers = [s for name, s in compose["services"].items() if name.startswith("kafka-")]
    planned = settings_from(compose["services"]["topics"]["command"]).durability(len(brokers))
    assert len(brokers) == sum(p["spec"]["replicas"] for p in prod["KafkaNodePool"].values())
    for topic in prod["KafkaTopic"].values():
        spec = topic["spec"]
        assert (spec["replicas"], spec["config"]["min.insync.replicas"]) == (
            planned.replicas,
            planned.min_insync_replicas,
        )
    replication = {
        key: str(value)
        for key, value in prod["Kafka"]["rebond"]["spec"]["kafka"]["config"].items()
        if "replication" in key or "min.i" in key
    }
    assert {"default.replication.factor", "min.insync.replicas"} <= set(replication)
    for broker in brokers:
        given = {
            name.removeprefix("KAFKA_").lower().replace("_", "."): str(value)
            for name, value in broker["environment"].items()
        }
        assert {key: given.get(key) for key in replication} == replication


def test_every_principal_is_a_kafka_user_with_exactly_its_acl_plan(prod: dict[str, Any]) -> None:
    """Each KafkaUser's ACLs, read back as grants, are exactly the registry's ACL plan for that
    principal: the cluster allows what the local broker allows, nothing more or less."""
    users = prod["KafkaUser"]
    assert set(users) == set(principals())
    patterns = {"literal": "literal", "prefix": "prefixed"}
    granted = {
        Grant(name, acl["resource"]["type"], acl["resource"]["name"],
              patterns[acl["resource"]["patternType"]], operation.lower())
        for name, user in users.items()
        for acl in user["spec"]["authorization"]["acls"]
        if acl["type"] == "allow"
        for operation in acl["operations"]
    }  # fmt: skip
    assert granted == set(acl_plan())
    for user in users.values():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}


def test_the_kafka_cluster_is_kraft_three_nodes_scram_over_tls_with_acls(
    prod: dict[str, Any],
) -> None:
    """Three nodes that are controllers and brokers; every listener TLS with SCRAM; ACLs on."""
    kafka = prod["Kafka"]["rebond"]["spec"]
    pools = list(prod["KafkaNodePool"].values())
    assert sum(p["spec"]["replicas"] for p in pools) == 3
    assert all(set(p["spec"]["roles"]) == {"controller", "broker"} for p in pools)
    for listener in kafka["kafka"]["listeners"]:
        assert listener["tls"] is True
        assert listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["kafka"]["authorization"]["type"] == "simple"
    assert {"topicOperator", "userOperator"} <= set(kafka["entityOperator"])


def test_each_service_logs_in_to_kafka_as_its_own_user_over_tls(prod: dict[str, Any]) -> None:
    """A service's SASL user is its KafkaUser, its password that user's Secret."""
    for service in DEPLOYED:
        env = _env(prod["Deployment"][f"rebond-{service}"])
        prefix = service.upper()
        assert env[f"{prefix}_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env[f"{prefix}_KAFKA_SASL_USERNAME"] == service in prod["KafkaUser"]
        assert env[f"{prefix}_KAFKA_SASL_PASSWORD"]["secretKeyRef"]["name"] == service
    config = prod["ConfigMap"]["rebond-config"]["data"]
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "rebond-kafka-bootstrap:9093"


def test_keda_reads_the_lag_as_each_service_reads_kafka(prod: dict[str, Any]) -> None:
    """Each KEDA trigger speaks SCRAM-SHA-512 over TLS on the services' listener, with a
    TriggerAuthentication giving the very username, password Secret and CA its service uses:
    without them it could not read the lag of a listener that requires SCRAM and TLS."""
    for name, scaled_object in prod["ScaledObject"].items():
        service = name.removeprefix("rebond-")
        prefix = service.upper()
        [trigger] = scaled_object["spec"]["triggers"]
        metadata = trigger["metadata"]
        assert (metadata["sasl"], metadata["tls"]) == ("scram_sha512", "enable")
        assert metadata["bootstrapServers"].endswith(":9093")
        auth = prod["TriggerAuthentication"][trigger["authenticationRef"]["name"]]["spec"]
        [username] = auth["env"]
        assert (username["parameter"], username["name"]) == (
            "username",
            f"{prefix}_KAFKA_SASL_USERNAME",
        )
        secrets = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["secretTargetRef"]}
        deployment = prod["Deployment"][name]
        password = _env(deployment)[f"{prefix}_KAFKA_SASL_PASSWORD"]["secretKeyRef"]
        assert secrets["password"] == (password["name"], password["key"])
        [ca] = [
            v["secret"] for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v["name"] == "kafka-ca"
        ]  # fmt: skip
        assert secrets["ca"] == (ca["secretName"], ca["items"][0]["key"])


#: What an operator puts in the Secrets rebond-<service>-secrets.
OPERATOR_SECRETS = {
    "INTAKE_ERASURE_KEY": "k" * 40, "NOTIFIER_LINK_SECRET": "l" * 40,
    "EVENTS_SIGNING_SECRET": "s" * 40,
    "EVENTS_ORGANISER_KEYS": '{"apesa": "sha256:' + "0" * 64 + '"}',
    "COORDINATION_EVENTS_ORGANISER_KEYS": '{"apesa": "' + "o" * 40 + '"}',
    "COORDINATION_ROUTER_PREVIEW_TOKEN": "p" * 40, "ROUTER_PREVIEW_TOKEN": "p" * 40,
}  # fmt: skip


@pytest.mark.parametrize("service", DEPLOYED)
def test_each_service_starts_in_production_with_the_overlays_settings(
    service: str,
    prod: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    settings_classes: dict[str, type[Any]],
) -> None:
    """The overlay's ConfigMap and the Deployment's environment (Secrets references filled in,
    with the operator's own secrets) pass the service's production checks: Kafka SASL_SSL with
    SCRAM, and for the notifier SMTP over TLS."""
    for name in list(os.environ):
        if name.split("_", 1)[0] in (*(s.upper() for s in DEPLOYED), "KAFKA"):
            monkeypatch.delenv(name)
    env = {
        name: value if isinstance(value, str) else "from-a-secret-" + "x" * 32
        for name, value in _env(prod["Deployment"][f"rebond-{service}"]).items()
    }
    for name, value in {
        **prod["ConfigMap"]["rebond-config"]["data"],
        **env,
        **OPERATOR_SECRETS,
    }.items():
        monkeypatch.setenv(name, value)
    started = settings_classes[service]()
    assert started.environment == "production" and started.kafka_security_protocol == "SASL_SSL"


# --- PostgreSQL by CloudNativePG -------------------------------------------------------------


def test_each_service_uses_its_own_backed_up_postgresql_cluster(prod: dict[str, Any]) -> None:
    """Every store is a CloudNativePG Cluster archiving to the overlay's object store with a
    nightly backup, and each service's URL names its own cluster, password and CA, over TLS."""
    stores = prod["ObjectStore"]
    for store in DEPLOYED:
        cluster = prod["Cluster"][f"rebond-{store}-db"]["spec"]
        archiver = next(p for p in cluster["plugins"] if p.get("isWALArchiver"))
        assert archiver["parameters"]["barmanObjectName"] in stores
        assert prod["ScheduledBackup"][f"rebond-{store}-db"]["spec"]["cluster"]["name"] == (
            f"rebond-{store}-db"
        )
    for store in stores.values():
        assert urlsplit(store["spec"]["configuration"]["destinationPath"]).scheme == "s3"
    for service in DEPLOYED:
        env = _env(prod["Deployment"][f"rebond-{service}"])
        url = urlsplit(env[f"{service.upper()}_DATABASE_URL"])
        assert url.scheme == "postgresql+psycopg"
        assert url.hostname == f"rebond-{service}-db-rw"
        assert "sslmode=verify-full" in url.query
        assert env["DB_PASSWORD"]["secretKeyRef"]["name"] == f"rebond-{service}-db-app"


def test_events_migrates_before_its_new_version_serves(prod: dict[str, Any]) -> None:
    """An init container applies the events migrations; the service itself no longer does."""
    spec = prod["Deployment"]["rebond-events"]["spec"]["template"]["spec"]
    migrate = next(c for c in spec["initContainers"] if c["name"] == "migrate")
    assert migrate["command"] == ["python", "-m", "rebond_events", "migrate"]
    assert migrate["image"] == spec["containers"][0]["image"]
    assert _env(prod["Deployment"]["rebond-events"])["EVENTS_MIGRATE_ON_START"] == "false"


# --- The edge ---------------------------------------------------------------------------------


def _routes(ingress: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (rule["host"], path["path"], path["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def test_the_console_runs_one_outbox_relay_at_a_time(prod: dict[str, Any]) -> None:
    """The console is one replica, stopped before its next version starts, and nothing scales
    it: its outbox is relayed in order by one process (base/coordination.yaml)."""
    spec = prod["Deployment"]["rebond-coordination"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    scalers = {*prod["ScaledObject"], *prod.get("HorizontalPodAutoscaler", {})}
    assert "rebond-coordination" not in scalers


def test_every_host_has_tls_from_an_issuer_of_the_overlay(prod: dict[str, Any]) -> None:
    """Each Ingress asks cert-manager for a certificate of every host it serves, from an
    Issuer that exists in the overlay."""
    for ingress in prod["Ingress"].values():
        issuer = ingress["metadata"]["annotations"]["cert-manager.io/issuer"]
        assert issuer in prod["Issuer"]
        tls_hosts = {h for entry in ingress["spec"]["tls"] for h in entry["hosts"]}
        assert {rule["host"] for rule in ingress["spec"]["rules"]} == tls_hosts


def test_public_hosts_serve_only_public_pages_and_the_console_has_its_own(
    prod: dict[str, Any],
) -> None:
    """The public Ingress routes the portal, events and answer links, never the console, nor
    /metrics; the console's host is on an Ingress of its own, to the authenticating proxy."""
    public = _routes(prod["Ingress"]["rebond-public"])
    assert {backend for _, _, backend in public} == {
        "rebond-intake", "rebond-events", "rebond-notifier",
    }  # fmt: skip
    assert not [p for _, p, _ in public if p.startswith(("/metrics", "/healthz", "/readyz"))]
    console = _routes(prod["Ingress"]["rebond-console"])
    assert {backend for _, _, backend in console} == {"rebond-console-proxy"}
    assert not {h for h, _, _ in console} & {h for h, _, _ in public}
    proxy = prod["Deployment"]["rebond-console-proxy"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in proxy["containers"][0]["env"]}
    assert env["OAUTH2_PROXY_UPSTREAMS"].startswith("http://rebond-coordination:8004")
    # Coordinators, and the associations' members and organisers (issue 22): all staff roles.
    assert set(env["OAUTH2_PROXY_ALLOWED_GROUPS"].split(",")) == {
        "rebond-coordinators", "rebond-association-members", "rebond-organisers",
    }  # fmt: skip


def test_links_in_e_mails_name_hosts_the_ingress_serves(prod: dict[str, Any]) -> None:
    """The notifier's answer links, the events links and intake's link to the stories point
    at hosts served over TLS."""
    config = prod["ConfigMap"]["rebond-config"]["data"]
    served = {
        (host, backend)
        for ingress in prod["Ingress"].values()
        for host, _, backend in _routes(ingress)
    }
    for setting, service in (
        ("NOTIFIER_PUBLIC_BASE_URL", "rebond-notifier"),
        ("EVENTS_PUBLIC_BASE_URL", "rebond-events"),
        ("INTAKE_STORIES_URL", "rebond-events"),
    ):
        url = urlsplit(config[setting])
        assert url.scheme == "https" and (url.hostname, service) in served


def test_intake_events_and_the_console_trust_their_proxy(prod: dict[str, Any]) -> None:
    """Both services behind the Ingress, and the console behind its authenticating proxy (its
    sign-in limit), are told which peers may set X-Forwarded-For."""
    config = prod["ConfigMap"]["rebond-config"]["data"]
    assert config["INTAKE_TRUSTED_PROXIES"] and config["EVENTS_TRUSTED_PROXIES"]
    assert config["COORDINATION_TRUSTED_PROXIES"]


# --- NetworkPolicies --------------------------------------------------------------------------


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(
        labels.get(e["key"]) in e["values"]
        for e in selector.get("matchExpressions", [])
        if e["operator"] == "In"
    )


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def test_everything_is_denied_unless_a_policy_allows_it(prod: dict[str, Any]) -> None:
    """Ingress is denied to every pod of the namespace, egress to every Rebond pod but DNS."""
    deny_in = prod["NetworkPolicy"]["default-deny-ingress"]["spec"]
    assert deny_in == {"podSelector": {}, "policyTypes": ["Ingress"]}
    deny_out = prod["NetworkPolicy"]["default-deny-egress"]
    for deployment in prod["Deployment"].values():
        assert _selects(deny_out, _pod_labels(deployment))
    assert [p["port"] for rule in deny_out["spec"]["egress"] for p in rule["ports"]] == [53, 53]


def _peers(policy: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    key = "from" if direction == "ingress" else "to"
    return [peer for rule in policy["spec"].get(direction, []) for peer in rule.get(key, [])]


def _scraped(prod: dict[str, Any], app: str) -> list[str]:
    """The container ports the PodMonitors scrape on the pods named `app`."""
    return [
        endpoint["port"]
        for monitor in prod["PodMonitor"].values()
        if app in str(monitor["spec"]["selector"])
        for endpoint in monitor["spec"]["podMetricsEndpoints"]
    ]


@pytest.mark.parametrize(
    ("service", "peer"),
    [("router", "rebond-coordination"), ("coordination", "rebond-console-proxy")],
)
def test_a_staff_side_service_is_reached_only_by_its_peer_and_prometheus(
    prod: dict[str, Any], service: str, peer: str
) -> None:
    """The router's HTTP port (its internal preview endpoint) admits the coordination console's
    pods only, the console's its authenticating proxy's pods only; the operators' port of each
    (`<PREFIX>_INTERNAL_PORT`, `/metrics`, the one the PodMonitor scrapes) the monitoring
    namespace only."""
    container = prod["Deployment"][f"rebond-{service}"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[f"{service.upper()}_INTERNAL_PORT"] == str(ports["internal"])
    rules = [
        (rule["from"], [p["port"] for p in rule["ports"]])
        for rule in prod["NetworkPolicy"][f"rebond-{service}"]["spec"]["ingress"]
    ]
    assert rules == [
        ([{"podSelector": {"matchLabels": {"app.kubernetes.io/name": peer}}}], [ports["http"]]),
        (
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            [ports["internal"]],
        ),
    ]
    assert _scraped(prod, f"rebond-{service}") == ["internal"]


@pytest.mark.parametrize("service", ["intake", "events", "notifier"])
def test_public_pages_come_from_the_ingress_and_metrics_from_prometheus_only(
    prod: dict[str, Any], service: str
) -> None:
    """A service serving the public admits the ingress controller on its public port only, and
    Prometheus on its operators' port only: the port it serves /metrics on (its
    `<PREFIX>_INTERNAL_PORT`) and the one the PodMonitor scrapes."""
    deployment = prod["Deployment"][f"rebond-{service}"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[f"{service.upper()}_INTERNAL_PORT"] == str(ports["internal"])
    rules = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: [
            p["port"] for p in rule["ports"]
        ]
        for rule in prod["NetworkPolicy"][f"rebond-{service}"]["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    }
    assert rules == {"traefik": [ports["http"]], "monitoring": [ports["internal"]]}
    assert _scraped(prod, f"rebond-{service}") == ["internal"]


def test_each_service_reaches_kafka_and_its_own_database_only(prod: dict[str, Any]) -> None:
    """A service's egress names Kafka's brokers and its own CloudNativePG cluster, no other
    database; each database admits its own service alone."""
    clusters = set(prod["Cluster"])
    for service in DEPLOYED:
        peers = _peers(prod["NetworkPolicy"][f"rebond-{service}"], "egress")
        selected = [p["podSelector"]["matchLabels"] for p in peers if "podSelector" in p]
        databases = {s["cnpg.io/cluster"] for s in selected if "cnpg.io/cluster" in s}
        assert databases == {f"rebond-{service}-db"} and databases <= clusters
        assert {"strimzi.io/cluster": "rebond", "strimzi.io/kind": "Kafka"} in selected
        admits = _peers(prod["NetworkPolicy"][f"rebond-{service}-db"], "ingress")
        assert admits == [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": f"rebond-{service}"}}}
        ]


def test_only_the_notifier_reaches_the_internet_besides_the_console_proxy(
    prod: dict[str, Any],
) -> None:
    """An ipBlock (the outside world) appears only in the notifier's egress (SMTP relay,
    webhooks) and the console proxy's (identity provider); private ranges are excluded."""
    for name, policy in prod["NetworkPolicy"].items():
        blocks = [p["ipBlock"] for p in _peers(policy, "egress") if "ipBlock" in p]
        if name in ("rebond-notifier", "rebond-console-proxy"):
            assert blocks and all(b["except"] for b in blocks)
            assert "10.0.0.0/8" in blocks[0]["except"]
        else:
            assert blocks == [], name


def test_kafka_listener_admits_the_services_and_keda_only(prod: dict[str, Any]) -> None:
    """The in-cluster listener's Strimzi-made policy admits Rebond's services and KEDA."""
    listener = next(
        item
        for item in prod["Kafka"]["rebond"]["spec"]["kafka"]["listeners"]
        if item["type"] == "internal"
    )
    peers = listener["networkPolicyPeers"]
    names = peers[0]["podSelector"]["matchExpressions"][0]["values"]
    assert {f"rebond-{s}" for s in DEPLOYED} <= set(names)
    assert peers[1] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}
    }


# --- Dashboards and alerts --------------------------------------------------------------------


def exported_series() -> set[str]:
    """Every series name the services register on their /metrics (shared and their own),
    built by the services' own observability code."""
    from rebond_coordination.observability import Observability as Coordination
    from rebond_events.observability import Observability as Events
    from rebond_intake.observability import Observability as Intake
    from rebond_notifier.observability import Observability as Notifier
    from rebond_notifier.observability import count_referrals_and_deliveries
    from rebond_router.observability import Observability as Router
    from rebond_router.observability import count_decisions

    settings = SimpleNamespace(otel_enabled=False, otel_endpoint="")
    router, notifier = Router(settings), Notifier(settings)
    count_decisions(router)
    count_referrals_and_deliveries(notifier)
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
    }
    return {
        family.name + suffix
        for obs in (Intake(settings), router, notifier, Events(settings), Coordination(settings))
        for family in obs.registry.collect()
        for suffix in suffixes[family.type]
    }


#: Series from outside the services that the alerts use (kube-state-metrics).
EXTERNAL = {"kube_deployment_status_replicas_available", "kube_deployment_spec_replicas"}
_GRAFANA_VARIABLES = re.compile(r"\$__(rate_interval|range|interval)")


def series_in(expr: str) -> set[str]:
    """The series names a PromQL expression selects (Grafana's range variables as 5m)."""
    names: list[str] = []
    promql_parser.walk(
        promql_parser.parse(_GRAFANA_VARIABLES.sub("5m", expr)),
        lambda node: (
            names.append(node.name) if isinstance(node, promql_parser.VectorSelector) else None
        ),
    )
    return set(names)


def queries(prod: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard panel and every alert."""
    found = [
        (f"{name} / {panel['title']}", target["expr"])
        for name, board in dashboards.all_dashboards().items()
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    found += [
        (f"alert {rule['alert']}", rule["expr"])
        for rule_file in prod["PrometheusRule"].values()
        for group in rule_file["spec"]["groups"]
        for rule in group["rules"]
    ]
    return found


def test_every_dashboard_and_alert_query_names_a_series_the_services_export(
    prod: dict[str, Any],
) -> None:
    """Each PromQL of the dashboards and the PrometheusRule parses, and every series it selects
    is one the services' code registers (or kube-state-metrics' for the readiness alert)."""
    known = exported_series() | EXTERNAL
    unknown = {where: series_in(expr) - known for where, expr in queries(prod)}
    assert {where: names for where, names in unknown.items() if names} == {}
    assert len(queries(prod)) > 40


def test_an_urgent_case_waiting_over_an_hour_alerts(prod: dict[str, Any]) -> None:
    """Issue 21: an alert fires on the console's count of urgent cases waiting over an hour."""
    rules = {
        rule["alert"]: rule
        for rule_file in prod["PrometheusRule"].values()
        for group in rule_file["spec"]["groups"]
        for rule in group["rules"]
    }
    alert = rules["RebondUrgentCaseWaiting"]
    assert series_in(alert["expr"]) == {"rebond_coordination_urgent_waiting_over_hour"}
    assert alert["labels"]["severity"] == "critical"


def test_an_invented_series_is_caught() -> None:
    """The check is not a rubber stamp: a series no service exports is reported."""
    assert series_in(
        'sum(rate(rebond_submissions_total{job="rebond-intake"}[$__rate_interval]))'
    ) - (exported_series()) == {"rebond_submissions_total"}


def test_there_is_a_dashboard_per_service_and_one_for_the_pipeline(prod: dict[str, Any]) -> None:
    """Five dashboards, loaded by Grafana's sidecar from one ConfigMap; the pipeline's shows
    submissions, decisions, referrals per association, answers, lag, errors, dead letters."""
    boards = dashboards.all_dashboards()
    assert set(boards) == {f"rebond-{s}.json" for s in (*SERVICES, "pipeline")}
    config_map = prod["ConfigMap"]["rebond-dashboards"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(config_map["data"]) == set(boards)
    pipeline = " ".join(
        t["expr"] for p in boards["rebond-pipeline.json"]["panels"] for t in p["targets"]
    )
    for series in (
        "rebond_http_requests_total", "rebond_router_decisions_total",
        "rebond_notifier_referrals_published_total", "faststream_received_messages_total",
        "rebond_consumer_lag", "rebond_messages_failed_total", "rebond_messages_dead_lettered_total",
    ):  # fmt: skip
        assert series in pipeline


def test_strimzi_and_cloudnativepg_typos_are_refused(prod: dict[str, Any]) -> None:
    """The operators' resources are checked strictly too: an unknown field is an error."""
    kafka = copy.deepcopy(prod["Kafka"]["rebond"])
    kafka["spec"]["kafka"]["listeners"][0]["tlss"] = True
    cluster = copy.deepcopy(prod["Cluster"]["rebond-router-db"])
    cluster["spec"]["instancess"] = 3
    problems = validate.validate_resources([kafka, cluster])
    assert len(problems) == 2, problems
    assert "tlss" in " ".join(problems) and "instancess" in " ".join(problems)


def test_the_operations_guide_lists_every_topic_with_its_writer() -> None:
    """docs/operations.md's topic table has a row per registry topic (an association's or a
    service's topics as one row), naming its writer: a new topic cannot be left out."""
    text = (REPO / "docs" / "operations.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
        for line in text.splitlines()
        if line.startswith("| `")
    }
    for topic in all_topics():
        name = re.sub(
            r"^(referrals|responses)\.(?!status$|unrouted$|followups$).+$",
            r"\1.<association>",
            topic.name,
        )
        name = re.sub(r"^deadletter\..+$", "deadletter.<service>", name)
        assert name in rows, f"{topic.name} has no row in docs/operations.md"
        if not name.startswith("deadletter."):
            assert rows[name].startswith(topic.writer.value), (name, rows[name])


def test_the_readme_names_each_topics_writer_and_readers_as_the_registry_does() -> None:
    """The README's topic table says who writes and who reads each service topic as the
    registry does (whose readers the ACLs are made from): a reader added to the registry and
    not to the table, or the other way, fails here."""
    rows = {
        cells[1].strip().strip("`"): (cells[4].strip(), cells[5].strip())
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("| `") and len(cells := line.split("|")) >= 7
    }
    checked = 0
    for topic in all_topics():
        if topic.name not in rows or not topic.readers:
            continue  # an association's, a dead-letter topic, or one nobody reads (said in prose)
        writer, readers = rows[topic.name]
        assert writer == topic.writer.value, (topic.name, writer)
        assert set(readers.split(", ")) == {r.value for r in topic.readers}, (topic.name, readers)
        checked += 1
    assert checked >= 18  # every service topic read by someone, at the time of writing
