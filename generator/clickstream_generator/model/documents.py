"""The click model as a document: YAML files, custom resources, API bodies.

One shape serves the generator's YAML configuration, the ``spec.model`` of a
``ClickstreamGenerator`` resource and the control API, so a model can move
between them unchanged::

    baseUrl: https://webstore.demo.com
    users: {min: 1, max: 100}
    groupClickProbability: 0.1
    seed: 42                      # optional
    groups:
      - {id: 1, name: Books, weight: 0.15, products: {min: 2001, max: 2100}}
      - {id: 2, name: Movies, weight: 0.85, products: {min: 1, max: 1000}}

A configuration file holds that under ``model:``, next to ``eventsPerSecond``
and ``kinesis``, which is the ``spec`` of the resource; a whole
``ClickstreamGenerator`` manifest is accepted too (its ``spec`` is read).
Unknown keys in the model are errors (they are usually typos); the resource's
Kubernetes-only fields (replicas, paused, image, ...) are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clickstream_generator.model.errors import ConfigError, read_config_file
from clickstream_generator.model.settings import ClickModel, Group, IdRange

PARTITION_KEY_MODES = ("user", "random")

_MODEL_KEYS = {"baseUrl", "users", "groupClickProbability", "groups", "seed"}
_GROUP_KEYS = {"id", "name", "weight", "products"}
_RANGE_KEYS = {"min", "max"}
_KINESIS_KEYS = {
    "streamName",
    "streamArn",
    "region",
    "endpointUrl",
    "partitionKey",
    "aggregation",
}
# Fields of a resource's spec that only matter to Kubernetes.
_SPEC_ONLY_KEYS = {
    "replicas",
    "paused",
    "image",
    "imagePullPolicy",
    "resources",
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "credentialsSecret",
}


@dataclass
class KinesisTarget:
    """Where the configuration says records go; all optional."""

    stream_name: str | None = None
    """Stream name or ARN."""
    region: str | None = None
    """AWS region."""
    endpoint_url: str | None = None
    """Kinesis endpoint override (emulators, VPC endpoints)."""
    partition_key: str = "user"
    """``user`` (per-user order) or ``random``."""
    aggregation: bool = False
    """Pack events into KPL aggregated records."""


@dataclass
class DocumentConfig:
    """What a YAML configuration (or resource spec) says."""

    model: ClickModel
    """The click model."""
    rate: float | None = None
    """``eventsPerSecond``, if present."""
    kinesis: KinesisTarget = field(default_factory=KinesisTarget)
    """The ``kinesis`` section."""
    warnings: list[str] = field(default_factory=list)
    """Sentences about ignored content."""


def load_yaml(path: Path) -> DocumentConfig:
    """Read and validate a YAML configuration file."""
    source = str(path)
    text = read_config_file(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"is not valid YAML: {exc}", source=source) from None
    try:
        return spec_to_config(_spec_of(data))
    except ConfigError as exc:
        raise exc.located(source=source) from None


def _spec_of(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError("the document must be a mapping with a 'model' key")
    if data.get("kind") == "ClickstreamGenerator":
        spec = data.get("spec")
        if not isinstance(spec, Mapping):
            raise ConfigError("must be a mapping", key="spec")
        return spec
    return data


def spec_to_config(spec: Mapping[str, Any], *, prefix: str = "") -> DocumentConfig:
    """Read the ``spec``-shaped mapping: ``model``, ``eventsPerSecond``, ``kinesis``."""
    warnings = [
        f"{prefix}{key} is not a configuration key and is ignored"
        for key in spec
        if key not in {"model", "eventsPerSecond", "kinesis"} | _SPEC_ONLY_KEYS
    ]
    model_data = spec.get("model", {})
    model = model_from_mapping(model_data, prefix=f"{prefix}model.")
    rate = None
    if spec.get("eventsPerSecond") is not None:
        rate = _number(spec["eventsPerSecond"], f"{prefix}eventsPerSecond")
        if not rate > 0:
            raise ConfigError(f"must be > 0 (got {rate:g})", key=f"{prefix}eventsPerSecond")
    kinesis = _kinesis(spec.get("kinesis", {}), f"{prefix}kinesis.")
    return DocumentConfig(model=model, rate=rate, kinesis=kinesis, warnings=warnings)


def model_from_mapping(data: Any, *, prefix: str = "") -> ClickModel:
    """Build and validate a `ClickModel`; missing keys take the shipped defaults."""
    if data is None:
        data = {}
    _mapping(data, prefix.rstrip(".") or "model", _MODEL_KEYS, prefix)
    defaults = ClickModel()
    groups = defaults.groups
    if "groups" in data:
        raw_groups = data["groups"]
        if not isinstance(raw_groups, list):
            raise ConfigError("must be a list of groups", key=f"{prefix}groups")
        groups = tuple(
            _group(item, f"{prefix}groups[{position}]", position)
            for position, item in enumerate(raw_groups)
        )
    seed = data.get("seed")
    model = ClickModel(
        base_url=_text(data.get("baseUrl", defaults.base_url), f"{prefix}baseUrl").rstrip("/"),
        users=_range(data["users"], f"{prefix}users") if "users" in data else defaults.users,
        group_click_probability=_number(
            data.get("groupClickProbability", defaults.group_click_probability),
            f"{prefix}groupClickProbability",
        ),
        groups=groups,
        seed=None if seed is None else _integer(seed, f"{prefix}seed"),
    )
    return model.validated(lambda path: f"{prefix}{path}")


def model_to_mapping(model: ClickModel) -> dict[str, Any]:
    """The document shape of a model (the inverse of `model_from_mapping`)."""
    data: dict[str, Any] = {
        "baseUrl": model.base_url,
        "users": {"min": model.users.min, "max": model.users.max},
        "groupClickProbability": model.group_click_probability,
        "groups": [
            {
                "id": group.id,
                "name": group.name,
                "weight": group.weight,
                "products": {"min": group.products.min, "max": group.products.max},
            }
            for group in model.groups
        ],
    }
    if model.seed is not None:
        data["seed"] = model.seed
    return data


def _group(data: Any, path: str, position: int) -> Group:
    _mapping(data, path, _GROUP_KEYS, f"{path}.")
    for key in ("name", "weight", "products"):
        if key not in data:
            raise ConfigError("is missing", key=f"{path}.{key}")
    return Group(
        id=_integer(data.get("id", position + 1), f"{path}.id"),
        name=_text(data["name"], f"{path}.name"),
        weight=_number(data["weight"], f"{path}.weight"),
        products=_range(data["products"], f"{path}.products"),
    )


def _kinesis(data: Any, prefix: str) -> KinesisTarget:
    if data is None:
        return KinesisTarget()
    _mapping(data, prefix.rstrip("."), _KINESIS_KEYS, prefix)
    mode = data.get("partitionKey", "user")
    if mode not in PARTITION_KEY_MODES:
        raise ConfigError(
            f"must be one of {', '.join(PARTITION_KEY_MODES)} (got {mode!r})",
            key=f"{prefix}partitionKey",
        )
    aggregation = data.get("aggregation", False)
    if not isinstance(aggregation, bool):
        raise ConfigError(
            f"must be true or false (got {aggregation!r})", key=f"{prefix}aggregation"
        )
    stream = data.get("streamName") or data.get("streamArn")
    return KinesisTarget(
        stream_name=None if stream is None else _text(stream, f"{prefix}streamName"),
        region=None if data.get("region") is None else _text(data["region"], f"{prefix}region"),
        endpoint_url=(
            None
            if data.get("endpointUrl") is None
            else _text(data["endpointUrl"], f"{prefix}endpointUrl")
        ),
        partition_key=mode,
        aggregation=aggregation,
    )


def _mapping(data: Any, path: str, allowed: set[str], prefix: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a mapping (got {type(data).__name__})", key=path)
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"is not a known key; expected one of {', '.join(sorted(allowed))}",
                key=f"{prefix}{key}",
            )


def _range(data: Any, path: str) -> IdRange:
    _mapping(data, path, _RANGE_KEYS, f"{path}.")
    for key in ("min", "max"):
        if key not in data:
            raise ConfigError("is missing", key=f"{path}.{key}")
    return IdRange(_integer(data["min"], f"{path}.min"), _integer(data["max"], f"{path}.max"))


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ConfigError(f"must be a whole number (got {value!r})", key=key)
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"must be a number (got {value!r})", key=key)
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            raise ConfigError(f"must be a number (got {value!r})", key=key) from None
    else:
        raise ConfigError(f"must be a number (got {value!r})", key=key)
    if not math.isfinite(result):
        raise ConfigError(f"must be a finite number (got {value!r})", key=key)
    return result


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be a string (got {value!r})", key=key)
    if not value.strip():
        raise ConfigError("is empty", key=key)
    return value.strip()
