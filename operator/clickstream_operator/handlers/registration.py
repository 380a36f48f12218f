"""kopf handlers: what triggers a reconciliation, and the operator's settings.

- creation, resumption at operator start, and any change of a resource;
- a timer every `TIMER_INTERVAL` seconds, so drift (a pod restarted, a
  generator stopped by hand, a failed one) is corrected without an event;
- events of the resource's pods (they come, become ready, restart, go).

The operator keeps its own annotation prefix and finalizer name
(``csgen.dev``), not kopf's defaults, and stores no handler progress in the
status, which belongs to the reconciler alone.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from clickstream_operator.cluster.access import Cluster
from clickstream_operator.reconciling.reconciler import Reconciler
from clickstream_operator.resources.rendering import LABEL_GENERATOR
from clickstream_operator.resources.specs import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)

ANNOTATION_PREFIX = "csgen.dev"
FINALIZER = "csgen.dev/finalizer"
TIMER_INTERVAL = 10.0

_state: dict[str, Reconciler] = {}


def reconciler() -> Reconciler:
    """The process's reconciler, created at startup."""
    return _state["reconciler"]


def _post_event(body: Any, kind: str, reason: str, message: str) -> None:
    kopf.event(body, type=kind, reason=reason, message=message[:1000])


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.batching.worker_limit = 64
    _state["reconciler"] = Reconciler(Cluster(), post_event=_post_event)


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    if "reconciler" in _state:
        await _state.pop("reconciler").close()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def on_change(body: kopf.Body, **_: Any) -> None:
    await reconciler().reconcile(body)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def on_delete(body: kopf.Body, **_: Any) -> None:
    # Owned objects go with the garbage collector; only memory is ours to free.
    reconciler().forget(str(body.metadata.namespace), str(body.metadata.name))


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_INTERVAL, initial_delay=TIMER_INTERVAL)
async def on_timer(body: kopf.Body, **_: Any) -> None:
    await reconciler().reconcile(body)


@kopf.on.event("", "v1", "pods", labels={LABEL_GENERATOR: kopf.PRESENT})
async def on_pod_event(event: kopf.RawEvent, **_: Any) -> None:
    pod = event.get("object") or {}
    metadata = pod.get("metadata") or {}
    owner = (metadata.get("labels") or {}).get(LABEL_GENERATOR)
    if owner and metadata.get("namespace"):
        await reconciler().reconcile_by_name(metadata["namespace"], owner)
