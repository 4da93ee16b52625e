"""Deployment manifests: each kustomize overlay and the compose file validate offline."""

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from deploy import validate

REPO = Path(__file__).resolve().parents[2]


OVERLAYS = sorted((REPO / "deploy" / "k8s" / "overlays").iterdir())


def _by_kind(resources: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for resource in resources:
        by_kind.setdefault(resource["kind"], {})[resource["metadata"]["name"]] = resource
    return by_kind


@pytest.fixture(scope="module", params=OVERLAYS, ids=lambda p: p.name)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return validate.render(request.param)  # type: ignore[no-any-return]


def test_overlay_renders_to_valid_kubernetes_and_operator_resources(
    rendered: list[dict[str, Any]],
) -> None:
    """Each overlay renders and every resource passes its strict schema: Kubernetes', or its
    operator's CRD (KEDA, Strimzi, CloudNativePG, cert-manager, Prometheus operator)."""
    assert validate.validate_resources(rendered) == []


def test_overlay_has_what_operators_need_per_service(rendered: list[dict[str, Any]]) -> None:
    """Every service has a Deployment with probes and limits, a Service and a PDB; consumers
    scale on their group's lag with KEDA, intake on CPU with an HPA."""
    by_kind = _by_kind(rendered)
    services = {f"rebond-{s}" for s in ("intake", "router", "notifier", "events")}
    assert services <= set(by_kind["Deployment"]) & set(by_kind["Service"])
    assert services <= set(by_kind["PodDisruptionBudget"])
    for deployment in (by_kind["Deployment"][name] for name in services):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"requests", "limits"} <= set(container["resources"])
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    scaled = by_kind["ScaledObject"]
    assert set(scaled) == services - {"rebond-intake"}
    for name, scaled_object in scaled.items():
        trigger = scaled_object["spec"]["triggers"][0]
        assert trigger["type"] == "kafka" and trigger["metadata"]["consumerGroup"] == name
    assert set(by_kind["HorizontalPodAutoscaler"]) == {"rebond-intake"}


def test_validation_rejects_a_broken_resource(rendered: list[dict[str, Any]]) -> None:
    """The validator is not a rubber stamp: a wrong type and an unknown field are reported."""
    deployment = copy.deepcopy(next(r for r in rendered if r["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "two"
    scaled = copy.deepcopy(next(r for r in rendered if r["kind"] == "ScaledObject"))
    unknown = copy.deepcopy(scaled)
    scaled["spec"]["minReplicaCount"] = "one"
    unknown["spec"]["pollingIntervall"] = 15  # a typo the API server would silently prune
    problems = validate.validate_resources([deployment, scaled, unknown])
    assert len(problems) == 3, problems
    assert "pollingIntervall" in problems[-1]


def test_compose_file_follows_the_compose_specification() -> None:
    """deploy/compose/compose.yaml is valid against the Compose Specification's schema."""
    document = yaml.safe_load((REPO / "deploy" / "compose" / "compose.yaml").read_text())
    assert validate.validate_compose(document) == []
    brokers = {"kafka-1", "kafka-2", "kafka-3"}
    assert {*brokers, "postgres", "topics", "intake", "router", "notifier", "events"} <= set(
        document["services"]
    )
    assert all(document["services"][b]["image"].startswith("apache/kafka:") for b in brokers)
    broken = copy.deepcopy(document)
    broken["services"]["intake"]["restrat"] = "always"  # a typo the spec does not allow
    assert validate.validate_compose(broken) != []


def test_the_dev_overlay_provisions_the_topics_with_a_job(rendered: list[dict[str, Any]]) -> None:
    """The dev overlay (whose Kafka no operator manages) has a Job running the provisioning
    image on the services' bootstrap servers; prod has none: Strimzi makes its topics."""
    jobs = _by_kind(rendered).get("Job", {})
    if rendered[0]["metadata"]["namespace"] != "rebond-dev":
        assert "rebond-kafka-provision" not in jobs
        return
    container = jobs["rebond-kafka-provision"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("ghcr.io/rebond/kafka-provision:")
    assert container["env"] == [
        {
            "name": "PROVISION_KAFKA_BOOTSTRAP_SERVERS",
            "valueFrom": {
                "configMapKeyRef": {"name": "rebond-config", "key": "KAFKA_BOOTSTRAP_SERVERS"}
            },
        }
    ]


COMPOSE_SERVICES = {
    "intake": "INTAKE",
    "router": "ROUTER",
    "notifier": "NOTIFIER",
    "events": "EVENTS",
    "coordination": "COORDINATION",
}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "deploy" / "compose" / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_the_compose_stack_is_reachable_from_this_machine_only() -> None:
    """The development stack runs with development secrets and Kafka in clear: every port it
    publishes is bound to 127.0.0.1, none to all interfaces."""
    published = {
        name: service["ports"]
        for name, service in _compose()["services"].items()
        if "ports" in service
    }
    assert set(published) == set(COMPOSE_SERVICES)
    for ports in published.values():
        assert all(str(port).startswith("127.0.0.1:") for port in ports), ports


@pytest.mark.parametrize("service", COMPOSE_SERVICES)
def test_the_compose_stack_switched_to_production_is_refused(
    service: str, monkeypatch: pytest.MonkeyPatch, settings_classes: dict[str, type[Any]]
) -> None:
    """Each compose service says it is development; given `<SERVICE>_ENVIRONMENT=production`
    with the stack's own configuration (development secrets, Kafka without TLS), it refuses to
    start."""
    prefix = COMPOSE_SERVICES[service]
    environment = {k: str(v) for k, v in _compose()["services"][service]["environment"].items()}
    assert environment[f"{prefix}_ENVIRONMENT"] == "development"
    for name in list(os.environ):
        if name.split("_", 1)[0] in (*COMPOSE_SERVICES.values(), "KAFKA"):
            monkeypatch.delenv(name)
    for name, value in {**environment, f"{prefix}_ENVIRONMENT": "production"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=f"{prefix}_"):
        settings_classes[service]()
