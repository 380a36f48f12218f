"""Planning and rendering, without a cluster: what each pod should do, and what runs it."""

from __future__ import annotations

from typing import Any

import pytest

from clickstream_operator.reconciling.planning import Action, Remembered, plan
from clickstream_operator.reconciling.reporting import Observation, build_status
from clickstream_operator.resources.pods import ObservedPod
from clickstream_operator.resources.rendering import (
    generator_args,
    render_service,
    render_statefulset,
    render_token_secret,
    selector_string,
)
from clickstream_operator.resources.specs import InvalidSpec, read_spec


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "clicks", "namespace": "ns", "uid": "u-1", "generation": 4},
        "spec": {
            "replicas": 3,
            "eventsPerSecond": 30,
            "kinesis": {"streamName": "s", "region": "eu-west-1"},
            **spec,
        },
    }


def _pods(count: int) -> list[ObservedPod]:
    return [
        ObservedPod(f"clicks-{i}", i, f"127.0.0.{10 + i}", True, "Running") for i in range(count)
    ]


def _status(state: str, boot: str = "b", **extra: Any) -> dict[str, Any]:
    return {"state": state, "boot_id": boot, **extra}


def test_idle_pods_are_configured_with_their_share_and_slice_then_started() -> None:
    spec = read_spec(_body())
    pods = _pods(3)
    result = plan(spec, pods, {p.name: _status("idle") for p in pods}, {}, {})
    assert result.share == 10.0
    assert [p.action for p in result.pods] == [Action.START] * 3
    assert [p.config["shard"] for p in result.pods if p.config] == [
        {"index": 0, "count": 3},
        {"index": 1, "count": 3},
        {"index": 2, "count": 3},
    ]
    assert all(p.config and p.config["eventsPerSecond"] == 10.0 for p in result.pods)


def test_the_total_rate_holds_when_a_pod_is_unreachable() -> None:
    spec = read_spec(_body())
    pods = _pods(3)
    statuses = {"clicks-0": _status("running"), "clicks-1": None, "clicks-2": _status("running")}
    result = plan(spec, pods, statuses, {}, {})
    assert result.share == 15.0
    assert [p.pod.name for p in result.pods] == ["clicks-0", "clicks-2"]


def test_paused_stops_only_running_generators() -> None:
    spec = read_spec(_body(paused=True))
    pods = _pods(3)
    statuses = {
        "clicks-0": _status("running"),
        "clicks-1": _status("idle"),
        "clicks-2": _status("stopped"),
    }
    actions = [p.action for p in plan(spec, pods, statuses, {}, {}).pods]
    assert actions == [Action.STOP, Action.NOTHING, Action.NOTHING]


def test_a_stop_by_hand_is_respected_until_the_spec_changes() -> None:
    pods = _pods(1)
    statuses = {"clicks-0": _status("stopped", boot="b1")}
    memory = {"clicks-0": Remembered("b1", 4)}
    same = plan(read_spec(_body(replicas=1)), pods, statuses, memory, {})
    assert same.pods[0].action is Action.NOTHING
    assert "by hand" in same.pods[0].note
    newer = _body(replicas=1)
    newer["metadata"]["generation"] = 5
    assert plan(read_spec(newer), pods, statuses, memory, {}).pods[0].action is Action.START


def test_a_restarted_pod_is_started_again_even_if_it_was_stopped_before() -> None:
    pods = _pods(1)
    statuses = {"clicks-0": _status("idle", boot="new")}
    memory = {"clicks-0": Remembered("old", 4)}
    assert (
        plan(read_spec(_body(replicas=1)), pods, statuses, memory, {}).pods[0].action
        is Action.START
    )


def test_pods_beyond_the_desired_replicas_are_left_alone() -> None:
    spec = read_spec(_body(replicas=2))
    pods = _pods(3)
    result = plan(spec, pods, {p.name: _status("running") for p in pods}, {}, {})
    assert [p.pod.name for p in result.pods] == ["clicks-0", "clicks-1"]
    assert result.share == 15.0


def test_weights_that_do_not_sum_to_one_are_an_invalid_spec_naming_the_field() -> None:
    groups = [
        {"id": 1, "name": "A", "weight": 0.5, "products": {"min": 1, "max": 2}},
        {"id": 2, "name": "B", "weight": 0.4, "products": {"min": 1, "max": 2}},
    ]
    with pytest.raises(InvalidSpec, match=r"spec\.model\.groups\[\*\]\.weight.*sum to 1"):
        read_spec(_body(model={"groups": groups}))


def test_the_pod_template_carries_no_rate_model_or_pause() -> None:
    rendered = render_statefulset(read_spec(_body()))
    text = repr(rendered["spec"]["template"])
    assert "30" not in generator_args(read_spec(_body()))
    for word in ("paused", "eventsPerSecond", "webstore", "Movies"):
        assert word not in text
    # A rate or model change does not change the template, so pods do not restart.
    other = render_statefulset(read_spec(_body(eventsPerSecond=999, paused=True)))
    assert other["spec"]["template"] == rendered["spec"]["template"]


def test_rendered_objects_are_owned_and_selected_by_the_resource() -> None:
    spec = read_spec(_body())
    sts = render_statefulset(spec)
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["replicas"] == 3
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in sts["spec"]["selector"]["matchLabels"].items())
    for obj in (sts, render_service(spec), render_token_secret(spec)):
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "ClickstreamGenerator",
            "clicks",
            "u-1",
            True,
        )
    assert render_service(spec)["spec"]["clusterIP"] == "None"
    assert selector_string(spec) == "app.kubernetes.io/name=csgen,csgen.dev/generator=clicks"
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert sts["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_each_token_secret_is_new_and_random() -> None:
    spec = read_spec(_body())
    assert render_token_secret(spec)["data"] != render_token_secret(spec)["data"]


def test_status_sums_pods_and_says_ready_when_all_generate() -> None:
    spec = read_spec(_body())
    pods = _pods(3)
    statuses = {
        p.name: _status("running", acknowledged=100, failed=1, achieved_rate=10.0) for p in pods
    }
    status = build_status(spec, Observation(pods, statuses), {}, selector_string(spec))
    assert status["generatingReplicas"] == 3
    assert status["eventsAcknowledged"] == 300
    assert status["eventsFailed"] == 3
    assert status["achievedRate"] == 30.0
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "True",
        "Generating",
        4,
    )


def test_paused_is_true_only_once_every_generator_confirmed() -> None:
    spec = read_spec(_body(paused=True))
    pods = _pods(2)
    pausing = {"clicks-0": _status("stopped"), "clicks-1": _status("running")}
    status = build_status(spec, Observation(pods, pausing), {}, "")
    paused = next(c for c in status["conditions"] if c["type"] == "Paused")
    assert (paused["status"], paused["reason"]) == ("False", "Pausing")
    done = {"clicks-0": _status("stopped"), "clicks-1": _status("stopped")}
    status = build_status(spec, Observation(pods, done), status, "")
    paused = next(c for c in status["conditions"] if c["type"] == "Paused")
    assert (paused["status"], paused["reason"]) == ("True", "AllStopped")


def test_unreachable_pods_make_the_resource_degraded() -> None:
    spec = read_spec(_body(replicas=1))
    pods = _pods(1)
    seen = Observation(pods, {"clicks-0": None}, errors={"clicks-0": "GET /v1/status: refused"})
    status = build_status(spec, seen, {}, "")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "PodUnreachable")
    assert "refused" in degraded["message"]


def test_transition_times_change_only_with_the_status() -> None:
    spec = read_spec(_body(replicas=1))
    pods = _pods(1)
    first = build_status(spec, Observation(pods, {"clicks-0": _status("running")}), {}, "")
    for c in first["conditions"]:
        c["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    second = build_status(spec, Observation(pods, {"clicks-0": _status("running")}), first, "")
    assert all(c["lastTransitionTime"] == "2000-01-01T00:00:00Z" for c in second["conditions"])
