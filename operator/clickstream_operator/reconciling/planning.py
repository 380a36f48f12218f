"""Deciding, without any I/O, what each generator should do and what the status says.

Input: the resource's spec, the pods that exist, what each pod's control API
reported, and what the operator remembers of each pod (from the resource's
``status.producers``, so it survives an operator restart). Output: a plan per
pod (configure it, start it, stop it, or leave it) and the status to write.

The rules:

- The total rate is split evenly over the pods that should be generating;
  when pods come or go the shares follow, so the total holds.
- Shard slices come from the pod's ordinal and ``spec.replicas``.
- Paused: every generator is stopped; ``Paused=True`` once all confirm.
- Not paused: every generator runs. A pod that booted idle is configured and
  started. A generator stopped by hand (same boot, and it was started for the
  current generation of the spec) is left stopped until the spec changes;
  status says so. A failed one is started again (and ``Degraded`` says why).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clickstream_operator.resources.pods import ObservedPod
from clickstream_operator.resources.specs import GeneratorSpec

RUNNING = "running"
STOPPED = "stopped"
IDLE = "idle"
FAILED = "failed"
STOPPING = "stopping"


class Action(enum.Enum):
    """What to do to one generator."""

    NOTHING = "nothing"
    START = "start"
    STOP = "stop"


@dataclass(frozen=True)
class Remembered:
    """What the operator last did to a pod (persisted in ``status.producers``)."""

    boot_id: str | None = None
    started_generation: int | None = None


@dataclass(frozen=True)
class PodPlan:
    """What to do to one pod."""

    pod: ObservedPod
    config: dict[str, Any] | None
    """The configuration to PUT, or None if the pod already has it."""
    action: Action
    note: str = ""


@dataclass
class Plan:
    """The plans for all pods, and the share of the rate each generator gets."""

    pods: list[PodPlan] = field(default_factory=list)
    share: float = 0.0


def desired_config(spec: GeneratorSpec, pod: ObservedPod, share: float) -> dict[str, Any]:
    """The control API body a pod should have."""
    return {
        "eventsPerSecond": share,
        "shard": {"index": pod.index, "count": spec.replicas},
        "model": spec.model_document,
        "partitionKey": spec.kinesis.partition_key,
    }


def config_matches(
    status: Mapping[str, Any], config: Mapping[str, Any], model_fingerprint: str
) -> bool:
    """Whether a pod's reported configuration is the desired one."""
    rate = status.get("target_rate")
    return (
        isinstance(rate, int | float)
        and abs(rate - config["eventsPerSecond"]) <= 1e-9 * max(1.0, abs(rate))
        and status.get("shard_index") == config["shard"]["index"]
        and status.get("shard_count") == config["shard"]["count"]
        and status.get("model_fingerprint", model_fingerprint) == model_fingerprint
        and status.get("partition_key", config["partitionKey"]) == config["partitionKey"]
    )


def plan(
    spec: GeneratorSpec,
    pods: Sequence[ObservedPod],
    statuses: Mapping[str, Mapping[str, Any] | None],
    memory: Mapping[str, Remembered],
    applied: Mapping[str, str],
) -> Plan:
    """Decide what each reachable pod should do.

    ``statuses`` maps pod names to their ``/v1/status`` (None if unreachable);
    ``applied`` maps ``pod/boot`` to the fingerprint of the config last PUT.
    """
    reachable = [
        pod
        for pod in pods
        if not pod.terminating and pod.index < spec.replicas and statuses.get(pod.name) is not None
    ]
    # Who should be generating: everyone reachable, unless paused or stopped by hand.
    generating = []
    held = set()
    for pod in reachable:
        status = statuses[pod.name] or {}
        if not spec.paused and _stopped_by_hand(spec, status, memory.get(pod.name)):
            held.add(pod.name)
        elif not spec.paused:
            generating.append(pod)
    share = spec.events_per_second / len(generating) if generating else 0.0
    result = Plan(share=share)
    for pod in reachable:
        status = statuses[pod.name] or {}
        state = status.get("state")
        config = desired_config(spec, pod, share if share > 0 else spec.events_per_second)
        applied_as = fingerprint(config)
        key = f"{pod.name}/{status.get('boot_id')}"
        needs_config = applied.get(key) != applied_as or not config_matches(
            status, config, spec.model_fingerprint
        )
        if spec.paused:
            action = Action.STOP if state in (RUNNING,) else Action.NOTHING
            result.pods.append(PodPlan(pod, None, action))
            continue
        if pod.name in held:
            result.pods.append(
                PodPlan(
                    pod,
                    config if needs_config else None,
                    Action.NOTHING,
                    note="stopped by hand; starts again at the next change of the spec",
                )
            )
            continue
        action = Action.START if state in (IDLE, STOPPED, FAILED) else Action.NOTHING
        result.pods.append(PodPlan(pod, config if needs_config else None, action))
    return result


def _stopped_by_hand(
    spec: GeneratorSpec, status: Mapping[str, Any], remembered: Remembered | None
) -> bool:
    return (
        status.get("state") == STOPPED
        and remembered is not None
        and remembered.boot_id == status.get("boot_id")
        and remembered.started_generation == spec.generation
    )


def fingerprint(config: Mapping[str, Any]) -> str:
    """A canonical text of a configuration, to compare it with the one applied."""
    return json.dumps(config, sort_keys=True)
