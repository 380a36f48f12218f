"""The deploy manifests: they render, the server accepts them, the RBAC holds."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import uuid
from typing import Any

import pytest
import yaml

from tests.controlplane import ControlPlane

from .conftest import DEPLOY, REPO, get, load_documents

controlplane = pytest.mark.controlplane


def _kustomize(directory: pathlib.Path) -> list[dict[str, Any]]:
    completed = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


def _overlay(tmp_path: pathlib.Path, body: dict[str, Any]) -> pathlib.Path:
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(body))
    return tmp_path


def test_kustomize_renders_everything_but_the_example() -> None:
    rendered = {(doc["kind"], doc["metadata"]["name"]) for doc in _kustomize(DEPLOY)}
    assert rendered == {
        ("CustomResourceDefinition", "clickstreamgenerators.csgen.dev"),
        ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
        ("CustomResourceDefinition", "kopfpeerings.kopf.dev"),
        ("Namespace", "csgen-system"),
        ("ServiceAccount", "csgen-operator"),
        ("ClusterRole", "csgen-operator"),
        ("ClusterRoleBinding", "csgen-operator"),
        ("Deployment", "csgen-operator"),
        ("ClusterKopfPeering", "csgen"),
    }


def test_the_operator_runs_as_the_issue_says_non_root_and_read_only() -> None:
    (deployment,) = load_documents(DEPLOY / "manifests" / "operator.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["command"] == [
        "csgen", "operator", "--all-namespaces", "--log-format", "json",
        "--liveness-host", "$(POD_IP)", "--liveness-port", "8081", "--peering", "csgen",
    ]  # fmt: skip
    peering = load_documents(DEPLOY / "manifests" / "peering.yaml")
    assert [(doc["kind"], doc["metadata"]["name"]) for doc in peering] == [
        ("ClusterKopfPeering", "csgen")
    ]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert {"name": probe["port"], "containerPort": 8081} in container["ports"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert set(container["resources"]) == {"requests", "limits"}


@controlplane
def test_the_whole_install_passes_a_server_dry_run(
    crds: ControlPlane, module_namespace: str, tmp_path: pathlib.Path
) -> None:
    # csgen-system is not created here (other tests share the cluster); the
    # namespaced objects are checked in this module's namespace instead, and
    # the Namespace itself on its own.
    overlay = _overlay(
        tmp_path,
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # Kustomize takes bases by relative path only.
            "resources": [os.path.relpath(DEPLOY, tmp_path)],
            "patches": [
                {
                    "target": {"kind": "Namespace"},
                    "patch": "$patch: delete\napiVersion: v1\nkind: Namespace\n"
                    "metadata: {name: csgen-system}",
                }
            ],
            "namespace": module_namespace,
        },
    )
    completed = crds.kubectl("apply", "-k", str(overlay), "--dry-run=server")
    lines = completed.stdout.splitlines()
    assert len(lines) == 8, completed.stdout
    assert all(line.endswith("(server dry run)") for line in lines), completed.stdout
    crds.kubectl("apply", "--dry-run=server", "-f", str(DEPLOY / "manifests" / "namespace.yaml"))


@controlplane
def test_apply_k_deploy_as_it_is_maps_every_cluster_scoped_object(crds: ControlPlane) -> None:
    # `kubectl apply -k deploy/` itself, as a server-side dry run (nothing of it
    # may stay in the shared cluster). With the CRDs established, even the
    # ClusterKopfPeering maps; a fresh cluster needs the CRDs applied first
    # (docs/resource.md, Installing).
    completed = crds.kubectl("apply", "-k", str(DEPLOY), "--dry-run=server", check=False)
    # The namespaced objects need csgen-system, which a dry run does not create.
    stored = [line for line in completed.stdout.splitlines() if line.endswith("(server dry run)")]
    names = {line.split()[0] for line in stored}
    assert {
        "customresourcedefinition.apiextensions.k8s.io/clickstreamgenerators.csgen.dev",
        "clusterrole.rbac.authorization.k8s.io/csgen-operator",
        "clusterrolebinding.rbac.authorization.k8s.io/csgen-operator",
        "clusterkopfpeering.kopf.dev/csgen",
        "namespace/csgen-system",
    } <= names, completed.stdout + completed.stderr


@controlplane
def test_the_operator_role_allows_what_it_needs_and_no_more(
    crds: ControlPlane, module_namespace: str, tmp_path: pathlib.Path
) -> None:
    # A real copy of the RBAC under unique names, asked through `kubectl auth can-i`.
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    overlay = _overlay(
        tmp_path,
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["rbac.yaml"],
            "namespace": module_namespace,
            "namePrefix": prefix,
        },
    )
    (overlay / "rbac.yaml").write_text((DEPLOY / "manifests" / "rbac.yaml").read_text())
    crds.kubectl("apply", "-k", str(overlay))
    user = f"system:serviceaccount:{module_namespace}:{prefix}csgen-operator"
    try:
        allowed = [
            ("patch", "clickstreamgenerators.csgen.dev"),
            ("patch", "clickstreamgenerators.csgen.dev/status"),
            ("create", "statefulsets.apps"),
            ("watch", "pods"),
            ("create", "events"),
            ("list", "customresourcedefinitions.apiextensions.k8s.io"),
            ("patch", "clusterkopfpeerings.kopf.dev"),
        ]
        denied = [
            ("delete", "clickstreamgenerators.csgen.dev"),
            ("create", "clickstreamgenerators.csgen.dev"),
            ("delete", "statefulsets.apps"),
            ("list", "secrets"),
            ("delete", "pods"),
            ("create", "clusterkopfpeerings.kopf.dev"),
            ("create", "deployments.apps"),
            ("update", "clickstreamgenerators.csgen.dev/status"),
            ("list", "statefulsets.apps"),
            ("patch", "secrets"),
        ]
        for verb, what in allowed + denied:
            completed = crds.kubectl(
                "auth", "can-i", verb, what, "-n", "elsewhere", f"--as={user}", check=False
            )
            expected = "yes" if (verb, what) in allowed else "no"
            assert completed.stdout.strip() == expected, (verb, what, completed.stderr)
    finally:
        crds.kubectl("delete", "-k", str(overlay), "--wait=false", check=False)


@controlplane
def test_the_example_resource_applies_as_it_is(crds: ControlPlane, module_namespace: str) -> None:
    example = DEPLOY / "manifests" / "example-clickstreamgenerator.yaml"
    crds.kubectl("-n", module_namespace, "apply", "-f", str(example))
    (manifest,) = load_documents(example)
    stored = get(crds, module_namespace, manifest["metadata"]["name"])
    assert stored["spec"]["replicas"] == manifest["spec"]["replicas"]
    assert stored["spec"]["model"] == manifest["spec"]["model"]
    assert json.dumps(stored["spec"]["resources"], sort_keys=True) == json.dumps(
        manifest["spec"]["resources"], sort_keys=True
    )


def test_images_match_the_project_version() -> None:
    version = next(
        line.split('"')[1]
        for line in (REPO / "pyproject.toml").read_text().splitlines()
        if line.startswith("version = ")
    )
    image = f"ghcr.io/csgen/csgen:{version}"
    (deployment,) = load_documents(DEPLOY / "manifests" / "operator.yaml")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    (crd,) = load_documents(DEPLOY / "crds" / "clickstreamgenerators.csgen.dev.yaml")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["properties"]["image"]["default"] == image
