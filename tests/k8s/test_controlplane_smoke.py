"""Smoke tests of the local control plane and pod runner, through kubectl."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import textwrap
import urllib.request
from typing import Any

import pytest

from tests.controlplane import ControlPlane, PodRunner, wait_for

pytestmark = pytest.mark.controlplane

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.csgen.test
spec:
  group: smoke.csgen.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
"""

# A pod's program: serve its identity on $(POD_IP):8080, note SIGTERM in a file.
SERVER = textwrap.dedent(
    """
    import http.server, os, pathlib, signal, sys
    host, port, marks = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    greeting = pathlib.Path(sys.argv[4]).read_text()
    def on_term(signum, frame):
        (marks / (os.environ["POD_NAME"] + ".sigterm")).write_text("")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = " ".join([os.environ["POD_NAME"], os.environ["POD_INDEX"],
                             os.environ["PASSWORD"], greeting]).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.HTTPServer((host, port), Handler).serve_forever()
    """
)


def _get_json(plane: ControlPlane, *args: str) -> Any:
    return json.loads(plane.kubectl(*args, "-o", "json").stdout)


def _pods(plane: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return list(_get_json(plane, "-n", namespace, "get", "pods")["items"])


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _statefulset(namespace: str, marks: pathlib.Path) -> dict[str, Any]:
    labels = {"app": "smoke"}
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    container = {
        "name": "server",
        "image": "ignored.example/never-pulled:latest",
        "command": ["python", "-c", SERVER],
        "args": ["$(POD_IP)", "8080", "$(MARKS)", "/etc/smoke/greeting"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [
            {"name": "POD_NAME", **field("metadata.name")},
            {"name": "POD_IP", **field("status.podIP")},
            {"name": "POD_INDEX", **field("metadata.labels['apps.kubernetes.io/pod-index']")},
            {
                "name": "MARKS",
                "valueFrom": {"configMapKeyRef": {"name": "smoke", "key": "marks"}},
            },
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "smoke", "key": "password"}},
            },
        ],
        "volumeMounts": [{"name": "greeting", "mountPath": "/etc/smoke", "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {
            "replicas": 3,
            "serviceName": "smoke",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [container],
                    "volumes": [{"name": "greeting", "secret": {"secretName": "smoke"}}],
                },
            },
        },
    }


def test_kubectl_creates_a_namespace_and_a_crd(control_plane: ControlPlane) -> None:
    control_plane.kubectl("create", "namespace", "smoke-kubectl")
    control_plane.kubectl("apply", "-f", "-", input=CRD)
    control_plane.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.smoke.csgen.test", "--timeout=30s"
    )
    widget = "apiVersion: smoke.csgen.test/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}"
    control_plane.kubectl("-n", "smoke-kubectl", "apply", "-f", "-", input=widget)

    found = _get_json(control_plane, "-n", "smoke-kubectl", "get", "widgets", "w")
    assert found["spec"] == {"size": 3}
    control_plane.kubectl("delete", "namespace", "smoke-kubectl", "--wait=false")


@pytest.mark.timeout(180)
def test_statefulset_pods_run_serve_scale_down_on_sigterm_and_are_collected(
    control_plane: ControlPlane, pod_runner: PodRunner, namespace: str, tmp_path: pathlib.Path
) -> None:
    kubectl = control_plane.kubectl
    kubectl("-n", namespace, "create", "configmap", "smoke", f"--from-literal=marks={tmp_path}")
    kubectl(
        "-n", namespace, "create", "secret", "generic", "smoke",
        "--from-literal=password=s3cret", "--from-literal=greeting=hello",
    )  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(_statefulset(namespace, tmp_path)))

    # Three pods, one per index, each Ready on an address of its own.
    def three_ready() -> list[dict[str, Any]] | None:
        pods = _pods(control_plane, namespace)
        return pods if len(pods) == 3 and all(map(_is_ready, pods)) else None

    pods = wait_for(three_ready, timeout=60, message="3 smoke pods did not become Ready")
    indexes = {p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] for p in pods}
    assert indexes == {"0", "1", "2"}
    addresses = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert len(set(addresses.values())) == 3
    for name, address in addresses.items():
        with urllib.request.urlopen(f"http://{address}:8080/", timeout=5) as response:
            index = name.rsplit("-", 1)[1]
            assert response.read().decode() == f"{name} {index} s3cret hello"
        assert pod_runner.ip_of(namespace, name) == address

    # Scaling down terminates the two highest indexes, each with SIGTERM.
    kubectl("-n", namespace, "scale", "statefulset", "smoke", "--replicas=1")

    def only_first_left() -> bool:
        names = {p["metadata"]["name"] for p in _pods(control_plane, namespace)}
        return names == {"smoke-0"}

    wait_for(only_first_left, timeout=60, message="smoke-1 and smoke-2 were not removed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smoke-1.sigterm", "smoke-2.sigterm"]
    assert pod_runner.pid_of(namespace, "smoke-1") is None

    # Deleting the owner leaves the rest to the garbage collector.
    kubectl("-n", namespace, "delete", "statefulset", "smoke", "--wait=false")
    wait_for(
        lambda: (
            not _pods(control_plane, namespace) and (namespace, "smoke-0") not in pod_runner.pods()
        ),
        timeout=60,
        message="smoke-0 was not garbage-collected",
    )
    assert (tmp_path / "smoke-0.sigterm").exists()


@pytest.mark.timeout(120)
def test_a_killed_container_is_restarted_and_counted(
    control_plane: ControlPlane, pod_runner: PodRunner, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": "ignored",
                    "command": ["python", "-c", "import time; time.sleep(3600)"],
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                }
            ],
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def status() -> dict[str, Any]:
        found = _get_json(control_plane, "-n", namespace, "get", "pod", "sleeper")
        return dict(found.get("status", {}))

    wait_for(lambda: _is_ready({"status": status()}), timeout=30, message="sleeper not Ready")
    first = pod_runner.pid_of(namespace, "sleeper")
    assert first is not None
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        current = status()
        counts = [c["restartCount"] for c in current.get("containerStatuses", [])]
        return counts == [1] and _is_ready({"status": current})

    wait_for(restarted, timeout=30, message="sleeper was not restarted once")
    second = pod_runner.pid_of(namespace, "sleeper")
    assert second is not None
    assert second != first
    last = status()["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 128 + signal.SIGKILL
