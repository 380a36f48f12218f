"""Rendering a `GeneratorSpec` into the objects that run it. Pure: spec in, manifests out.

For a resource ``NAME`` the operator owns:

- a StatefulSet ``NAME`` (``podManagementPolicy: Parallel``) whose pods run
  ``csgen run --serve $(POD_IP):8080`` and boot *idle*;
- a headless Service ``NAME``;
- a Secret ``NAME-api-token`` with the control API's bearer token.

What changes often (replicas aside: the rate, the shard slices, the model,
the pause flag) is deliberately *not* in the pod template: it reaches running
pods through the control API, so such changes never restart a pod. Only what
needs a new process (image, resources, stream, credentials) is in the
template, and changing it rolls the pods.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from clickstream_operator.resources.specs import GROUP, KIND, VERSION, GeneratorSpec

API_PORT = 8080
TOKEN_KEY = "token"  # noqa: S105 - a key name, not a secret
TOKEN_DIR = "/var/run/csgen/api"  # noqa: S105 - a mount path
SPOOL_DIR = "/var/spool/csgen"
SHUTDOWN_TIMEOUT_SECONDS = 20
TERMINATION_GRACE_SECONDS = 30
LABEL_GENERATOR = "csgen.dev/generator"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"

DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}


def selector_labels(spec: GeneratorSpec) -> dict[str, str]:
    """Labels that select this resource's pods."""
    return {"app.kubernetes.io/name": "csgen", LABEL_GENERATOR: spec.name}


def selector_string(spec: GeneratorSpec) -> str:
    """The selector as ``status.selector`` carries it (for the scale subresource)."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(spec).items()))


def common_labels(spec: GeneratorSpec) -> dict[str, str]:
    return {
        **selector_labels(spec),
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/component": "generator",
        "app.kubernetes.io/managed-by": "csgen-operator",
    }


def owner_reference(spec: GeneratorSpec) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": spec.name,
        "uid": spec.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(spec: GeneratorSpec, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": spec.namespace,
        "labels": common_labels(spec),
        "ownerReferences": [owner_reference(spec)],
    }


def token_secret_name(spec: GeneratorSpec) -> str:
    return f"{spec.name}-api-token"


def render_token_secret(spec: GeneratorSpec, token: str | None = None) -> dict[str, Any]:
    """The Secret with the API token; a new random token unless one is given."""
    value = token or secrets.token_urlsafe(32)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(spec, token_secret_name(spec)),
        "type": "Opaque",
        "data": {TOKEN_KEY: base64.b64encode(value.encode()).decode()},
    }


def render_service(spec: GeneratorSpec) -> dict[str, Any]:
    """The headless Service giving pods stable DNS names."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, spec.name),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(spec),
            "ports": [{"name": "http", "port": API_PORT, "targetPort": "http"}],
            "publishNotReadyAddresses": True,
        },
    }


def generator_args(spec: GeneratorSpec) -> list[str]:
    """The ``csgen run`` arguments of a generator pod."""
    args = [
        "run",
        "--serve",
        f"$(POD_IP):{API_PORT}",
        "--token-file",
        f"{TOKEN_DIR}/{TOKEN_KEY}",
        "--producer-id",
        "$(POD_NAME)",
        "--sink",
        "kinesis",
        "--stream",
        spec.kinesis.stream_name,
        "--region",
        spec.kinesis.region,
        "--spool",
        f"{SPOOL_DIR}/undelivered.jsonl",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT_SECONDS),
        "--log-format",
        "json",
        "--quiet",
    ]
    if spec.kinesis.endpoint_url:
        args += ["--kinesis-endpoint", spec.kinesis.endpoint_url]
    if spec.kinesis.aggregation:
        args.append("--aggregate")
    return args


def render_statefulset(spec: GeneratorSpec) -> dict[str, Any]:
    """The StatefulSet running the generator pods."""
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {
            "name": "SHARD_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{POD_INDEX_LABEL}']"}},
        },
        {"name": "AWS_REGION", "value": spec.kinesis.region},
    ]
    container: dict[str, Any] = {
        "name": "generator",
        "image": spec.image,
        "command": ["csgen"],
        "args": generator_args(spec),
        "env": env,
        "ports": [{"name": "http", "containerPort": API_PORT}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": dict(spec.resources) or DEFAULT_RESOURCES,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "api-token", "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": "spool", "mountPath": SPOOL_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not the host's
        ],
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    if spec.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": spec.credentials_secret}}]
    pod_spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "api-token", "secret": {"secretName": token_secret_name(spec)}},
            {"name": "spool", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    else:
        pod_spec["automountServiceAccountToken"] = False
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in spec.tolerations]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(spec, spec.name),
        "spec": {
            "replicas": spec.replicas,
            "serviceName": spec.name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector_labels(spec)},
            "template": {
                "metadata": {"labels": common_labels(spec)},
                "spec": pod_spec,
            },
        },
    }
