"""Operator latency on the local control plane: pause and scale, as a user runs them.

Everything is real but the kubelet: kube-apiserver, etcd and
kube-controller-manager from ``tests/controlplane``, the shipped CRDs and
RBAC, the operator as its ServiceAccount (``tests/operator_e2e/harness.py``),
and the pod runner, which runs each generator pod as a local ``csgen run``
process writing to kinesalite. On a small machine the pods compete for the
same cores with the control plane and the operator; the figures say how the
whole stack behaves there, not how a cluster with one core per pod would.

- ``pause_<N>_pods_ms``: from starting ``kubectl patch … spec.paused=true`` to
  the scheduled time of the last event any of the N pods wrote; each pod makes
  10 events/s, so the figure is exact to about 100 ms.
- ``pause_<N>_pods_condition_ms``: until ``Paused=True`` was seen in the status.
- ``scale_2_to_10_ms``: from starting ``kubectl scale --replicas=10`` (from 2)
  to the first event of the last of the ten generators to produce.

The resource is paused and resumed (and scaled down and up again) for each
cycle, so cycles share the pods' and the operator's start-up cost once.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from tests.controlplane import ControlPlane, PodRunner, building, wait_for
from tests.emulators import Kinesalite, create_stream, kinesis_client, unique_stream_name
from tests.operator_e2e.harness import (
    OperatorProcess,
    Resource,
    generating,
    install,
    parse_time,
    read_events,
    service_account_kubeconfig,
)

from benchmarks.measuring import Measured, say

PER_POD_RATE = 10.0


class Fleet:
    """The control plane, the pod runner, kinesalite and the operator, for one benchmark."""

    def __init__(self, plane: ControlPlane, kinesalite: Kinesalite, namespace: str):
        self.plane = plane
        self.endpoint = kinesalite.endpoint_url
        self.namespace = namespace

    def create(self, name: str, replicas: int) -> tuple[Resource, str]:
        """A resource with ``replicas`` generators, each at `PER_POD_RATE`, into a new stream."""
        stream = unique_stream_name(name)
        create_stream(kinesis_client(self.endpoint), stream, shards=4)
        body = {
            "apiVersion": "csgen.dev/v1alpha1",
            "kind": "ClickstreamGenerator",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "replicas": replicas,
                "eventsPerSecond": PER_POD_RATE * replicas,
                "kinesis": {
                    "streamName": stream,
                    "region": "us-east-1",
                    "endpointUrl": self.endpoint,
                },
            },
        }
        self.plane.kubectl("apply", "-f", "-", input=orjson.dumps(body).decode())
        resource = Resource(self.plane, self.namespace, name)
        resource.wait(generating(replicas), f"{replicas} generators running", timeout=600)
        return resource, stream

    def delete(self, resource: Resource) -> None:
        resource.kubectl("delete", "csg", resource.name, "--wait=true", check=False)

        def gone() -> bool:
            return not resource.pods()

        wait_for(gone, timeout=300, interval=1.0, message="the pods did not go away")


@contextlib.contextmanager
def fleet() -> Iterator[Fleet]:
    """Start everything; stop everything, whatever happens."""
    binaries = building.find_binaries()
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="csgen-bench-")))
        plane = stack.enter_context(ControlPlane(binaries=binaries))
        stack.enter_context(PodRunner(plane.kubeconfig))
        kinesalite = stack.enter_context(Kinesalite())
        install(plane)
        namespace = f"bench-{uuid.uuid4().hex[:6]}"
        plane.kubectl("create", "namespace", namespace)
        wait_for(
            lambda: all(
                plane.kubectl("get", kind, name, "-n", namespace, check=False).returncode == 0
                for kind, name in (("serviceaccount", "default"), ("configmap", "kube-root-ca.crt"))
            ),
            timeout=60,
            message="the namespace was not set up",
        )
        kubeconfig = service_account_kubeconfig(plane, scratch / "operator.kubeconfig")
        operator = OperatorProcess(kubeconfig, namespace, scratch / "operator.log")
        operator.start()
        stack.callback(operator.stop)
        yield Fleet(plane, kinesalite, namespace)


def _events(fleet: Fleet, stream: str) -> list[dict[str, Any]]:
    return read_events(fleet.endpoint, stream)


def _condition_true(resource: Resource, kind: str) -> Callable[[dict[str, Any]], bool]:
    def check(body: dict[str, Any]) -> bool:
        conditions = (body.get("status") or {}).get("conditions", [])
        return any(c["type"] == kind and c["status"] == "True" for c in conditions)

    return check


def measure_pause(fleet: Fleet, pods: int, cycles: int) -> Measured:
    resource, stream = fleet.create(f"pause-{pods}", pods)
    result = Measured(notes={"pods": pods, "events_per_second_per_pod": PER_POD_RATE})
    try:
        for cycle in range(cycles):
            sent = time.time()
            resource.patch_spec(paused=True)
            resource.wait(_condition_true(resource, "Paused"), "Paused=True", timeout=300)
            confirmed = time.time()
            # Let the sinks' last batches (100 ms linger) reach the stream.
            time.sleep(2.0)
            last = max(parse_time(e["event_time"]) for e in _events(fleet, stream))
            result.runs.append(
                {
                    f"pause_{pods}_pods_ms": (last - sent) * 1000,
                    f"pause_{pods}_pods_condition_ms": (confirmed - sent) * 1000,
                }
            )
            say(f"pause of {pods} pods, cycle {cycle + 1}/{cycles}: {result.runs[-1]}")
            resource.patch_spec(paused=False)
            resource.wait(generating(pods), "generation resumed", timeout=300)
            time.sleep(2.0)
    finally:
        fleet.delete(resource)
    return result


def _first_event_times(events: list[dict[str, Any]], *, since: float) -> dict[str, float]:
    # Per producer, the scheduled time of its first event at or after ``since``.
    first: dict[str, float] = {}
    for event in events:
        due = parse_time(event["event_time"])
        if due >= since:
            producer = event["producer_id"]
            first[producer] = min(first.get(producer, due), due)
    return first


def measure_scale(fleet: Fleet, cycles: int) -> Measured:
    resource, stream = fleet.create("scale", 2)
    result = Measured(notes={"from": 2, "to": 10, "events_per_second_per_pod": PER_POD_RATE})
    try:
        for cycle in range(cycles):
            sent = time.time()
            resource.kubectl("scale", f"csg/{resource.name}", "--replicas=10")
            deadline = time.monotonic() + 600
            while len(first := _first_event_times(_events(fleet, stream), since=sent)) < 10:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(first)} of ten generators produced")
                time.sleep(1.0)
            result.runs.append({"scale_2_to_10_ms": (max(first.values()) - sent) * 1000})
            say(f"scale 2 -> 10, cycle {cycle + 1}/{cycles}: {result.runs[-1]}")
            resource.kubectl("scale", f"csg/{resource.name}", "--replicas=2")
            resource.wait(generating(2), "back to two generators", timeout=300)
            wait_for(lambda: len(resource.pods()) == 2, timeout=300, interval=1.0)
    finally:
        fleet.delete(resource)
    return result
