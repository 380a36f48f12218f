"""Configuration changes sent to the control API: parsed and validated whole.

A change is a JSON object with any of ``eventsPerSecond``, ``shard``,
``model``, ``partitionKey`` and ``expectedVersion``. `parse_change` checks
every section against the settings in force and returns the complete new
`RunSettings`, or raises `InvalidChange` listing every offending field (one
per section at most: a section stops at its first error). Nothing is applied
here; the API applies the result in one step with `Producer.reconfigure`.

Semantics: absent fields keep their value; ``model`` replaces the whole model
(its absent keys take the shipped defaults, as in YAML files); ``shard`` may
give only ``index`` or only ``count``. A ``model.seed`` replaces the seed: the
click stream restarts from that seed (and the shard index), while sequence
numbers go on; a model without a seed keeps the seed in force.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickstream_generator.control.openapi import MAX_ID, MAX_RATE, MIN_RATE
from clickstream_generator.engine.running import RunSettings
from clickstream_generator.model.documents import (
    PARTITION_KEY_MODES,
    model_from_mapping,
    model_to_mapping,
)
from clickstream_generator.model.errors import ConfigError
from clickstream_generator.model.settings import ClickModel, ShardCount, ShardIndex, ShardSlice

_KEYS = ("eventsPerSecond", "shard", "model", "partitionKey", "expectedVersion")


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field of a change."""

    field: str
    """The field's path in the request body, e.g. ``model.groups[1].weight``."""
    message: str
    """What is wrong and how to fix it."""


class InvalidChange(Exception):
    """A change with at least one invalid field."""

    def __init__(self, problems: list[FieldProblem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


@dataclass(frozen=True)
class Change:
    """A validated change."""

    settings: RunSettings
    """The complete settings to apply."""
    expected_version: int | None
    """The version the client based the change on, if it said."""


def parse_change(body: Any, current: RunSettings) -> Change:
    """Validate ``body`` against the settings in force; raise `InvalidChange`."""
    if not isinstance(body, Mapping):
        raise InvalidChange([FieldProblem("", "the body must be a JSON object")])
    problems = [
        FieldProblem(key, f"is not a known field; expected one of {', '.join(_KEYS)}")
        for key in body
        if key not in _KEYS
    ]

    def attempt(step: Any, *args: Any) -> Any:
        try:
            return step(*args)
        except ConfigError as exc:
            problems.append(FieldProblem(exc.key or "", exc.problem))
            return None

    rate = current.rate
    if "eventsPerSecond" in body:
        rate = attempt(_rate, body["eventsPerSecond"])
    model = current.model
    if "model" in body:
        model = attempt(_model, body["model"])
    partition_key = current.partition_key
    if "partitionKey" in body:
        partition_key = attempt(_partition_key, body["partitionKey"])
    expected = None
    if "expectedVersion" in body:
        expected = attempt(_version, body["expectedVersion"])
    shard = current.shard
    if "shard" in body or "model" in body:
        # A new model may make the slice in force unusable, so it is checked again.
        shard = attempt(_shard, body.get("shard", {}), current.shard, model or current.model)
    if problems:
        raise InvalidChange(problems)
    settings = RunSettings(model=model, shard=shard, rate=rate, partition_key=partition_key)
    return Change(settings=settings, expected_version=expected)


def settings_document(settings: RunSettings, version: int) -> dict[str, Any]:
    """The settings in the shape of a change (what ``GET /v1/config`` returns)."""
    return {
        "eventsPerSecond": "max" if settings.rate is None else settings.rate,
        "shard": {"index": settings.shard.index, "count": settings.shard.count},
        "model": model_to_mapping(settings.model),
        "partitionKey": settings.partition_key,
        "version": version,
    }


def _rate(value: Any) -> float | None:
    if value == "max":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"must be a number of events per second or 'max' (got {value!r})",
            key="eventsPerSecond",
        )
    rate = float(value)
    if not (math.isfinite(rate) and MIN_RATE <= rate <= MAX_RATE):
        raise ConfigError(
            f"must be between {MIN_RATE:g} and {MAX_RATE:g} events per second, or 'max' "
            f"(got {value!r})",
            key="eventsPerSecond",
        )
    return rate


def _model(value: Any) -> ClickModel:
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be an object (got {value!r})", key="model")
    model = model_from_mapping(value, prefix="model.")
    ranges = [("model.users", model.users)] + [
        (f"model.groups[{position}].products", group.products)
        for position, group in enumerate(model.groups)
    ]
    for path, ids in ranges:
        if ids.max > MAX_ID:
            raise ConfigError(f"must be at most {MAX_ID} (got {ids.max})", key=f"{path}.max")
    for position, group in enumerate(model.groups):
        if not 0 <= group.id <= MAX_ID:
            raise ConfigError(
                f"must be between 0 and {MAX_ID} (got {group.id})",
                key=f"model.groups[{position}].id",
            )
    return model


def _shard(value: Any, current: ShardSlice, model: ClickModel) -> ShardSlice:
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be an object with index and count (got {value!r})", key="shard")
    for key in value:
        if key not in ("index", "count"):
            raise ConfigError("is not a known field; expected index or count", key=f"shard.{key}")
    index = value.get("index", current.index)
    count = value.get("count", current.count)
    for key, number in (("index", index), ("count", count)):
        if isinstance(number, bool) or not isinstance(number, int):
            raise ConfigError(f"must be a whole number (got {number!r})", key=f"shard.{key}")
    shard = ShardSlice(ShardIndex(index), ShardCount(count))
    try:
        shard.validate(model.users)
    except ConfigError as exc:
        # The slice's own messages name command-line flags; name the body's fields.
        field = "shard.index" if exc.key == "shard-index" else "shard.count"
        raise ConfigError(exc.problem, key=field) from None
    return shard


def _partition_key(value: Any) -> str:
    if value not in PARTITION_KEY_MODES:
        raise ConfigError(
            f"must be one of {', '.join(PARTITION_KEY_MODES)} (got {value!r})", key="partitionKey"
        )
    return str(value)


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"must be a whole number >= 1 (got {value!r})", key="expectedVersion")
    return value
