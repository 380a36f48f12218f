"""Two operator replicas with kopf peering: one works, the other stands by and takes over."""

from __future__ import annotations

from collections.abc import Iterator

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
    service_account_kubeconfig,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.kinesalite, pytest.mark.slow]

PEERING = "csgen-ha"


@pytest.fixture
def pair(
    control_plane: ControlPlane,
    pod_runner: PodRunner,
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    del pod_runner  # pods must run, but are not touched directly
    install(control_plane)
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": PEERING, "namespace": namespace},
    }
    control_plane.kubectl("apply", "-f", "-", input=orjson.dumps(peering).decode())
    scratch = tmp_path_factory.mktemp("ha")
    kubeconfig = service_account_kubeconfig(control_plane, scratch / "operator.kubeconfig")
    extra = ["--peering", PEERING]
    leader = OperatorProcess(
        kubeconfig, namespace, scratch / "leader.log", extra=[*extra, "--priority", "200"]
    )
    standby = OperatorProcess(
        kubeconfig, namespace, scratch / "standby.log", extra=[*extra, "--priority", "100"]
    )
    leader.start()
    standby.start()
    try:
        yield leader, standby
    finally:
        leader.stop()
        standby.stop()
        for name, process in (("leader", leader), ("standby", standby)):
            print(f"\n--- {name} operator log (tail) ---\n" + process.tail(60))


@pytest.mark.timeout(400)
def test_the_standby_pauses_then_takes_over_when_the_leader_goes(
    control_plane: ControlPlane,
    namespace: str,
    kinesalite: Kinesalite,
    pair: tuple[OperatorProcess, OperatorProcess],
) -> None:
    leader, standby = pair

    # Both replicas keep a record in the peering object. (A standby can be paused
    # from its start without a word in its log, so the object is what is checked.)
    def both_recorded() -> bool:
        answer = control_plane.kubectl(
            "get", "kopfpeering", PEERING, "-n", namespace, "-o", "json", check=False
        )
        if answer.returncode != 0:
            return False
        records = (orjson.loads(answer.stdout).get("status") or {}).values()
        return sorted(r.get("priority") for r in records if isinstance(r, dict)) == [100, 200]

    wait_for(both_recorded, timeout=120, message="the two operators did not both register")
    stream = unique_stream_name("ha")
    create_stream(kinesis_client(kinesalite.endpoint_url), stream, shards=1)
    manifest = {
        "apiVersion": "csgen.dev/v1alpha1",
        "kind": "ClickstreamGenerator",
        "metadata": {"name": "ha", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "eventsPerSecond": 5,
            "kinesis": {
                "streamName": stream,
                "region": "us-east-1",
                "endpointUrl": kinesalite.endpoint_url,
            },
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=orjson.dumps(manifest).decode())
    csg = Resource(control_plane, namespace, "ha")
    csg.wait(generating(1, 5.0), "the leader runs the resource", timeout=90)

    # A change while both run is handled by the leader alone. (kopf may let a
    # standby handle what its very first listing returned before it paused;
    # reconciliation is idempotent, so that is harmless.)
    before = standby.tail(10_000).count("Updating is processed")
    csg.patch_spec(eventsPerSecond=8)
    csg.wait(generating(1, 8.0), "the leader applied the change", timeout=60)
    assert "Updating is processed" in leader.tail(10_000)
    assert standby.tail(10_000).count("Updating is processed") == before

    # The leader leaves; the standby resumes and serves the next change.
    resumed = standby.tail(10_000).count("Resuming operations after the pause")
    leader.stop()
    wait_for(
        lambda: standby.tail(10_000).count("Resuming operations after the pause") > resumed,
        timeout=90,
        message="the standby did not resume after the leader left",
    )
    csg.kubectl("scale", "csg/ha", "--replicas=2")
    csg.wait(generating(2, 8.0), "the standby scaled the resource", timeout=90)
    assert standby.tail(10_000).count("Updating is processed") > before
