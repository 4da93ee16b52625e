"""Validate the deployment manifests offline.

    python deploy/validate.py            # renders each kustomize overlay, validates everything

- Kubernetes: each overlay is rendered with kustomize (built once from the Go module proxy into
  $REBOND_CACHE/bin) and every resource is checked, strictly, against the Kubernetes schemas that
  the kubernetes-validate package ships; KEDA `ScaledObject`s and `TriggerAuthentication`s against
  KEDA's own CRD schemas.
- Compose: deploy/compose/compose.yaml against the Compose Specification's JSON Schema.
Schemas come from packages (PyPI, the Go module proxy), never from a download at run time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
CACHE = Path(os.environ.get("REBOND_CACHE", Path.home() / ".cache" / "rebond"))
KUSTOMIZE_VERSION = "v5.7.1"
KEDA_MODULE = "github.com/kedacore/keda/v2@v2.16.1"
COMPOSE_MODULE = "github.com/compose-spec/compose-go/v2@v2.4.8"
KUBERNETES_VERSION = "1.31"


def _go_module_dir(module: str) -> Path:
    out = subprocess.run(
        ["go", "mod", "download", "-json", module],
        check=True, capture_output=True, text=True, cwd=CACHE,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    return Path(json.loads(out.stdout)["Dir"])


def kustomize() -> str:
    """A kustomize binary: on PATH, in the cache, or built once from the Go module proxy."""
    if found := shutil.which("kustomize"):
        return found
    binary = CACHE / "bin" / "kustomize"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["go", "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
            check=True, env={**os.environ, "GOBIN": str(binary.parent), "GOFLAGS": "-mod=mod"},
        )  # fmt: skip
    return str(binary)


def render(overlay: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kustomize(), "build", str(overlay)], check=True, capture_output=True, text=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


#: KEDA's kinds used here, and the file of each one's CRD in KEDA's module.
KEDA_CRDS = {
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
}


def keda_schema(kind: str = "ScaledObject") -> dict[str, Any]:
    """The OpenAPI schema of KEDA's `kind` (a KeyError for a kind it has no CRD of here)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    crd = _go_module_dir(KEDA_MODULE) / "config" / "crd" / "bases" / KEDA_CRDS[kind]
    version = yaml.safe_load(crd.read_text())["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


def compose_schema() -> dict[str, Any]:
    CACHE.mkdir(parents=True, exist_ok=True)
    return dict(
        json.loads((_go_module_dir(COMPOSE_MODULE) / "schema" / "compose-spec.json").read_text())
    )


def validate_resources(resources: list[dict[str, Any]]) -> list[str]:
    """Every problem found, as `kind/name: message`; empty when all resources are valid."""
    errors: list[str] = []
    keda: dict[str, dict[str, Any]] = {}
    for resource in resources:
        kind = str(resource.get("kind"))
        where = f"{kind}/{resource.get('metadata', {}).get('name')}"
        if resource.get("apiVersion", "").startswith("keda.sh/"):
            if kind not in KEDA_CRDS:
                errors.append(f"{where}: no schema for KEDA's {kind}")
                continue
            if kind not in keda:
                keda[kind] = keda_schema(kind)
            errors += [
                f"{where}: {e.message}"
                for e in jsonschema.Draft7Validator(keda[kind]).iter_errors(resource)
            ]
            continue
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{where}: no schema ({error})")
    return errors


def validate_compose(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(compose_schema())
    return [
        f"compose {'/'.join(map(str, e.path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def main() -> int:
    failures = []
    for overlay in sorted((K8S / "overlays").iterdir()):
        resources = render(overlay)
        problems = validate_resources(resources)
        print(f"k8s overlay {overlay.name}: {len(resources)} resources, {len(problems)} problems")
        failures += problems
    problems = validate_compose(yaml.safe_load(COMPOSE.read_text()))
    print(f"compose: {len(problems)} problems")
    failures += problems
    for failure in failures:
        print("  " + failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
