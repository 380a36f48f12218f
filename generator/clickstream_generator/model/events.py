"""Clicks drawn from the model, encoded as JSON event records.

`ClickSampler` draws clicks in fixed blocks with numpy (exactly uniform
integers, exact Bernoulli and categorical draws from doubles), so the stream of
clicks for a (seed, shard) depends neither on how many events a caller asks
for at a time nor on the pace: the same seed and shard give the same clicks.

`EventSource` numbers the clicks (``sequence`` from 0, step 1) and encodes each
as one compact UTF-8 JSON object (see ``schemas/event.schema.json``)::

    {"event_id":"…","event_time":"2026-12-03T17:26:06.123Z","event_type":"product_view",
     "user_id":77,"group_id":2,"group_name":"Movies","product_id":345,
     "url":"https://webstore.demo.com/api/group/2/product/345?userid=77",
     "producer_id":"demo-0","sequence":41}

Encoding fills per-group templates prepared once, which is several times
faster than building a dict and serialising it. ``event_id`` is a UUID
(version 8) whose first 74 bits are random per run and whose last 48 bits are
the sequence: unique across runs, and unique within one without a per-event
random draw.
"""

from __future__ import annotations

import json
import secrets
from typing import Final, NamedTuple

import numpy as np

from clickstream_generator.kits.timestamps import TimestampFormatter
from clickstream_generator.model.documents import PARTITION_KEY_MODES
from clickstream_generator.model.settings import ClickModel, ShardSlice

#: How many clicks the sampler draws at once; part of the seeded stream's definition.
BLOCK_SIZE: Final = 4096

GROUP_VIEW: Final = "group_view"
PRODUCT_VIEW: Final = "product_view"


class Record(NamedTuple):
    """One encoded event, ready for a sink."""

    sequence: int
    """Per-producer sequence number of the event."""
    data: bytes
    """The JSON object, UTF-8."""
    partition_key: str
    """Kinesis partition key."""


class Clicks(NamedTuple):
    """A run of drawn clicks, column by column (plain lists, for speed)."""

    is_group_view: list[bool]
    group_index: list[int]
    user_id: list[int]
    product_id: list[int]


def derive_seed() -> int:
    """A fresh random seed, small enough to be typed back in."""
    return secrets.randbits(48)


class ClickSampler:
    """Draws clicks for one producer's shard of the model."""

    def __init__(self, model: ClickModel, shard: ShardSlice, seed: int):
        users = shard.users_of(model.users)
        # NB: the stream is derived from (seed, shard index) the way numpy
        # derives independent child streams, so producers never repeat each other.
        sequence = np.random.SeedSequence(seed, spawn_key=(shard.index,))
        self._rng = np.random.Generator(np.random.PCG64(sequence))
        self._p_group = model.group_click_probability
        weights = np.array([group.weight for group in model.groups], dtype=np.float64)
        self._cumulative = np.cumsum(weights)
        self._cumulative[-1] = 1.0  # absorb rounding so every draw lands in a group
        self._last_group = len(model.groups) - 1
        self._users = (users.min, users.max + 1)
        self._product_low = np.array([g.products.min for g in model.groups], dtype=np.int64)
        self._product_high = np.array([g.products.max + 1 for g in model.groups], dtype=np.int64)
        self._block = Clicks([], [], [], [])
        self._position = 0

    def draw(self, count: int) -> Clicks:
        """The next ``count`` clicks of this producer's stream."""
        parts: list[Clicks] = []
        while count > 0:
            if self._position >= len(self._block.user_id):
                self._block = self._draw_block()
                self._position = 0
            start = self._position
            stop = min(start + count, len(self._block.user_id))
            block = self._block
            parts.append(
                Clicks(
                    block.is_group_view[start:stop],
                    block.group_index[start:stop],
                    block.user_id[start:stop],
                    block.product_id[start:stop],
                )
            )
            count -= stop - start
            self._position = stop
        if len(parts) == 1:
            return parts[0]
        return Clicks(
            [x for part in parts for x in part.is_group_view],
            [x for part in parts for x in part.group_index],
            [x for part in parts for x in part.user_id],
            [x for part in parts for x in part.product_id],
        )

    def _draw_block(self) -> Clicks:
        rng = self._rng
        is_group = rng.random(BLOCK_SIZE) < self._p_group
        groups = np.searchsorted(self._cumulative, rng.random(BLOCK_SIZE), side="right")
        np.minimum(groups, self._last_group, out=groups)
        users = rng.integers(self._users[0], self._users[1], size=BLOCK_SIZE)
        products = rng.integers(self._product_low[groups], self._product_high[groups])
        return Clicks(is_group.tolist(), groups.tolist(), users.tolist(), products.tolist())


class EventSource:
    """Numbered, encoded events of one producer."""

    def __init__(
        self,
        model: ClickModel,
        shard: ShardSlice,
        *,
        producer_id: str,
        seed: int,
        partition_key: str = "user",
        first_sequence: int = 0,
        id_prefix: str | None = None,
    ):
        if partition_key not in PARTITION_KEY_MODES:
            raise ValueError(f"partition key mode must be user or random (got {partition_key!r})")
        self.model = model
        self.shard = shard
        self.seed = seed
        self.producer_id = producer_id
        self.next_sequence = first_sequence
        self._sampler = ClickSampler(model, shard, seed)
        self._random_keys = partition_key == "random"
        self._key_rng = np.random.default_rng()
        self._times = TimestampFormatter()
        self._id_prefix = id_prefix or run_id_prefix()
        self._group_templates = [
            _template(model, g, product=False, producer=producer_id)
            for g in range(len(model.groups))
        ]
        self._product_templates = [
            _template(model, g, product=True, producer=producer_id)
            for g in range(len(model.groups))
        ]

    def take(self, count: int, *, first_time: float, interval: float = 0.0) -> list[Record]:
        """Encode the next ``count`` events.

        Event ``i`` of the run is stamped ``first_time + i * interval`` (epoch
        seconds): the pacer passes the moments it scheduled, so timestamps are
        evenly spaced however the work was batched.
        """
        clicks = self._sampler.draw(count)
        fmt = self._times.format_millis
        group_templates = self._group_templates
        product_templates = self._product_templates
        prefix = self._id_prefix
        sequence = self.next_sequence
        base_ms = first_time * 1000.0
        step_ms = interval * 1000.0
        if self._random_keys:
            keys = [f"{k:016x}" for k in self._key_rng.integers(0, 2**63, size=count).tolist()]
        else:
            keys = [str(user) for user in clicks.user_id]
        records: list[Record] = []
        append = records.append
        for i, (is_group, group, user, product) in enumerate(zip(*clicks, strict=True)):
            when = fmt(int(base_ms + i * step_ms))
            if is_group:
                text = group_templates[group] % (prefix, sequence, when, user, user, sequence)
            else:
                text = product_templates[group] % (
                    prefix,
                    sequence,
                    when,
                    user,
                    product,
                    product,
                    user,
                    sequence,
                )
            append(Record(sequence, text.encode(), keys[i]))
            sequence += 1
        self.next_sequence = sequence
        return records


def run_id_prefix() -> str:
    """Random first 20 hex digits for a run's UUIDv8 event ids (one per process run)."""
    bits = secrets.randbits(80)
    text = f"{bits:020x}"
    variant = "89ab"[int(text[16], 16) & 3]
    return f"{text[:8]}-{text[8:12]}-8{text[13:16]}-{variant}{text[17:20]}-"


def _json_literal(text: str) -> str:
    # Escaped for JSON, then for %-formatting.
    return json.dumps(text, ensure_ascii=False).replace("%", "%%")


def _template(model: ClickModel, position: int, *, product: bool, producer: str) -> str:
    group = model.groups[position]
    name = _json_literal(group.name)
    producer_literal = _json_literal(producer)
    base = json.dumps(f"{model.base_url}/api/group/{group.id}", ensure_ascii=False)[1:-1]
    base = base.replace("%", "%%")
    head = '{"event_id":"%s%012x","event_time":"%s",'
    tail = f'"producer_id":{producer_literal},"sequence":%d}}'
    if product:
        return (
            f'{head}"event_type":"{PRODUCT_VIEW}","user_id":%d,"group_id":{group.id},'
            f'"group_name":{name},"product_id":%d,"url":"{base}/product/%d?userid=%d",{tail}'
        )
    return (
        f'{head}"event_type":"{GROUP_VIEW}","user_id":%d,"group_id":{group.id},'
        f'"group_name":{name},"product_id":null,"url":"{base}?userid=%d",{tail}'
    )
