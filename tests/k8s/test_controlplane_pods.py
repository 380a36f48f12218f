"""What the pod runner gives a pod: volumes, probes, restarts and real RBAC."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.controlplane import ControlPlane, PodRunner, wait_for

pytestmark = pytest.mark.controlplane


def _apply(plane: ControlPlane, body: dict[str, Any]) -> None:
    plane.kubectl("apply", "-f", "-", input=json.dumps(body))


def _status(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    found = plane.kubectl("-n", namespace, "get", "pod", name, "-o", "json").stdout
    return dict(json.loads(found).get("status", {}))


def _pod(namespace: str, name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": "ignored", **container}],
            **spec,
        },
    }


def _ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def test_a_configmap_volume_is_served_from_its_mount_path_once_tcp_ready(
    control_plane: ControlPlane, pod_runner: PodRunner, namespace: str
) -> None:
    control_plane.kubectl(
        "-n", namespace, "create", "configmap", "site", "--from-literal=index.html=hi there"
    )
    container = {
        "command": ["python", "-m", "http.server"],
        "args": ["--bind", "$(POD_IP)", "--directory", "/srv/site", "9000"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "volumeMounts": [{"name": "site", "mountPath": "/srv/site"}],
        "readinessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1},
    }
    volumes = [{"name": "site", "configMap": {"name": "site"}}]
    _apply(control_plane, _pod(namespace, "site", container, volumes=volumes))

    status = wait_for(
        lambda: (s := _status(control_plane, namespace, "site")) and _ready(s) and s,
        timeout=30,
        message="the site pod did not become Ready",
    )
    with urllib.request.urlopen(f"http://{status['podIP']}:9000/index.html", timeout=5) as page:
        assert page.read() == b"hi there"


def test_a_failing_liveness_probe_restarts_the_container(
    control_plane: ControlPlane, pod_runner: PodRunner, namespace: str
) -> None:
    container = {
        "command": ["python", "-c", "import time; time.sleep(3600)"],
        "livenessProbe": {
            "exec": {"command": ["false"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
    }
    _apply(control_plane, _pod(namespace, "unwell", container))

    def restarted() -> bool:
        statuses = _status(control_plane, namespace, "unwell").get("containerStatuses", [])
        return bool(statuses) and statuses[0]["restartCount"] >= 1

    wait_for(restarted, timeout=40, message="the unwell pod was never restarted")


@pytest.mark.timeout(120)
def test_a_pod_acts_with_its_service_accounts_rbac_permissions(
    control_plane: ControlPlane, pod_runner: PodRunner, namespace: str
) -> None:
    kubectl = control_plane.kubectl
    kubectl("-n", namespace, "create", "serviceaccount", "reader")
    kubectl("-n", namespace, "create", "role", "read-cm", "--verb=list", "--resource=configmaps")
    kubectl(
        "-n", namespace, "create", "rolebinding", "read-cm", "--role=read-cm",
        f"--serviceaccount={namespace}:reader",
    )  # fmt: skip
    container = {"command": ["kubectl", "get", "configmaps", "-o", "name"]}
    _apply(control_plane, _pod(namespace, "anonymous", container, restartPolicy="Never"))
    _apply(
        control_plane,
        _pod(namespace, "reader", container, restartPolicy="Never", serviceAccountName="reader"),
    )

    def phase(name: str) -> str:
        return str(_status(control_plane, namespace, name).get("phase", ""))

    wait_for(lambda: phase("anonymous") == "Failed", timeout=60, message="anonymous not Failed")
    wait_for(lambda: phase("reader") == "Succeeded", timeout=60, message="reader not Succeeded")
    denied = pod_runner.log_path(namespace, "anonymous").read_text()
    assert "forbidden" in denied
    assert f"system:serviceaccount:{namespace}:default" in denied
    assert "configmap/kube-root-ca.crt" in pod_runner.log_path(namespace, "reader").read_text()


def test_an_empty_dir_on_tmp_leaves_the_runners_own_paths_alone(
    control_plane: ControlPlane, pod_runner: PodRunner, namespace: str
) -> None:
    # The runner's HOME, TMPDIR and KUBECONFIG live under /tmp too; only what
    # the spec says may be re-pointed to the volume.
    check = (
        "import os, pathlib, sys; e = os.environ; out = pathlib.Path(sys.argv[1]);"
        "out.parent.mkdir(parents=True, exist_ok=True); out.write_text('x');"
        "ok = pathlib.Path(e['KUBECONFIG']).is_file() and pathlib.Path(e['HOME']).is_dir();"
        "sys.exit(0 if ok and e['SCRATCH'] == str(out.parent) else 1)"
    )
    container = {
        "command": ["python", "-c", check, "/tmp/scratch/out"],
        "env": [{"name": "SCRATCH", "value": "/tmp/scratch"}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes = [{"name": "tmp", "emptyDir": {}}]
    body = _pod(namespace, "tmpdir", container, restartPolicy="Never", volumes=volumes)
    _apply(control_plane, body)

    def phase() -> str:
        return str(_status(control_plane, namespace, "tmpdir").get("phase", ""))

    wait_for(lambda: phase() in ("Succeeded", "Failed"), timeout=30, message="tmpdir never ended")
    assert phase() == "Succeeded", pod_runner.log_path(namespace, "tmpdir").read_text()
