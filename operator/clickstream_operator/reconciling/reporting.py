"""The resource's status: counts, sums over pods, and the three conditions.

Conditions follow the Kubernetes API conventions (type, status, reason,
message, lastTransitionTime, observedGeneration); a condition's
``lastTransitionTime`` changes only when its status does.

- ``Ready``: the resource does what its spec says: every desired generator
  runs (or, paused, every one is stopped). Its reason is the one-word summary
  ``kubectl get csg`` shows: Generating, Paused, Pausing, Progressing,
  ScaledToZero, InvalidSpec, Degraded.
- ``Paused``: True once every generator confirmed it stopped after a pause.
- ``Degraded``: True when a pod cannot be reached, a generator failed, or
  the spec cannot be run; the message says which and why.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clickstream_operator.reconciling.planning import RUNNING, Plan, Remembered
from clickstream_operator.resources.pods import ObservedPod
from clickstream_operator.resources.specs import GeneratorSpec


@dataclass
class Observation:
    """What one reconciliation saw and did."""

    pods: Sequence[ObservedPod]
    statuses: Mapping[str, Mapping[str, Any] | None]
    errors: Mapping[str, str] = field(default_factory=dict)
    """Pod name to the error met while talking to it."""
    memory: Mapping[str, Remembered] = field(default_factory=dict)
    plan: Plan | None = None


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    previous: Sequence[Mapping[str, Any]],
    kind: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
) -> dict[str, Any]:
    """A condition, keeping the old transition time if its status is unchanged."""
    text = "True" if status else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == text else now_rfc3339()
    return {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def invalid_status(previous: Mapping[str, Any], generation: int, problem: str) -> dict[str, Any]:
    """The status of a resource whose spec cannot be run."""
    conditions = previous.get("conditions") or []
    return {
        "observedGeneration": generation,
        "lastError": problem,
        "conditions": [
            condition(conditions, "Ready", False, "InvalidSpec", problem, generation),
            condition(conditions, "Paused", False, "InvalidSpec", problem, generation),
            condition(conditions, "Degraded", True, "InvalidSpec", problem, generation),
        ],
    }


def build_status(
    spec: GeneratorSpec,
    seen: Observation,
    previous: Mapping[str, Any],
    selector: str,
) -> dict[str, Any]:
    """The whole status of a resource after a reconciliation."""
    live = [pod for pod in seen.pods if not pod.terminating]
    statuses = seen.statuses
    generating = [p for p in live if (statuses.get(p.name) or {}).get("state") == RUNNING]
    planned = {p.pod.name: p for p in (seen.plan.pods if seen.plan else [])}
    producers = []
    acknowledged = failed = 0
    achieved = 0.0
    last_error = None
    for pod in sorted(live, key=lambda p: p.index):
        status = statuses.get(pod.name) or {}
        remembered = seen.memory.get(pod.name, Remembered())
        acknowledged += int(status.get("acknowledged", 0) or 0)
        failed += int(status.get("failed", 0) or 0)
        achieved += float(status.get("achieved_rate", 0.0) or 0.0)
        error = seen.errors.get(pod.name) or status.get("last_error")
        if (error and status.get("state") != RUNNING) or pod.name in seen.errors:
            last_error = f"{pod.name}: {error}"
        entry: dict[str, Any] = {
            "pod": pod.name,
            "shardIndex": pod.index,
            "state": status.get("state", "unreachable" if pod.ip else "pending"),
            "bootId": status.get("boot_id") or remembered.boot_id,
            "targetRate": status.get("target_rate"),
            "achievedRate": status.get("achieved_rate"),
            "acknowledged": status.get("acknowledged"),
            "failed": status.get("failed"),
        }
        if remembered.started_generation is not None:
            entry["startedGeneration"] = remembered.started_generation
        note = planned[pod.name].note if pod.name in planned else ""
        if note or seen.errors.get(pod.name):
            entry["message"] = seen.errors.get(pod.name) or note
        producers.append({k: v for k, v in entry.items() if v is not None})

    conditions = previous.get("conditions") or []
    gen = spec.generation
    desired = spec.replicas
    unreachable = [p.name for p in live if p.index < desired and p.name in seen.errors]
    failed_pods = [p.name for p in live if (statuses.get(p.name) or {}).get("state") == "failed"]
    held = [p.pod.name for p in (seen.plan.pods if seen.plan else []) if p.note]
    running_count = len(generating)
    degraded_reason, degraded_message = "AsExpected", "all generators answer"
    if unreachable:
        degraded_reason = "PodUnreachable"
        degraded_message = "; ".join(f"{name}: {seen.errors[name]}" for name in unreachable)
    elif failed_pods:
        degraded_reason = "GeneratorFailed"
        degraded_message = "; ".join(
            f"{name}: {(statuses.get(name) or {}).get('last_error')}" for name in failed_pods
        )
    degraded = degraded_reason != "AsExpected"

    if spec.paused:
        all_stopped = running_count == 0 and all(statuses.get(p.name) is not None for p in live)
        ready_reason = "Paused" if all_stopped else "Pausing"
        ready = all_stopped
        ready_message = (
            f"all {len(live)} generators stopped"
            if all_stopped
            else f"{running_count} of {len(live)} generators still running"
        )
        paused = condition(
            conditions,
            "Paused",
            all_stopped,
            "AllStopped" if all_stopped else "Pausing",
            ready_message,
            gen,
        )
    else:
        target = desired - len(held)
        ready = running_count >= target and len(live) >= desired and not degraded
        if desired == 0:
            ready_reason, ready = "ScaledToZero", len(live) == 0
            ready_message = "no generators requested"
        elif ready:
            ready_reason = "Generating"
            ready_message = (
                f"{running_count} generators at {spec.events_per_second:g} events/s in total"
            )
            if held:
                ready_message += f"; {', '.join(held)} stopped by hand"
        else:
            ready_reason = "Degraded" if degraded else "Progressing"
            ready_message = f"{running_count} of {desired} generators running"
        paused = condition(conditions, "Paused", False, "Running", "spec.paused is false", gen)

    return {
        "observedGeneration": gen,
        "replicas": len(live),
        "readyReplicas": sum(1 for p in live if p.ready),
        "generatingReplicas": running_count,
        "selector": selector,
        "eventsAcknowledged": acknowledged,
        "eventsFailed": failed,
        "achievedRate": round(achieved, 3),
        "lastError": last_error,
        "producers": producers,
        "conditions": [
            condition(conditions, "Ready", ready, ready_reason, ready_message, gen),
            paused,
            condition(conditions, "Degraded", degraded, degraded_reason, degraded_message, gen),
        ],
    }
