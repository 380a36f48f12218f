"""The operator end to end: a real API server, the shipped CRDs and RBAC, real generators.

Generator pods run through the local pod runner as ``csgen run`` processes
writing to kinesalite on loopback; the operator runs as its ServiceAccount.
The tests in this module share one resource and run in order, as a user's
session would: create, observe, pause, resume, scale, kill, restart, delete.
"""

from __future__ import annotations

import base64
import os
import signal
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.controlplane.pods import PodRunner
from tests.controlplane.running import ControlPlane
from tests.emulators import Kinesalite, create_stream, kinesis_client, unique_stream_name
from tests.operator_e2e.harness import (
    OperatorProcess,
    Resource,
    generating,
    install,
    parse_time,
    read_events,
    service_account_kubeconfig,
    stays,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.kinesalite, pytest.mark.slow]

NAME = "trio"
RATE = 60.0


class Env:
    """Everything the tests of this module share."""

    def __init__(
        self,
        plane: ControlPlane,
        runner: PodRunner,
        namespace: str,
        endpoint: str,
        stream: str,
        operator: OperatorProcess,
    ):
        self.plane = plane
        self.runner = runner
        self.namespace = namespace
        self.endpoint = endpoint
        self.stream = stream
        self.operator = operator
        self.csg = Resource(plane, namespace, NAME)


@pytest.fixture(scope="module")
def env(
    control_plane: ControlPlane,
    pod_runner: PodRunner,
    module_namespace: str,
    kinesalite: Kinesalite,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:
    install(control_plane)
    scratch = tmp_path_factory.mktemp("operator")
    kubeconfig = service_account_kubeconfig(control_plane, scratch / "operator.kubeconfig")
    stream = unique_stream_name("operator")
    create_stream(kinesis_client(kinesalite.endpoint_url), stream, shards=4)
    operator = OperatorProcess(kubeconfig, module_namespace, scratch / "operator.log")
    operator.start()
    environment = Env(
        control_plane, pod_runner, module_namespace, kinesalite.endpoint_url, stream, operator
    )
    try:
        yield environment
    finally:
        operator.stop()
        print("\n--- operator log (tail) ---\n" + operator.tail())


def _manifest(env: Env, **spec: Any) -> str:
    body = {
        "apiVersion": "csgen.dev/v1alpha1",
        "kind": "ClickstreamGenerator",
        "metadata": {"name": NAME, "namespace": env.namespace},
        "spec": {
            "replicas": 3,
            "eventsPerSecond": RATE,
            "model": {"users": {"min": 1, "max": 99}, "seed": 5},
            "kinesis": {
                "streamName": env.stream,
                "region": "us-east-1",
                "endpointUrl": env.endpoint,
            },
            **spec,
        },
    }
    return orjson.dumps(body).decode()


def test_three_generators_write_disjoint_users_at_the_total_rate(env: Env) -> None:
    env.plane.kubectl("apply", "-f", "-", input=_manifest(env))
    env.csg.wait(generating(3, RATE), "three generators running", timeout=90)
    # Observe a 30 s window that starts once all three run.
    start = time.time() + 1.0
    end = start + 30.0
    wait_for(lambda: time.time() > end + 2.0, timeout=40, interval=0.5)
    events = read_events(env.endpoint, env.stream)
    in_window = [e for e in events if start <= parse_time(e["event_time"]) < end]
    assert abs(len(in_window) - RATE * 30) <= 0.05 * RATE * 30, len(in_window)
    users: dict[str, set[int]] = defaultdict(set)
    for event in events:
        users[event["producer_id"]].add(event["user_id"])
    assert sorted(users) == [f"{NAME}-0", f"{NAME}-1", f"{NAME}-2"]
    assert users[f"{NAME}-0"] <= set(range(1, 34))
    assert users[f"{NAME}-1"] <= set(range(34, 67))
    assert users[f"{NAME}-2"] <= set(range(67, 100))


def test_get_shows_the_printer_columns(env: Env) -> None:
    table = env.csg.kubectl("get", "csg", "-o", "wide").stdout
    header = table.splitlines()[0].split()
    for column in ("DESIRED", "READY", "GENERATING", "PAUSED", "RATE", "STATUS", "AGE", "STREAM"):
        assert column in header
    row = table.splitlines()[1].split()
    assert row[0] == NAME
    assert "Generating" in row
    assert env.stream in row


def test_pause_stops_every_generator_and_resume_restarts_them(env: Env) -> None:
    pods_before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.csg.pods()}
    env.csg.patch_spec(paused=True)
    patched = time.time()
    env.csg.wait(lambda b: env.csg.condition("Paused").get("status") == "True", "Paused=True")
    # Nothing new arrives once the pause has settled, and no pod was restarted.
    settled = patched + 2.0
    wait_for(lambda: time.time() > settled, timeout=5, interval=0.1)
    count = len(read_events(env.endpoint, env.stream))
    assert stays(lambda: len(read_events(env.endpoint, env.stream)) == count, seconds=3.0)
    late = [
        e for e in read_events(env.endpoint, env.stream) if parse_time(e["event_time"]) > settled
    ]
    assert late == []
    pods_after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.csg.pods()}
    assert pods_after == pods_before
    assert all(p["status"]["phase"] == "Running" for p in env.csg.pods())
    status = env.csg.get()["status"]
    assert status["generatingReplicas"] == 0

    env.csg.patch_spec(paused=False)
    env.csg.wait(generating(3, RATE), "generation resumed", timeout=60)
    wait_for(lambda: len(read_events(env.endpoint, env.stream)) > count, timeout=20)


def test_scale_moves_shares_and_slices_and_the_total_holds(env: Env) -> None:
    for replicas in (5, 2):
        env.csg.kubectl("scale", f"csg/{NAME}", f"--replicas={replicas}")
        body = env.csg.wait(generating(replicas, RATE), f"{replicas} generators", timeout=90)
        producers = sorted(body["status"]["producers"], key=lambda p: p["shardIndex"])
        assert [p["shardIndex"] for p in producers] == list(range(replicas))
        assert sum(p["targetRate"] for p in producers) == pytest.approx(RATE)
    # The slices follow: with 2 generators, users 1..50 and 51..99.
    mark = time.time() + 1.0
    wait_for(lambda: time.time() > mark + 3.0, timeout=10, interval=0.2)
    users: dict[str, set[int]] = defaultdict(set)
    for event in read_events(env.endpoint, env.stream):
        if parse_time(event["event_time"]) > mark:
            users[event["producer_id"]].add(event["user_id"])
    assert set(users) == {f"{NAME}-0", f"{NAME}-1"}
    assert users[f"{NAME}-0"] <= set(range(1, 51))
    assert users[f"{NAME}-1"] <= set(range(51, 100))


def test_a_stop_by_hand_is_respected_until_the_spec_changes(env: Env) -> None:
    token_b64 = env.csg.kubectl(
        "get", "secret", f"{NAME}-api-token", "-o", "jsonpath={.data.token}"
    ).stdout
    token = base64.b64decode(token_b64).decode()
    pod = next(p for p in env.csg.pods() if p["metadata"]["name"] == f"{NAME}-1")
    request = urllib.request.Request(
        f"http://{pod['status']['podIP']}:8080/v1/stop",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert orjson.loads(answer.read())["state"] == "stopped"

    def held(body: dict[str, Any]) -> bool:
        entry = next(p for p in body["status"]["producers"] if p["pod"] == f"{NAME}-1")
        others = [p for p in body["status"]["producers"] if p["pod"] != f"{NAME}-1"]
        return (
            entry["state"] == "stopped"
            and "by hand" in entry.get("message", "")
            and [p.get("targetRate") for p in others] == [RATE]
        )

    env.csg.wait(held, "the stop by hand respected and the rate moved to the other pod")
    # It stays stopped across timer rounds ...
    assert stays(lambda: held(env.csg.get()), seconds=12.0, interval=1.0)
    # ... until the spec changes.
    env.csg.patch_spec(eventsPerSecond=RATE + 1)
    env.csg.wait(generating(2, RATE + 1), "both generating after the spec change")
    env.csg.patch_spec(eventsPerSecond=RATE)
    env.csg.wait(generating(2, RATE), "back to the original rate")


def test_a_change_of_resources_rolls_the_pods(env: Env) -> None:
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.csg.pods()}
    env.csg.patch_spec(resources={"requests": {"cpu": "50m", "memory": "64Mi"}})

    def rolled(body: dict[str, Any]) -> bool:
        pods = env.csg.pods()
        uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}
        return (
            set(uids) == set(before)
            and all(uids[name] != before[name] for name in before)
            and generating(2, RATE)(body)
        )

    env.csg.wait(rolled, "pods replaced by the rolling update and generating", timeout=180)


def test_a_generator_killed_while_paused_comes_back_idle(env: Env) -> None:
    env.csg.patch_spec(paused=True)
    env.csg.wait(lambda b: env.csg.condition("Paused").get("status") == "True", "Paused=True")
    pod = f"{NAME}-0"
    old_boot = next(p["bootId"] for p in env.csg.get()["status"]["producers"] if p["pod"] == pod)
    pid = env.runner.pid_of(env.namespace, pod)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    def restarted_and_seen(body: dict[str, Any]) -> bool:
        entry = next((p for p in body["status"].get("producers", []) if p["pod"] == pod), {})
        return entry.get("bootId") not in (None, old_boot) and entry.get("state") == "idle"

    env.csg.wait(restarted_and_seen, "the restarted generator seen idle", timeout=60)
    # And the next reconciliation leaves it idle too (the timer runs every 10 s).
    generation = env.csg.get()["status"]["observedGeneration"]
    assert stays(
        lambda: (
            next(p for p in env.csg.get()["status"]["producers"] if p["pod"] == pod)["state"]
            == "idle"
        ),
        seconds=12.0,
        interval=1.0,
    )
    assert env.csg.get()["status"]["observedGeneration"] == generation
    env.csg.patch_spec(paused=False)
    env.csg.wait(generating(2, RATE), "generation resumed after the restart", timeout=60)


def test_a_restarted_operator_converges_without_duplicates(env: Env) -> None:
    env.operator.stop()
    env.csg.patch_spec(eventsPerSecond=40.0)
    env.operator.start()
    body = env.csg.wait(generating(2, 40.0), "converged after the operator restart", timeout=90)
    assert len(env.csg.pods()) == 2
    assert body["status"]["eventsAcknowledged"] > 0
    statefulsets = env.csg.kubectl("get", "statefulsets", "-o", "name").stdout.split()
    assert statefulsets == [f"statefulset.apps/{NAME}"]


def test_invalid_weights_are_a_condition_not_a_crash(env: Env) -> None:
    groups = [
        {"id": 1, "name": "A", "weight": 0.5, "products": {"min": 1, "max": 2}},
        {"id": 2, "name": "B", "weight": 0.4, "products": {"min": 1, "max": 2}},
    ]
    bad = Resource(env.plane, env.namespace, "bad")
    manifest = orjson.loads(_manifest(env, model={"groups": groups}))
    manifest["metadata"]["name"] = "bad"
    env.plane.kubectl("apply", "-f", "-", input=orjson.dumps(manifest).decode())
    body = bad.wait(
        lambda b: bad.condition("Degraded").get("reason") == "InvalidSpec", "InvalidSpec reported"
    )
    assert "sum to 1" in body["status"]["lastError"]
    bad.kubectl("delete", "csg", "bad", "--wait=false")
    # The operator is still serving the good resource.
    env.csg.wait(generating(2), "the other resource still generating")


def test_delete_removes_owned_objects_and_loses_nothing(env: Env) -> None:
    env.csg.kubectl("delete", "csg", NAME, "--wait=true", "--timeout=60s")

    def owned_gone() -> bool:
        names = env.csg.kubectl("get", "statefulsets,services,secrets", "-o", "name").stdout.split()
        return not any(NAME in name for name in names)

    wait_for(owned_gone, timeout=60, message="owned objects were not garbage-collected")
    wait_for(lambda: env.csg.pods() == [], timeout=60, message="pods did not terminate")
    # Each generator run flushed on SIGTERM: per run (event_id prefix), sequences have no gap.
    runs: dict[str, list[int]] = defaultdict(list)
    events = read_events(env.endpoint, env.stream)
    for event in events:
        runs[event["event_id"][:24]].append(event["sequence"])
    for run, sequences in runs.items():
        assert sorted(sequences) == list(range(len(sequences))), run
    assert len(set(e["event_id"] for e in events)) == len(events)
