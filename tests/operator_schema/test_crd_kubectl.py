"""What kubectl users see of the resource: scale, columns, explain, the category."""

from __future__ import annotations

import json

import pytest

from tests.controlplane import ControlPlane

from .conftest import apply, get, poll_kubectl, resource

pytestmark = pytest.mark.controlplane


def _report_status(
    plane: ControlPlane, namespace: str, name: str, status: dict[str, object]
) -> None:
    plane.kubectl(
        "-n", namespace, "patch", "csg", name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_kubectl_scale_changes_replicas_through_the_scale_subresource(
    crds: ControlPlane, module_namespace: str
) -> None:
    apply(crds, module_namespace, resource("scaled"))
    _report_status(
        crds, module_namespace, "scaled", {"replicas": 1, "selector": "csgen.dev/instance=scaled"}
    )

    crds.kubectl("-n", module_namespace, "scale", "csg/scaled", "--replicas=3")

    assert get(crds, module_namespace, "scaled")["spec"]["replicas"] == 3
    scale = json.loads(
        crds.kubectl(
            "get", "--raw",
            f"/apis/csgen.dev/v1alpha1/namespaces/{module_namespace}"
            "/clickstreamgenerators/scaled/scale",
        ).stdout
    )  # fmt: skip
    assert scale["spec"] == {"replicas": 3}
    assert scale["status"] == {"replicas": 1, "selector": "csgen.dev/instance=scaled"}


def test_scaling_past_the_maximum_is_refused(crds: ControlPlane, module_namespace: str) -> None:
    apply(crds, module_namespace, resource("overscaled"))
    completed = crds.kubectl(
        "-n", module_namespace, "scale", "csg/overscaled", "--replicas=101", check=False
    )
    assert completed.returncode == 1
    assert "spec.replicas in body should be less than or equal to 100" in completed.stderr


def test_kubectl_get_shows_the_columns_and_wide_adds_the_stream(
    crds: ControlPlane, module_namespace: str
) -> None:
    manifest = resource("columns")
    manifest["spec"].update(replicas=3, paused=True, eventsPerSecond=2.5)
    apply(crds, module_namespace, manifest)
    _report_status(
        crds, module_namespace, "columns",
        {
            "replicas": 3, "readyReplicas": 2, "generatingReplicas": 0,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "Paused",
                 "message": "spec.paused is true", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ],
        },
    )  # fmt: skip

    table = crds.kubectl("-n", module_namespace, "get", "csg", "columns").stdout.splitlines()
    assert table[0].split() == [
        "NAME", "DESIRED", "READY", "GENERATING", "PAUSED", "RATE", "STATUS", "AGE",
    ]  # fmt: skip
    assert table[1].split()[:7] == ["columns", "3", "2", "0", "true", "2.5", "Paused"]

    wide = crds.kubectl("-n", module_namespace, "get", "csg", "columns", "-o", "wide").stdout
    header, row = wide.splitlines()
    assert header.split()[-1] == "STREAM"
    assert row.split()[-1] == "clicks"


def test_kubectl_explain_describes_the_model(crds: ControlPlane) -> None:
    # The OpenAPI document is published a moment after the CRD is established.
    explained = poll_kubectl(
        crds, "explain", "clickstreamgenerator.spec.model",
        until=lambda done: done.returncode == 0 and "groupClickProbability" in done.stdout,
        message="kubectl explain did not describe spec.model",
    ).stdout  # fmt: skip
    assert "The click model" in explained
    for field in ("baseUrl", "users", "groups", "seed"):
        assert field in explained
    groups = crds.kubectl("explain", "csg.spec.model.groups.weight").stdout
    assert "the weights of all groups sum to 1" in " ".join(groups.split())


def test_the_clickstream_category_and_short_name_list_it(
    crds: ControlPlane, module_namespace: str
) -> None:
    apply(crds, module_namespace, resource("listed"))

    by_category = poll_kubectl(
        crds, "-n", module_namespace, "get", "clickstream", "-o", "name",
        until=lambda done: done.returncode == 0,
        message="kubectl get clickstream did not resolve the category",
    ).stdout.split()  # fmt: skip
    assert "clickstreamgenerator.csgen.dev/listed" in by_category
    by_short_name = crds.kubectl("-n", module_namespace, "get", "csg", "-o", "name").stdout
    assert "clickstreamgenerator.csgen.dev/listed" in by_short_name.split()
