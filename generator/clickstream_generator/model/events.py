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

Encoding is the hot path (a million events per second per core is the
target), so no Python code runs per event. An event is cut into eight
pieces, each a ready-made byte string looked up in a table with numpy:
the event id's upper digits, its lower three hex digits, the timestamp with
the event type, the user id, the group and product (with the URL up to its
query), the URL's user id, the producer with the sequence's upper digits, and
the sequence's last three digits with the closing brace. One C-level join of
all pieces and one split at the newlines give every event its own bytes.
Timestamps are formatted once per distinct millisecond. Id ranges too large
for a table (`TABLE_LIMIT`) are formatted per event, several times slower.

The events of one call travel as an `EventBatch`: columns (data, partition
keys, the first sequence) rather than an object per event, because building
a tuple per event costs as much as encoding it. It is still a sequence of
`Record` for code that wants one event at a time.

``event_id`` is a UUID (version 8) whose first 74 bits are random per run and
whose last 48 bits are the sequence: unique across runs, and unique within
one without a per-event random draw.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any, Final, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from clickstream_generator.kits.timestamps import TimestampFormatter
from clickstream_generator.model.documents import PARTITION_KEY_MODES
from clickstream_generator.model.settings import ClickModel, ShardSlice

#: How many clicks the sampler draws at once; part of the seeded stream's definition.
BLOCK_SIZE: Final = 4096
#: Largest id range (users, or all products together) encoded from a lookup table.
TABLE_LIMIT: Final = 1 << 16

GROUP_VIEW: Final = "group_view"
PRODUCT_VIEW: Final = "product_view"

Ints = npt.NDArray[np.int64]
Pieces = npt.NDArray[np.object_]


class Record(NamedTuple):
    """One encoded event, ready for a sink."""

    sequence: int
    """Per-producer sequence number of the event."""
    data: bytes
    """The JSON object, UTF-8."""
    partition_key: str
    """Kinesis partition key."""


class EventBatch(Sequence[Record]):
    """Consecutive encoded events, column by column.

    Sinks that care for speed read `data` and `keys` directly; indexing and
    iterating build a `Record` per event, for everything else.
    """

    __slots__ = ("data", "first_sequence", "keys")

    def __init__(self, first_sequence: int, data: list[bytes], keys: list[str]):
        self.first_sequence = first_sequence
        """Sequence number of the first event; the others follow, step 1."""
        self.data = data
        """The JSON objects, UTF-8, in sequence order."""
        self.keys = keys
        """Kinesis partition keys, index-aligned with `data`."""

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self.data))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return EventBatch(
                self.first_sequence + start, self.data[start:stop], self.keys[start:stop]
            )
        if index < 0:
            index += len(self.data)
        if not 0 <= index < len(self.data):
            raise IndexError("event index out of range")
        return Record(self.first_sequence + index, self.data[index], self.keys[index])

    def __iter__(self) -> Iterator[Record]:
        # NB: tuple.__new__ builds the records without running Python code per event.
        return map(
            tuple.__new__, repeat(Record), zip(self.sequences, self.data, self.keys, strict=True)
        )

    @property
    def sequences(self) -> range:
        """Sequence numbers of the events, in order."""
        return range(self.first_sequence, self.first_sequence + len(self.data))

    def __repr__(self) -> str:
        return f"EventBatch(first_sequence={self.first_sequence}, events={len(self.data)})"


def data_of(records: Sequence[Record]) -> list[bytes]:
    """The events' bytes, without building a record each for an `EventBatch`."""
    if isinstance(records, EventBatch):
        return records.data
    return [record.data for record in records]


class Clicks(NamedTuple):
    """A run of drawn clicks, column by column."""

    is_group_view: npt.NDArray[np.bool_]
    group_index: Ints
    user_id: Ints
    product_id: Ints


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
        empty = np.empty(0, dtype=np.int64)
        self._block = Clicks(np.empty(0, dtype=np.bool_), empty, empty, empty)
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
            parts.append(Clicks._make(column[start:stop] for column in self._block))
            count -= stop - start
            self._position = stop
        if len(parts) == 1:
            return parts[0]
        return Clicks._make(np.concatenate(columns) for columns in zip(*parts, strict=True))

    def _draw_block(self) -> Clicks:
        rng = self._rng
        is_group = rng.random(BLOCK_SIZE) < self._p_group
        groups = np.searchsorted(self._cumulative, rng.random(BLOCK_SIZE), side="right")
        np.minimum(groups, self._last_group, out=groups)
        users = rng.integers(self._users[0], self._users[1], size=BLOCK_SIZE)
        products = rng.integers(self._product_low[groups], self._product_high[groups])
        return Clicks(is_group, groups.astype(np.int64), users, products)


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
        self._encoder = _Encoder(
            model, shard, producer_id=producer_id, id_prefix=id_prefix or run_id_prefix()
        )

    def take(self, count: int, *, first_time: float, interval: float = 0.0) -> EventBatch:
        """Encode the next ``count`` events.

        Event ``i`` of the run is stamped ``first_time + i * interval`` (epoch
        seconds): the pacer passes the moments it scheduled, so timestamps are
        evenly spaced however the work was batched.
        """
        first = self.next_sequence
        if count <= 0:
            return EventBatch(first, [], [])
        clicks = self._sampler.draw(count)
        data = self._encoder.encode(clicks, first, first_time=first_time, interval=interval)
        if self._random_keys:
            keys = _random_keys(self._key_rng, count)
        else:
            keys = self._encoder.user_keys(clicks.user_id)
        self.next_sequence = first + count
        return EventBatch(first, data, keys)


def _random_keys(rng: np.random.Generator, count: int) -> list[str]:
    # 63 random bits as 16 hex digits, formatted all at once.
    text = rng.integers(0, 2**63, size=count).astype(">u8").tobytes().hex()
    return [text[i : i + 16] for i in range(0, len(text), 16)]


def _table(items: Sequence[Any]) -> Pieces:
    table = np.empty(len(items), dtype=object)
    table[:] = items
    return table


class _Encoder:
    """Cuts events into pieces looked up in tables, then joins them (see the module doc)."""

    def __init__(self, model: ClickModel, shard: ShardSlice, *, producer_id: str, id_prefix: str):
        users = shard.users_of(model.users)
        self._id_head = f'{{"event_id":"{id_prefix}'.encode()
        self._producer = f'","producer_id":{_json(producer_id)},"sequence":'.encode()
        self._hex_low = _table([b"%03x" % i for i in range(4096)])
        # The last three digits of the sequence and the closing brace: padded
        # (index i), and unpadded for sequences below 1000 (index 1000 + i).
        self._decimal_low = _table(
            [b"%03d}\n" % i for i in range(1000)] + [b"%d}\n" % i for i in range(1000)]
        )
        self._times = TimestampFormatter()
        self._time_head = b'","event_time":"'
        self._type_tails = (
            f'","event_type":"{PRODUCT_VIEW}","user_id":'.encode(),
            f'","event_type":"{GROUP_VIEW}","user_id":'.encode(),
        )
        self._user_low = users.min
        self._user_ids: Pieces | None = None
        self._user_queries: Pieces | None = None
        self._user_keys: Pieces | None = None
        if users.size <= TABLE_LIMIT:
            ids = range(users.min, users.max + 1)
            self._user_ids = _table([b"%d" % u for u in ids])
            self._user_queries = _table([b"?userid=%d" % u for u in ids])
            self._user_keys = _table([str(u) for u in ids])
        # Group and product, with the URL up to its query: one entry per group
        # (its group views), then one per product of each group, if few enough.
        self._group_places: list[bytes] = []
        self._product_heads: list[bytes] = []
        self._product_urls: list[bytes] = []
        for group in model.groups:
            head = f',"group_id":{group.id},"group_name":{_json(group.name)},"product_id":'
            url = json.dumps(f"{model.base_url}/api/group/{group.id}", ensure_ascii=False)[1:-1]
            self._group_places.append(f'{head}null,"url":"{url}'.encode())
            self._product_heads.append(head.encode())
            self._product_urls.append(f',"url":"{url}/product/'.encode())
        self._places: Pieces | None = None
        self._product_offsets = np.zeros(len(model.groups), dtype=np.int64)
        if sum(group.products.size for group in model.groups) <= TABLE_LIMIT:
            entries = list(self._group_places)
            for position, group in enumerate(model.groups):
                self._product_offsets[position] = len(entries) - group.products.min
                head_bytes = self._product_heads[position]
                url_bytes = self._product_urls[position]
                entries += [
                    b"%s%d%s%d" % (head_bytes, p, url_bytes, p)
                    for p in range(group.products.min, group.products.max + 1)
                ]
            self._places = _table(entries)

    def encode(
        self, clicks: Clicks, first_sequence: int, *, first_time: float, interval: float
    ) -> list[bytes]:
        """The events' JSON objects, UTF-8, one bytes object each."""
        count = len(clicks.user_id)
        sequences = np.arange(first_sequence, first_sequence + count, dtype=np.int64)
        pieces = np.empty((count, 8), dtype=object)
        pieces[:, 0] = self._id_heads(sequences)
        pieces[:, 1] = self._hex_low[sequences & 0xFFF]
        pieces[:, 2] = self._stamps(clicks.is_group_view, first_time, interval)
        pieces[:, 3], pieces[:, 5] = self._users(clicks.user_id)
        pieces[:, 4] = self._places_of(clicks)
        pieces[:, 6] = self._sequence_heads(sequences)
        pieces[:, 7] = self._decimal_low[sequences % 1000 + np.where(sequences < 1000, 1000, 0)]
        # NB: JSON text never holds a raw newline, so it separates the events.
        data = b"".join(pieces.ravel().tolist()).split(b"\n")
        data.pop()
        return data

    def user_keys(self, users: Ints) -> list[str]:
        """Partition keys: the user ids as text."""
        if self._user_keys is None:
            return list(map(str, users.tolist()))
        result: list[str] = self._user_keys[users - self._user_low].tolist()
        return result

    def _id_heads(self, sequences: Ints) -> Pieces:
        # The event id up to its last three hex digits (the run's prefix, then the sequence's).
        high = sequences >> 12
        low = int(high[0])
        table = _table([b"%s%09x" % (self._id_head, h) for h in range(low, int(high[-1]) + 1)])
        pieces: Pieces = table[high - low]
        return pieces

    def _sequence_heads(self, sequences: Ints) -> Pieces:
        # The producer, then the sequence but for its last three digits.
        high = sequences // 1000
        low = int(high[0])
        table = _table(
            [self._producer + (b"%d" % h if h else b"") for h in range(low, int(high[-1]) + 1)]
        )
        pieces: Pieces = table[high - low]
        return pieces

    def _stamps(
        self, is_group: npt.NDArray[np.bool_], first_time: float, interval: float
    ) -> Pieces:
        # The timestamp and the event type, formatted once per distinct millisecond.
        count = len(is_group)
        millis = first_time * 1000.0 + np.arange(count, dtype=np.float64) * (interval * 1000.0)
        whole = millis.astype(np.int64)
        changes = np.flatnonzero(whole[1:] != whole[:-1]) + 1
        distinct = np.concatenate((whole[:1], whole[changes])).tolist()
        steps = np.zeros(count, dtype=np.int64)
        steps[changes] = 2
        np.cumsum(steps, out=steps)
        entries: list[bytes] = []
        product_tail, group_tail = self._type_tails
        for millisecond in distinct:
            stamp = self._time_head + self._times.format_millis(millisecond).encode()
            entries += (stamp + product_tail, stamp + group_tail)
        pieces: Pieces = _table(entries)[steps + is_group]
        return pieces

    def _users(self, users: Ints) -> tuple[Any, Any]:
        if self._user_ids is None or self._user_queries is None:
            values = users.tolist()
            return [b"%d" % u for u in values], [b"?userid=%d" % u for u in values]
        index = users - self._user_low
        return self._user_ids[index], self._user_queries[index]

    def _places_of(self, clicks: Clicks) -> Any:
        groups, products = clicks.group_index, clicks.product_id
        if self._places is not None:
            index = np.where(clicks.is_group_view, groups, self._product_offsets[groups] + products)
            return self._places[index]
        # Too many products for a table: product views are formatted one by one.
        places = _table(self._group_places)[groups]
        viewed = np.flatnonzero(~clicks.is_group_view)
        heads, urls = self._product_heads, self._product_urls
        places[viewed] = [
            b"%s%d%s%d" % (heads[g], p, urls[g], p)
            for g, p in zip(groups[viewed].tolist(), products[viewed].tolist(), strict=True)
        ]
        return places


def run_id_prefix() -> str:
    """Random first 20 hex digits for a run's UUIDv8 event ids (one per process run)."""
    bits = secrets.randbits(80)
    text = f"{bits:020x}"
    variant = "89ab"[int(text[16], 16) & 3]
    return f"{text[:8]}-{text[8:12]}-8{text[13:16]}-{variant}{text[17:20]}-"


def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
