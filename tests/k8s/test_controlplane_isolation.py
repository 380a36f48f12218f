"""Isolation between test modules, and cleanup of everything the control plane starts."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.controlplane import ControlPlane, processes, wait_for

pytestmark = pytest.mark.controlplane

REPO = pathlib.Path(__file__).resolve().parents[2]
# Namespace names and their owner labels spell underscores as dashes.
MODULE = __name__.rsplit(".", 1)[-1].replace("_", "-")


def _namespaces(plane: ControlPlane) -> dict[str, dict[str, object]]:
    listed = json.loads(plane.kubectl("get", "namespaces", "-o", "json").stdout)["items"]
    return {item["metadata"]["name"]: item for item in listed}


def test_a_module_namespace_is_fresh_and_its_own(
    control_plane: ControlPlane, module_namespace: str
) -> None:
    found = _namespaces(control_plane)[module_namespace]
    assert found["metadata"]["labels"]["csgen.test/owner"] == MODULE  # type: ignore[index]
    configmaps = control_plane.kubectl("-n", module_namespace, "get", "configmaps", "-o", "name")
    assert configmaps.stdout.split() == ["configmap/kube-root-ca.crt"]
    control_plane.kubectl("-n", module_namespace, "create", "configmap", "claimed")


def test_other_modules_namespaces_are_gone_or_going(
    control_plane: ControlPlane, module_namespace: str, namespace: str
) -> None:
    # Only this module's namespaces are live; those of modules that ran before
    # were deleted when they finished, so no test here can see their objects.
    for name, item in _namespaces(control_plane).items():
        owner = item["metadata"].get("labels", {}).get("csgen.test/owner")  # type: ignore[union-attr]
        if owner is None or name in (module_namespace, namespace):
            continue
        assert item["metadata"].get("deletionTimestamp"), f"{name} of {owner} is still live"  # type: ignore[union-attr]
    assert namespace != module_namespace
    listed = control_plane.kubectl("-n", namespace, "get", "configmaps", "-o", "name")
    assert "configmap/claimed" not in listed.stdout.split()


def test_the_session_check_finds_a_leaked_process(tmp_path: pathlib.Path) -> None:
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text(
        textwrap.dedent(
            """
            from tests.controlplane import processes

            def test_leaks():
                processes.spawn(["sleep", "300"])
            """
        )
    )
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.controlplane.fixtures", "-c", os.devnull,
         "--rootdir", str(tmp_path), "-q", "-p", "no:cacheprovider", str(leaky)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "control-plane leftovers" in completed.stdout
    assert "sleep 300" in completed.stdout


@pytest.mark.timeout(180)
def test_up_serves_until_interrupted_and_leaves_nothing(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.controlplane", "up", "--kubeconfig", str(kubeconfig)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(kubeconfig.exists, timeout=120, message="`up` wrote no kubeconfig")
        nodes = subprocess.run(
            ["kubectl", f"--kubeconfig={kubeconfig}", "get", "nodes", "-o", "name"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        assert nodes.stdout.split() == ["node/csgen-local-node"]
        assert processes.survivors(process.pid)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 130, output
    assert not kubeconfig.exists()
    # `up` reaps its children before it exits: nothing may carry its marker.
    assert processes.survivors(process.pid) == []
