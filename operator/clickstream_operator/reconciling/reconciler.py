"""One reconciliation of a ClickstreamGenerator: observe, decide, act, report.

Level-based and idempotent: every run reads the whole current state (the
resource, its pods, each generator's ``/v1/status``), decides with
`planning.plan`, acts (configure, start, stop through the control API),
and writes the whole status. Runs are triggered by changes to the resource,
by pod events and by a timer; runs for one resource are serialised, and
requests that arrive during a run are coalesced into one more run.

A pod that cannot be reached is reported (``Degraded``) and tried again at
the next run; nothing here raises for one bad pod.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from clickstream_operator.cluster.access import Cluster
from clickstream_operator.fleet.client import FleetError, GeneratorClient
from clickstream_operator.reconciling.backoff import Backoff
from clickstream_operator.reconciling.planning import (
    RUNNING,
    Action,
    PodPlan,
    Remembered,
    fingerprint,
    plan,
)
from clickstream_operator.reconciling.reporting import Observation, build_status, invalid_status
from clickstream_operator.resources.pods import ObservedPod
from clickstream_operator.resources.rendering import (
    render_service,
    render_statefulset,
    render_token_secret,
    selector_string,
)
from clickstream_operator.resources.specs import InvalidSpec, read_spec

logger = logging.getLogger(__name__)

#: Posts a Kubernetes Event: (resource body, type, reason, message).
EventPoster = Callable[[Mapping[str, Any], str, str, str], None]


def _no_events(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """Default poster: log only."""
    logger.info("%s %s: %s", kind, reason, message)


class Reconciler:
    """Reconciles resources; one instance per operator process."""

    def __init__(self, cluster: Cluster, *, post_event: EventPoster = _no_events):
        self._cluster = cluster
        self._post_event = post_event
        self._session: aiohttp.ClientSession | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._again: set[str] = set()
        # Per resource: fingerprints of the configuration last PUT, by "pod/boot id".
        self._applied: dict[str, dict[str, str]] = {}
        self._backoffs: dict[str, Backoff] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, force_close=True)
            )
        return self._session

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is remembered of a deleted resource."""
        key = f"{namespace}/{name}"
        self._backoffs.pop(key, None)
        self._applied.pop(key, None)
        self._locks.pop(key, None)
        self._again.discard(key)

    async def reconcile_by_name(self, namespace: str, name: str) -> None:
        """Reconcile a resource given its name (from a pod event); coalesced."""
        key = f"{namespace}/{name}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        if lock.locked():
            # A run is under way: ask for one more afterwards instead of queueing many.
            self._again.add(key)
            return
        body = await self._cluster.read_resource(namespace, name)
        if body is not None:
            await self.reconcile(body)

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        """Drive one resource to its spec and write its status."""
        metadata = body.get("metadata", {})
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            await self._reconcile_once(body)
            while key in self._again:
                self._again.discard(key)
                fresh = await self._cluster.read_resource(metadata["namespace"], metadata["name"])
                if fresh is None:
                    return
                await self._reconcile_once(fresh)

    async def _reconcile_once(self, body: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        previous = body.get("status") or {}
        # A spec the generator cannot run is a condition, never a crash.
        try:
            spec = read_spec(body)
        except InvalidSpec as exc:
            status = invalid_status(previous, int(metadata.get("generation", 0)), str(exc))
            if previous.get("lastError") != str(exc):
                self._post_event(body, "Warning", "InvalidSpec", str(exc))
            await self._cluster.patch_status(metadata["namespace"], metadata["name"], status)
            return

        # Owned objects first: the token Secret, the Service, the StatefulSet.
        token = await self._cluster.ensure_token(render_token_secret(spec))
        await self._cluster.apply(render_service(spec))
        await self._cluster.apply(render_statefulset(spec))

        # What is there, and what each generator says of itself.
        pods = await self._cluster.list_pods(spec.namespace, selector_string(spec))
        client = GeneratorClient(self._http(), token)
        resource = f"{spec.namespace}/{spec.name}"
        backoff = self._backoffs.setdefault(resource, Backoff())
        backoff.forget_all_but({_backoff_key(pod) for pod in pods})
        applied = self._applied.setdefault(resource, {})
        names = {pod.name for pod in pods}
        for gone in [key for key in applied if key.split("/", 1)[0] not in names]:
            del applied[gone]
        statuses, errors = await self._poll(
            client, backoff, [p for p in pods if p.ip and not p.terminating]
        )
        memory = _remembered(previous)

        # Decide and act; then look again at the pods acted upon.
        decided = plan(spec, pods, statuses, memory, applied)
        acted = await asyncio.gather(
            *(self._act(client, backoff, applied, step, statuses, errors) for step in decided.pods)
        )
        changed = [step.pod for step, did in zip(decided.pods, acted, strict=True) if did]
        if changed:
            again, again_errors = await self._poll(client, backoff, changed)
            statuses.update(again)
            errors.update(again_errors)
        for name, reported in statuses.items():
            if reported and reported.get("state") == RUNNING and not spec.paused:
                # Running at this generation: a later stop by hand is then respected.
                memory[name] = Remembered(reported.get("boot_id"), spec.generation)

        status = build_status(
            spec,
            Observation(pods=pods, statuses=statuses, errors=errors, memory=memory, plan=decided),
            previous,
            selector_string(spec),
        )
        self._post_transitions(body, previous, status)
        await self._cluster.patch_status(spec.namespace, spec.name, status)

    async def _poll(
        self, client: GeneratorClient, backoff: Backoff, pods: list[ObservedPod]
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, str]]:
        """Ask each pod for its status; pods in backoff are skipped (and unreachable)."""
        now = time.monotonic()
        statuses: dict[str, dict[str, Any] | None] = {}
        errors: dict[str, str] = {}
        asked = []
        for pod in pods:
            if backoff.allows(_backoff_key(pod), now):
                asked.append(pod)
            else:
                statuses[pod.name] = None
                errors[pod.name] = f"{backoff.last_error(_backoff_key(pod))} (backing off)"
        answers = await asyncio.gather(
            *(client.status(pod.ip or "") for pod in asked), return_exceptions=True
        )
        for pod, answer in zip(asked, answers, strict=True):
            if isinstance(answer, FleetError):
                statuses[pod.name] = None
                errors[pod.name] = str(answer)
                backoff.failed(_backoff_key(pod), time.monotonic(), str(answer))
            elif isinstance(answer, BaseException):
                raise answer
            else:
                statuses[pod.name] = answer
                backoff.succeeded(_backoff_key(pod))
        return statuses, errors

    async def _act(
        self,
        client: GeneratorClient,
        backoff: Backoff,
        applied: dict[str, str],
        step: PodPlan,
        statuses: dict[str, dict[str, Any] | None],
        errors: dict[str, str],
    ) -> bool:
        """Carry out one pod's plan; True if anything was sent."""
        ip = step.pod.ip
        if ip is None or (step.config is None and step.action is Action.NOTHING):
            return False
        boot = (statuses.get(step.pod.name) or {}).get("boot_id")
        try:
            if step.config is not None:
                await client.configure(ip, step.config)
                applied[f"{step.pod.name}/{boot}"] = fingerprint(step.config)
            if step.action is Action.START:
                await client.start(ip)
            elif step.action is Action.STOP:
                await client.stop(ip)
        except FleetError as exc:
            errors[step.pod.name] = str(exc)
            backoff.failed(_backoff_key(step.pod), time.monotonic(), str(exc))
            logger.warning("Generator %s: %s; trying again at the next round.", step.pod.name, exc)
        return True

    def _post_transitions(
        self, body: Mapping[str, Any], previous: Mapping[str, Any], status: Mapping[str, Any]
    ) -> None:
        before = {c["type"]: c for c in previous.get("conditions") or []}
        for cond in status.get("conditions", []):
            old = before.get(cond["type"])
            if old is not None and (old.get("status"), old.get("reason")) == (
                cond["status"],
                cond["reason"],
            ):
                continue
            warning = cond["type"] == "Degraded" and cond["status"] == "True"
            if cond["type"] == "Degraded" and old is None and cond["status"] == "False":
                continue
            self._post_event(
                body,
                "Warning" if warning else "Normal",
                f"{cond['type']}{cond['reason']}" if cond["type"] != "Ready" else cond["reason"],
                cond["message"],
            )


def _backoff_key(pod: ObservedPod) -> tuple[str, str | None, bool]:
    # A restarted or newly Ready pod is a new key: it is tried at once.
    return (pod.name, pod.ip, pod.ready)


def _remembered(status: Mapping[str, Any]) -> dict[str, Remembered]:
    memory = {}
    for entry in status.get("producers") or []:
        if isinstance(entry, Mapping) and entry.get("pod"):
            memory[str(entry["pod"])] = Remembered(
                entry.get("bootId"), entry.get("startedGeneration")
            )
    return memory
