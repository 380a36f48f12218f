"""The click model: product groups, users, click kinds, and their validation.

A click is a *group view* (the user browses a group's product list) with
probability `ClickModel.group_click_probability`, else a *product view*. The
group is drawn by the groups' weights for both kinds; the user uniformly from
the user-id range (or this producer's slice of it); the product uniformly from
the group's product-id range. All ranges are inclusive.

Validation lives here, in one place, and names fields by a canonical path
(``groups[1].weight``). Each configuration format maps those paths to the key
names its users wrote (see `KeyNamer`), so an error in a ``csgen.properties``
file names ``probability-browsing-products-in-group-2``, and one in YAML names
``model.groups[1].weight``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NewType

from clickstream_generator.model.errors import ConfigError

ShardIndex = NewType("ShardIndex", int)
ShardCount = NewType("ShardCount", int)

#: Maps a canonical field path (``users.min``) to the key its source used.
KeyNamer = Callable[[str], str]

#: How far the group weights may sum from 1 and still be accepted.
WEIGHT_TOLERANCE = 1e-9


def _identity(path: str) -> str:
    return path


@dataclass(frozen=True)
class IdRange:
    """An inclusive range of integer ids."""

    min: int = 1
    """Smallest id (inclusive)."""
    max: int = 100
    """Largest id (inclusive)."""

    @property
    def size(self) -> int:
        """How many ids the range holds."""
        return self.max - self.min + 1

    def __str__(self) -> str:
        return f"{self.min}..{self.max}"


@dataclass(frozen=True)
class Group:
    """A product group of the store."""

    id: int = 1
    """Group id, as it appears in URLs."""
    name: str = "Books"
    """Display name, copied into events."""
    weight: float = 1.0
    """Probability (0..1) that a click is in this group; weights sum to 1."""
    products: IdRange = field(default_factory=lambda: IdRange(1, 1000))
    """Product ids of the group (inclusive)."""


def _shipped_groups() -> tuple[Group, ...]:
    return (
        Group(id=1, name="Books", weight=0.15, products=IdRange(2001, 2100)),
        Group(id=2, name="Movies", weight=0.85, products=IdRange(1, 1000)),
    )


@dataclass(frozen=True)
class ClickModel:
    """The whole click model; the defaults are the original system's shipped file."""

    base_url: str = "https://webstore.demo.com"
    """Store URL that click URLs start with; no trailing slash."""
    users: IdRange = field(default_factory=lambda: IdRange(1, 100))
    """User ids (inclusive), split between producers when sharded."""
    group_click_probability: float = 0.1
    """Probability (0..1) that a click is a group view rather than a product view."""
    groups: tuple[Group, ...] = field(default_factory=_shipped_groups)
    """Product groups with their weights."""
    seed: int | None = None
    """Seed of the random streams; None draws one at start (and reports it)."""

    def validated(self, key_name: KeyNamer = _identity) -> ClickModel:
        """Return self if usable, else raise `ConfigError` naming the key."""
        validate_model(self, key_name)
        return self


@dataclass(frozen=True)
class ShardSlice:
    """Which part of the user population one producer of n owns."""

    index: ShardIndex = ShardIndex(0)
    """0-based index of this producer."""
    count: ShardCount = ShardCount(1)
    """Number of producers sharing the model."""

    def users_of(self, users: IdRange) -> IdRange:
        """The k-th of n contiguous, disjoint, near-equal slices of ``users``.

        The first ``size % n`` slices hold one id more than the others
        (users 1..100 split 3 ways: 1..34, 35..67, 68..100).
        """
        base, extra = divmod(users.size, self.count)
        start = users.min + self.index * base + min(self.index, extra)
        size = base + (1 if self.index < extra else 0)
        return IdRange(start, start + size - 1)

    def validate(self, users: IdRange, *, source: str | None = None) -> None:
        """Raise `ConfigError` unless this slice is usable for ``users``."""
        if self.count < 1:
            raise ConfigError(
                f"shard count must be at least 1 (got {self.count})",
                source=source,
                key="shard-count",
            )
        if not 0 <= self.index < self.count:
            raise ConfigError(
                f"shard index must be in 0..{self.count - 1} (got {self.index})",
                source=source,
                key="shard-index",
            )
        if self.count > users.size:
            raise ConfigError(
                f"{self.count} producers cannot share {users.size} users ({users}) without "
                "an empty slice; use fewer producers or a wider user-id range",
                source=source,
                key="shard-count",
            )


def validate_model(model: ClickModel, key_name: KeyNamer = _identity) -> None:
    """Check every rule of a click model; raise `ConfigError` on the first broken one."""

    def fail(path: str, problem: str) -> ConfigError:
        return ConfigError(problem, key=key_name(path))

    # The base URL: it prefixes every click, so it must be an absolute URL.
    if not model.base_url.startswith(("http://", "https://")):
        raise fail("baseUrl", f"must start with http:// or https:// (got {model.base_url!r})")
    if model.base_url.endswith("/"):
        raise fail("baseUrl", f"must not end with '/' (got {model.base_url!r})")

    _check_range(model.users, "users", fail)
    _check_probability(model.group_click_probability, "groupClickProbability", fail)

    # Groups: at least one, unique ids, sane names, weights that form a distribution.
    if not model.groups:
        raise fail("groups", "at least one product group is needed")
    seen: set[int] = set()
    for position, group in enumerate(model.groups):
        path = f"groups[{position}]"
        if group.id in seen:
            raise fail(f"{path}.id", f"group id {group.id} is defined twice")
        seen.add(group.id)
        if not group.name.strip():
            raise fail(f"{path}.name", "must not be empty")
        _check_probability(group.weight, f"{path}.weight", fail)
        _check_range(group.products, f"{path}.products", fail)
    total = math.fsum(group.weight for group in model.groups)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        weights = " + ".join(f"{group.weight:g}" for group in model.groups)
        raise fail(
            "groups[*].weight",
            f"group weights must sum to 1 (got {weights} = {total:.12g}); adjust them so "
            "that they add up to exactly 1",
        )

    if model.seed is not None and model.seed < 0:
        raise fail("seed", f"must be a non-negative integer (got {model.seed})")


def _check_range(ids: IdRange, path: str, fail: Callable[[str, str], ConfigError]) -> None:
    if ids.min < 0:
        raise fail(f"{path}.min", f"must be >= 0 (got {ids.min})")
    if ids.min > ids.max:
        raise fail(
            f"{path}.min",
            f"min ({ids.min}) must not exceed max ({ids.max}): the range would be empty",
        )


def _check_probability(value: float, path: str, fail: Callable[[str, str], ConfigError]) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise fail(path, f"must be a probability between 0 and 1 (got {value})")
