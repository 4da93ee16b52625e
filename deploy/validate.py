"""Validate the deployment manifests offline.

    python deploy/validate.py              # renders each kustomize overlay, validates everything
    python deploy/validate.py --generate   # writes the Strimzi topics and users from the registry

- Kubernetes: each overlay is rendered with kustomize (built once from the Go module proxy into
  $REBOND_CACHE/bin) and every resource is checked, strictly, against the Kubernetes schemas that
  the kubernetes-validate package ships; every custom resource against its operator's own CRD
  schema: KEDA, CloudNativePG and its Barman Cloud plugin, cert-manager and the Prometheus
  operator from the CRD YAML their Go modules carry, Strimzi from the validators compiled from its
  CRDs in the npm package `@kubernetes-models/strimzi-kafka-operator` (run with node).
- Strict means what `kubectl apply --validate=strict` means: a wrong type, a missing required
  field, a value outside an enum *and a field the schema does not declare* are errors (the API
  server would silently prune an unknown field, so a typo would never reach the operator).
- The generated Strimzi `KafkaTopic` and `KafkaUser` resources must equal a fresh generation from
  the topic registry (`rebond_kafka.strimzi`).
- Compose: deploy/compose/compose.yaml against the Compose Specification's JSON Schema.

Schemas come from packages at pinned versions (the Go module proxy, whose module hashes are
checked against the ones below, and npm, whose lock file pins each tarball's integrity), fetched
once into the Go module cache and $REBOND_CACHE, never from a download at run time.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import yaml

from deploy import dashboards
from rebond_kafka import strimzi

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
SCHEMAS = REPO / "deploy" / "schemas"
CACHE = Path(os.environ.get("REBOND_CACHE", Path.home() / ".cache" / "rebond"))
KUSTOMIZE_VERSION = "v5.7.1"
COMPOSE_MODULE = "github.com/compose-spec/compose-go/v2@v2.4.8"
KUBERNETES_VERSION = "1.31"

#: Go modules carrying an operator's CRDs: module@version, its go.sum hash, the CRD files.
CRD_MODULES: dict[str, tuple[str, str, str]] = {
    "keda": (
        "github.com/kedacore/keda/v2@v2.16.1",
        "h1:LfYsxfSX8DjetLW8q9qnriImH936POrQJvE+caRoScI=",
        "config/crd/bases/*.yaml",
    ),
    "cloudnative-pg": (
        "github.com/cloudnative-pg/cloudnative-pg@v1.28.1",
        "h1:HdOUWgFhta558uHfXeO/199qCApxaj5yi05x6nWNmgs=",
        "config/crd/bases/*.yaml",
    ),
    "barman-cloud": (
        "github.com/cloudnative-pg/plugin-barman-cloud@v0.15.0",
        "h1:gNVytrzzYUE08wxLDrjfJqy1FPPSFkMe1OEr4s4pVI0=",
        "config/crd/bases/*.yaml",
    ),
    "cert-manager": (
        "github.com/cert-manager/cert-manager@v1.21.2",
        "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68=",
        "deploy/crds/*.yaml",
    ),
    "prometheus-operator": (
        "github.com/prometheus-operator/prometheus-operator@v0.87.1",
        "h1:zjzxO10Rv3goA/GDbE3Vgf2TNhhcOp7fZbRG0Tkm3OY=",
        "example/prometheus-operator-crd/*.yaml",
    ),
}
#: API groups whose schemas come from the npm packages in deploy/schemas (validate.mjs).
NPM_GROUPS = {"kafka.strimzi.io", "core.strimzi.io"}

GENERATED_HEADER = (
    "# Generated from the topic registry (rebond_contracts.topics, rebond_kafka.acl_plan) by\n"
    "# `make deploy-generate`; do not edit: `make validate-deploy` fails when they differ.\n"
)


def _strimzi(make: Callable[[], list[dict[str, Any]]]) -> Callable[[], str]:
    return lambda: GENERATED_HEADER + yaml.safe_dump_all(make(), sort_keys=False, width=100)


DASHBOARDS = K8S / "monitoring" / "dashboards"

#: Every generated file, and what writes its text: committed, so `kubectl apply -k` needs no
#: generator, and checked here against a fresh generation, so they cannot drift.
GENERATED: dict[Path, Callable[[], str]] = {
    K8S / "overlays" / "prod" / "kafka" / "topics.yaml": _strimzi(strimzi.kafka_topics),
    K8S / "overlays" / "prod" / "kafka" / "users.yaml": _strimzi(strimzi.kafka_users),
    **{
        DASHBOARDS / name: functools.partial(dashboards.text, board)
        for name, board in dashboards.all_dashboards().items()
    },
}


@functools.cache
def _go_module_dir(module: str, expected_sum: str | None = None) -> Path:
    """The module's files in Go's module cache, downloaded once (the go command checks them
    against the checksum database; `expected_sum` pins the hash here too)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        ["go", "mod", "download", "-json", module],
        check=True, capture_output=True, text=True, cwd=CACHE,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    info = json.loads(out.stdout)
    if expected_sum is not None and info.get("Sum") != expected_sum:
        raise RuntimeError(f"{module}: hash {info.get('Sum')} is not the pinned {expected_sum}")
    return Path(info["Dir"])


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


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's structural schema as JSON Schema that refuses undeclared fields: every object
    that declares `properties` gets `additionalProperties: false`, unless the CRD keeps unknown
    fields there (`x-kubernetes-preserve-unknown-fields`) or says what other keys hold."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # A CRD's schema leaves `metadata` to the API server's ObjectMeta: accept what it holds.
    schema.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)
    return schema


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 reads a lone `=` (an enum value in some CRDs) as the obsolete `value` tag."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


@functools.cache
def _crd_file(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):  # a SafeLoader
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The strict JSON Schema of `kind` in `api_version`, from the CRD files of `CRD_MODULES`
    (each named `<group>_<plural>.yaml`, as controller-gen writes them; only the group's are read)."""
    group = api_version.split("/")[0]
    for module, expected_sum, pattern in CRD_MODULES.values():
        folder, _, glob = pattern.rpartition("/")
        root = _go_module_dir(module, expected_sum) / folder
        for path in sorted(root.glob(glob)):
            if path.name.startswith(f"{group}_") and (api_version, kind) in _crd_file(path):
                return _crd_file(path)[(api_version, kind)]
    return None


def _npm_schemas() -> Path:
    """deploy/schemas installed once (`npm ci`: the lock file's versions and integrity hashes)
    into the cache, under a folder named after the lock file's hash."""
    lock = (SCHEMAS / "package-lock.json").read_bytes()
    folder = CACHE / f"crd-schemas-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SCHEMAS / name, folder / name)
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            check=True, cwd=folder, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        (folder / ".complete").touch()
    shutil.copyfile(SCHEMAS / "validate.mjs", folder / "validate.mjs")
    return folder


def _npm_problems(resources: list[dict[str, Any]]) -> list[str]:
    if not resources:
        return []
    folder = _npm_schemas()
    out = subprocess.run(
        ["node", str(folder / "validate.mjs")],
        input=json.dumps(resources), check=True, capture_output=True, text=True, cwd=folder,
    )  # fmt: skip
    return list(json.loads(out.stdout))


def validate_resources(resources: list[dict[str, Any]]) -> list[str]:
    """Every problem found, as `kind/name: message`; empty when all resources are valid."""
    errors: list[str] = []
    npm: list[dict[str, Any]] = []
    for resource in resources:
        api_version = str(resource.get("apiVersion", ""))
        kind = str(resource.get("kind"))
        where = f"{kind}/{resource.get('metadata', {}).get('name')}"
        group = api_version.split("/")[0] if "/" in api_version else ""
        if group in NPM_GROUPS:
            npm.append(resource)
            continue
        if "." in group and not group.endswith(".k8s.io"):
            schema = crd_schema(api_version, kind)
            if schema is None:
                errors.append(f"{where}: no schema for {api_version} {kind}")
                continue
            errors += [
                f"{where}: /{'/'.join(map(str, e.absolute_path))} {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(resource)
            ]
            continue
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{where}: no schema ({error})")
    return errors + _npm_problems(npm)


def stale_generated() -> list[str]:
    """The generated files that differ from a fresh generation."""
    return [
        f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path} is not what the "
        "generator makes now: run `make deploy-generate`"
        for path, make in GENERATED.items()
        if not path.exists() or path.read_text() != make()
    ]


def compose_schema() -> dict[str, Any]:
    return dict(
        json.loads((_go_module_dir(COMPOSE_MODULE) / "schema" / "compose-spec.json").read_text())
    )


def validate_compose(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(compose_schema())
    return [
        f"compose {'/'.join(map(str, e.path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def main(argv: list[str]) -> int:
    if argv == ["--generate"]:
        for path, make in GENERATED.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(make())
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    failures = stale_generated()
    print(f"generated files (Strimzi topics and users, dashboards): {len(failures)} stale")
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
    sys.exit(main(sys.argv[1:]))
