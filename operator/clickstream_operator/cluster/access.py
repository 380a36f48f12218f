"""Reading and writing the objects a ClickstreamGenerator owns.

Uses the official ``kubernetes`` client (blocking) in worker threads, so the
operator's event loop never waits on the API server. Owned objects are
written with server-side apply under the field manager ``csgen-operator``:
repeated reconciliations are idempotent and never fight other managers over
fields they do not own (an HPA over ``spec.replicas`` of the resource is fine,
since the StatefulSet's replicas come from the resource).

Errors from the client are wrapped as `ClusterError` with the cause chained;
a 409/429/5xx is temporary, anything else permanent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from clickstream_operator.resources.pods import ObservedPod
from clickstream_operator.resources.rendering import POD_INDEX_LABEL, TOKEN_KEY
from clickstream_operator.resources.specs import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)

FIELD_MANAGER = "csgen-operator"


class ClusterError(Exception):
    """A Kubernetes API call failed."""

    def __init__(self, message: str, *, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


def _wrap(exc: ApiException, what: str) -> ClusterError:
    status = int(exc.status or 0)
    return ClusterError(
        f"{what} failed: {status} {exc.reason}", temporary=status in (0, 409, 429) or status >= 500
    )


def load_configuration() -> kubernetes.client.ApiClient:
    """An API client from the pod's service account, else from the kubeconfig."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


class Cluster:
    """The operator's view of the API server."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None):
        self._api = api_client or load_configuration()
        self._core = kubernetes.client.CoreV1Api(self._api)
        self._apps = kubernetes.client.AppsV1Api(self._api)
        self._custom = kubernetes.client.CustomObjectsApi(self._api)

    async def ensure_token(self, secret: Mapping[str, Any]) -> str:
        """The API token in the resource's Secret, creating the Secret if absent."""
        namespace = secret["metadata"]["namespace"]
        name = secret["metadata"]["name"]

        def work() -> str:
            try:
                existing = self._core.read_namespaced_secret(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise _wrap(exc, f"reading Secret {namespace}/{name}") from exc
                try:
                    self._core.create_namespaced_secret(namespace, dict(secret))
                except ApiException as create_exc:
                    if create_exc.status != 409:  # created meanwhile by a peer
                        raise _wrap(
                            create_exc, f"creating Secret {namespace}/{name}"
                        ) from create_exc
                logger.info("Created the API token Secret %s/%s.", namespace, name)
                existing = self._core.read_namespaced_secret(name, namespace)
            data = existing.data or {}
            if TOKEN_KEY not in data:
                raise ClusterError(
                    f"Secret {namespace}/{name} has no '{TOKEN_KEY}' key; delete it and the "
                    "operator creates a new one",
                    temporary=False,
                )
            return base64.b64decode(data[TOKEN_KEY]).decode()

        return await asyncio.to_thread(work)

    async def apply(self, manifest: Mapping[str, Any]) -> None:
        """Server-side apply of a Service or StatefulSet."""
        kind = manifest["kind"]
        namespace = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        patchers = {
            "Service": self._core.patch_namespaced_service,
            "StatefulSet": self._apps.patch_namespaced_stateful_set,
        }

        def work() -> None:
            try:
                patchers[kind](
                    name,
                    namespace,
                    dict(manifest),
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type="application/apply-patch+yaml",
                )
            except ApiException as exc:
                raise _wrap(exc, f"applying {kind} {namespace}/{name}") from exc

        await asyncio.to_thread(work)

    async def list_pods(self, namespace: str, selector: str) -> list[ObservedPod]:
        """The resource's pods."""

        def work() -> list[ObservedPod]:
            try:
                answer = self._core.list_namespaced_pod(namespace, label_selector=selector)
            except ApiException as exc:
                raise _wrap(exc, f"listing pods in {namespace}") from exc
            return [_observe(pod) for pod in answer.items]

        return await asyncio.to_thread(work)

    async def read_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A ClickstreamGenerator, or None if it is gone."""

        def work() -> dict[str, Any] | None:
            try:
                body = self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise _wrap(exc, f"reading {PLURAL} {namespace}/{name}") from exc
            return dict(body)

        return await asyncio.to_thread(work)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Write the status through the status subresource (a merge patch)."""

        def work() -> None:
            try:
                self._custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)}
                )
            except ApiException as exc:
                if exc.status == 404:
                    return  # deleted meanwhile: nothing to report on
                raise _wrap(exc, f"patching the status of {namespace}/{name}") from exc

        await asyncio.to_thread(work)


def _observe(pod: Any) -> ObservedPod:
    labels = pod.metadata.labels or {}
    index_text = labels.get(POD_INDEX_LABEL) or pod.metadata.name.rsplit("-", 1)[-1]
    try:
        index = int(index_text)
    except ValueError:
        index = -1
    conditions = (pod.status.conditions if pod.status else None) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return ObservedPod(
        name=pod.metadata.name,
        index=index,
        ip=pod.status.pod_ip if pod.status else None,
        ready=ready,
        phase=(pod.status.phase if pod.status else None) or "Unknown",
        terminating=pod.metadata.deletion_timestamp is not None,
    )
