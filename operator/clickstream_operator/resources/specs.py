"""A ``ClickstreamGenerator`` spec, read and checked beyond what the schema can.

The CRD's schema and CEL rules reject most bad input at the API server; this
module re-reads the spec with the generator's own validation, so rules the
schema cannot express (group weights summing to 1) become a readable
condition on the resource, never an operator crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

from clickstream_generator.model.documents import model_from_mapping, model_to_mapping
from clickstream_generator.model.errors import ConfigError
from clickstream_generator.model.settings import ClickModel

GeneratorName = NewType("GeneratorName", str)
Namespace = NewType("Namespace", str)

GROUP = "csgen.dev"
VERSION = "v1alpha1"
PLURAL = "clickstreamgenerators"
KIND = "ClickstreamGenerator"
DEFAULT_IMAGE = "ghcr.io/csgen/csgen:0.1.0"


class InvalidSpec(Exception):
    """A spec the generator cannot run; the message names the field."""


@dataclass(frozen=True)
class KinesisSpec:
    """``spec.kinesis``."""

    stream_name: str
    """Stream name or ARN."""
    region: str
    """AWS region."""
    endpoint_url: str | None = None
    """Endpoint override (emulators)."""
    partition_key: str = "user"
    """``user`` or ``random``."""
    aggregation: bool = False
    """KPL aggregation."""


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything the operator needs from one resource."""

    name: GeneratorName
    namespace: Namespace
    uid: str
    generation: int
    replicas: int
    paused: bool
    events_per_second: float
    model: ClickModel
    kinesis: KinesisSpec
    image: str = DEFAULT_IMAGE
    image_pull_policy: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    service_account_name: str | None = None
    credentials_secret: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()

    @property
    def model_document(self) -> dict[str, Any]:
        """The model as the control API takes it."""
        return model_to_mapping(self.model)

    @property
    def model_fingerprint(self) -> str:
        """A short hash of the model, to tell whether a pod has it."""
        text = json.dumps(self.model_document, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_spec(body: Mapping[str, Any]) -> GeneratorSpec:
    """Read a resource body; raise `InvalidSpec` naming the field."""
    metadata = body.get("metadata", {})
    spec = body.get("spec") or {}
    try:
        model = model_from_mapping(spec.get("model") or {}, prefix="spec.model.")
    except ConfigError as exc:
        raise InvalidSpec(str(exc)) from None
    kinesis = spec.get("kinesis") or {}
    if not kinesis.get("streamName") or not kinesis.get("region"):
        raise InvalidSpec("spec.kinesis.streamName and spec.kinesis.region are required")
    rate = spec.get("eventsPerSecond", 10)
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
        raise InvalidSpec(f"spec.eventsPerSecond must be > 0 (got {rate!r})")
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise InvalidSpec(f"spec.replicas must be >= 0 (got {replicas!r})")
    if replicas > model.users.size:
        raise InvalidSpec(
            f"spec.replicas ({replicas}) exceeds the {model.users.size} users of "
            f"spec.model.users ({model.users}): some generators would have no users"
        )
    return GeneratorSpec(
        name=GeneratorName(metadata["name"]),
        namespace=Namespace(metadata["namespace"]),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation", 0)),
        replicas=replicas,
        paused=bool(spec.get("paused", False)),
        events_per_second=float(rate),
        model=model,
        kinesis=KinesisSpec(
            stream_name=str(kinesis["streamName"]),
            region=str(kinesis["region"]),
            endpoint_url=kinesis.get("endpointUrl"),
            partition_key=str(kinesis.get("partitionKey", "user")),
            aggregation=bool(kinesis.get("aggregation", False)),
        ),
        image=str(spec.get("image") or DEFAULT_IMAGE),
        image_pull_policy=spec.get("imagePullPolicy"),
        resources=dict(spec.get("resources") or {}),
        service_account_name=spec.get("serviceAccountName"),
        credentials_secret=spec.get("credentialsSecret"),
        node_selector=dict(spec.get("nodeSelector") or {}),
        tolerations=tuple(spec.get("tolerations") or ()),
    )
