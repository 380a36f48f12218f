"""The CRD's schema on a real kube-apiserver: what it refuses, how it says so, what it fills in."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.controlplane import ControlPlane

from .conftest import apply, get, resource

pytestmark = pytest.mark.controlplane

Spec = dict[str, Any]
_names = (f"bad-{n}" for n in itertools.count())


def _full_spec() -> Spec:
    return {
        "replicas": 2,
        "eventsPerSecond": 20,
        "model": {
            "baseUrl": "https://shop.example.com",
            "users": {"min": 1, "max": 1000},
            "groupClickProbability": 0.2,
            "groups": [
                {"id": 1, "name": "Garden", "weight": 0.5, "products": {"min": 1, "max": 10}},
                {"id": 2, "name": "Toys", "weight": 0.5, "products": {"min": 20, "max": 30}},
            ],
        },
        "kinesis": {"streamName": "clicks", "region": "eu-west-1"},
    }


def _with(change: Callable[[Spec], None]) -> Spec:
    spec = _full_spec()
    change(spec)
    return spec


def _set(path: str, value: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        *parents, last = path.split(".")
        target: Any = spec
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


def _drop(path: str) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        *parents, last = path.split(".")
        target: Any = spec
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return change


INVALID = {
    "negative rate": (
        _set("eventsPerSecond", -5),
        "spec.eventsPerSecond in body should be greater than 0",
    ),
    "zero rate": (
        _set("eventsPerSecond", 0),
        "spec.eventsPerSecond in body should be greater than 0",
    ),
    "rate above the maximum": (
        _set("eventsPerSecond", 2_000_000),
        "spec.eventsPerSecond in body should be less than or equal to 1000000",
    ),
    "replicas above the maximum": (
        _set("replicas", 101),
        "spec.replicas in body should be less than or equal to 100",
    ),
    "negative replicas": (
        _set("replicas", -1),
        "spec.replicas in body should be greater than or equal to 0",
    ),
    "users min above max": (
        _set("model.users", {"min": 50, "max": 10}),
        "spec.model.users: Invalid value: "
        "model.users.min must be less than or equal to model.users.max",
    ),
    "negative user id": (
        _set("model.users", {"min": -1, "max": 10}),
        "spec.model.users.min in body should be greater than or equal to 0",
    ),
    "products min above max": (
        _set("model.groups.1.products", {"min": 9, "max": 3}),
        "spec.model.groups[1].products: Invalid value: "
        "products.min must be less than or equal to products.max",
    ),
    "unknown partition key mode": (
        _set("kinesis.partitionKey", "shard"),
        'spec.kinesis.partitionKey: Unsupported value: "shard": supported values: "user", "random"',
    ),
    "missing streamName": (_drop("kinesis.streamName"), "spec.kinesis.streamName: Required value"),
    "empty streamName": (
        _set("kinesis.streamName", ""),
        "spec.kinesis.streamName in body should be at least 1 chars long",
    ),
    "missing region": (_drop("kinesis.region"), "spec.kinesis.region: Required value"),
    "missing kinesis": (_drop("kinesis"), "spec.kinesis: Required value"),
    "weight above 1": (
        _set("model.groups.0.weight", 1.5),
        "spec.model.groups[0].weight in body should be less than or equal to 1",
    ),
    "group-click probability above 1": (
        _set("model.groupClickProbability", 1.2),
        "spec.model.groupClickProbability in body should be less than or equal to 1",
    ),
    "duplicate group ids": (_set("model.groups.1.id", 1), "model.groups must have unique ids"),
    "empty group name": (
        _set("model.groups.0.name", ""),
        "spec.model.groups[0].name in body should be at least 1 chars long",
    ),
    "group without products": (
        _drop("model.groups.0.products"),
        "spec.model.groups[0].products: Required value",
    ),
    "no groups": (
        _set("model.groups", []),
        "spec.model.groups in body should have at least 1 items",
    ),
    "baseUrl not http": (
        _set("model.baseUrl", "ftp://shop.example.com"),
        "spec.model.baseUrl in body should match '^https?://'",
    ),
    "baseUrl with a trailing slash": (
        _set("model.baseUrl", "https://shop.example.com/"),
        "model.baseUrl must not end with a slash",
    ),
    "endpointUrl not http": (
        _set("kinesis.endpointUrl", "localhost:4567"),
        "spec.kinesis.endpointUrl in body should match '^https?://'",
    ),
    "unknown pull policy": (
        _set("imagePullPolicy", "Sometimes"),
        'spec.imagePullPolicy: Unsupported value: "Sometimes"',
    ),
    "bad quantity": (
        _set("resources", {"requests": {"cpu": "lots"}}),
        "spec.resources.requests.cpu in body should match",
    ),
    "negative seed": (
        _set("model.seed", -3),
        "spec.model.seed in body should be greater than or equal to 0",
    ),
}


@pytest.mark.parametrize(("change", "message"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_resource_is_refused_with_a_readable_message(
    crds: ControlPlane, module_namespace: str, change: Callable[[Spec], None], message: str
) -> None:
    completed = apply(crds, module_namespace, resource(next(_names), _with(change)), check=False)
    assert completed.returncode == 1, completed.stdout
    assert message in completed.stderr


def test_a_name_too_long_for_its_pods_is_refused(crds: ControlPlane, module_namespace: str) -> None:
    completed = apply(crds, module_namespace, resource("x" * 53), check=False)
    assert completed.returncode == 1, completed.stdout
    assert "metadata.name must be at most 52 characters" in completed.stderr


def test_every_error_of_a_resource_is_reported_at_once(
    crds: ControlPlane, module_namespace: str
) -> None:
    spec = _with(_set("eventsPerSecond", -1))
    spec["model"]["users"] = {"min": 9, "max": 1}
    completed = apply(crds, module_namespace, resource("two-errors", spec), check=False)
    assert completed.returncode == 1
    assert "spec.eventsPerSecond in body should be greater than 0" in completed.stderr
    assert "model.users.min must be less than or equal to model.users.max" in completed.stderr


def test_weights_that_do_not_sum_to_one_are_left_to_the_operator(
    crds: ControlPlane, module_namespace: str
) -> None:
    # The operator reports a wrong sum in the Ready condition; the schema accepts it.
    spec = _with(_set("model.groups.0.weight", 0.1))
    apply(crds, module_namespace, resource("weights-half", spec))
    assert (
        get(crds, module_namespace, "weights-half")["spec"]["model"]["groups"][0]["weight"] == 0.1
    )


def test_stream_name_cannot_change_but_the_rest_can(
    crds: ControlPlane, module_namespace: str
) -> None:
    apply(crds, module_namespace, resource("immutable", _full_spec()))

    moved = resource("immutable", _with(_set("kinesis.streamName", "other")))
    completed = apply(crds, module_namespace, moved, check=False)
    assert completed.returncode == 1, completed.stdout
    assert "kinesis.streamName is immutable" in completed.stderr
    patched = crds.kubectl(
        "-n", module_namespace, "patch", "csg", "immutable", "--type=merge",
        "-p", '{"spec": {"kinesis": {"streamName": "other"}}}', check=False,
    )  # fmt: skip
    assert patched.returncode == 1
    assert "create another ClickstreamGenerator to write to another stream" in patched.stderr

    # Everything else may change, the region and the rate included.
    changed = resource("immutable", _with(_set("kinesis.region", "us-east-1")))
    changed["spec"]["eventsPerSecond"] = 0.2
    apply(crds, module_namespace, changed)
    stored = get(crds, module_namespace, "immutable")["spec"]
    assert stored["kinesis"]["streamName"] == "clicks"
    assert (stored["kinesis"]["region"], stored["eventsPerSecond"]) == ("us-east-1", 0.2)


def test_a_minimal_resource_gets_every_default(crds: ControlPlane, module_namespace: str) -> None:
    apply(crds, module_namespace, resource("minimal"))

    spec = get(crds, module_namespace, "minimal")["spec"]
    assert spec == {
        "replicas": 1,
        "paused": False,
        "eventsPerSecond": 10,
        "image": "ghcr.io/csgen/csgen:0.1.0",
        "model": {
            "baseUrl": "https://webstore.demo.com",
            "users": {"min": 1, "max": 100},
            "groupClickProbability": 0.1,
            "groups": [
                {"id": 1, "name": "Books", "weight": 0.15, "products": {"min": 2001, "max": 2100}},
                {"id": 2, "name": "Movies", "weight": 0.85, "products": {"min": 1, "max": 1000}},
            ],
        },
        "kinesis": {
            "streamName": "clicks",
            "region": "eu-west-1",
            "partitionKey": "user",
            "aggregation": False,
        },
    }


def test_a_partial_model_keeps_what_it_says_and_defaults_the_rest(
    crds: ControlPlane, module_namespace: str
) -> None:
    spec = copy.deepcopy(resource("partial")["spec"])
    spec["model"] = {"users": {"min": 5, "max": 6}, "seed": 7}
    apply(crds, module_namespace, resource("partial", spec))

    model = get(crds, module_namespace, "partial")["spec"]["model"]
    assert model["users"] == {"min": 5, "max": 6}
    assert model["seed"] == 7
    assert [group["name"] for group in model["groups"]] == ["Books", "Movies"]
    assert model["baseUrl"] == "https://webstore.demo.com"


def test_an_unknown_field_is_refused_by_default_and_pruned_without_validation(
    crds: ControlPlane, module_namespace: str
) -> None:
    manifest = resource("pruned")
    manifest["spec"]["colour"] = "blue"
    strict = apply(crds, module_namespace, manifest, check=False)
    assert strict.returncode == 1
    assert 'unknown field "spec.colour"' in strict.stderr

    crds.kubectl(
        "-n", module_namespace, "apply", "--validate=false", "-f", "-", input=json.dumps(manifest)
    )
    assert "colour" not in get(crds, module_namespace, "pruned")["spec"]
