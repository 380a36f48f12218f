"""Fixtures and helpers of the CRD tests: the CRDs installed once per session.

The CRDs are cluster-scoped and shared with every other test of the session:
they are applied (again, which is harmless) but never deleted here.
"""

from __future__ import annotations

import copy
import json
import pathlib
import subprocess
from typing import Any

import pytest
import yaml

from tests.controlplane import ControlPlane, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CRDS = DEPLOY / "crds"
CRD_NAMES = (
    "clickstreamgenerators.csgen.dev",
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
)

MINIMAL_SPEC: dict[str, Any] = {"kinesis": {"streamName": "clicks", "region": "eu-west-1"}}


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> ControlPlane:
    """The control plane with this project's CRDs applied and established."""
    applied = control_plane.kubectl("apply", "-f", str(CRDS), check=False)
    assert applied.returncode == 0, f"the CRDs were refused:\n{applied.stderr}"
    for name in CRD_NAMES:
        control_plane.kubectl(
            "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s", timeout=90
        )
    return control_plane


def resource(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ClickstreamGenerator manifest; the minimal spec unless one is given."""
    return {
        "apiVersion": "csgen.dev/v1alpha1",
        "kind": "ClickstreamGenerator",
        "metadata": {"name": name},
        "spec": copy.deepcopy(MINIMAL_SPEC if spec is None else spec),
    }


def apply(
    plane: ControlPlane, namespace: str, manifest: dict[str, Any], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``kubectl apply`` one manifest into a namespace."""
    return plane.kubectl(
        "-n", namespace, "apply", "-f", "-", input=json.dumps(manifest), check=check
    )


def get(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    """The stored resource, as JSON."""
    found = plane.kubectl("-n", namespace, "get", "clickstreamgenerator", name, "-o", "json")
    return dict(json.loads(found.stdout))


def poll_kubectl(
    plane: ControlPlane, *args: str, until: Any, timeout: float = 30, message: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run kubectl until ``until(completed)`` holds (discovery and OpenAPI publish late)."""

    def attempt() -> subprocess.CompletedProcess[str] | None:
        completed = plane.kubectl(*args, check=False)
        return completed if until(completed) else None

    try:
        result: subprocess.CompletedProcess[str] = wait_for(
            attempt, timeout=timeout, interval=0.5, message=message
        )
    except TimeoutError:
        last = plane.kubectl(*args, check=False)
        raise AssertionError(
            f"{message}: kubectl {' '.join(args)} -> {last.returncode}\n{last.stdout}{last.stderr}"
        ) from None
    return result


def load_documents(path: pathlib.Path) -> list[dict[str, Any]]:
    """Every YAML document of a file, without empty ones."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
