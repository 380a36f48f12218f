"""Packing buffered events into KPL aggregates, one open aggregate per shard.

With ``--aggregate`` every event passes through here once, so the work is
done column by column for each chunk the producer hands over, without Python
code per event: each event's shard comes from a cache of partition keys, the
chunk is grouped by shard with one stable sort, and each group is cut into
aggregates where the running sum of the events' sizes reaches the limit. An
aggregate is a `Unit` whose ``data`` is encoded later, by the sender thread
(`aggregation.encode_aggregate`).

Sizes are upper bounds: every event is counted as if its partition key were
new to the aggregate and its key index took two bytes, so an aggregate may
end a few bytes short of ``max_size`` but never passes it, nor the 5 MiB of a
request. An aggregate that ends up with one event is sent as a plain record.
An aggregate holds at most `MAX_EVENTS` events (two-byte key indexes).

Not here: when open aggregates are closed (``sink``: when they have lingered
or on a flush), the byte format (``aggregation``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt

from clickstream_generator.model.events import Record
from clickstream_generator.sinks.kinesis.aggregation import (
    FRAME_SIZE,
    ShardId,
    ShardMap,
    hash_key,
)
from clickstream_generator.sinks.kinesis.batching import EVENTS_OF, NO_KEYS, Columns, Unit

#: Most events in one aggregate: key indexes stay within two varint bytes.
MAX_EVENTS = 0x4000 - 1
#: Most partition keys whose shard is remembered (random keys never repeat).
SHARD_CACHE_LIMIT = 100_000
#: Bytes an event may take in an aggregate beyond data and key, at most:
#: four tags, and the varints of the key index (two bytes at most).
_FIXED_OVERHEAD = 4 + 2
#: The shard index of events that go alone.
_ALONE = -1


class EventColumns(Sequence[Record]):
    """The events of an aggregate, column by column; records are built on demand."""

    __slots__ = ("data", "keys", "sequences")

    def __init__(self, sequences: list[int], data: list[bytes], keys: list[str]):
        self.sequences = sequences
        self.data = data
        self.keys = keys

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        if isinstance(index, slice):
            return list(self)[index]
        return Record(self.sequences[index], self.data[index], self.keys[index])

    def __iter__(self) -> Iterator[Record]:
        return map(Record._make, zip(self.sequences, self.data, self.keys, strict=True))


def sizes_in_aggregate(
    data_sizes: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Most bytes each event adds to an aggregate: its key table entry and its record entry.

    ``sizes`` are data plus key bytes, ``data_sizes`` the data alone.
    """
    key_sizes = sizes - data_sizes
    # The record entry's body: two tags, the key index, the data size, the data.
    inner = 4 + _varint_sizes(data_sizes) + data_sizes
    varints = _varint_sizes(key_sizes) + _varint_sizes(data_sizes) + _varint_sizes(inner)
    return sizes + _FIXED_OVERHEAD + varints


def _varint_sizes(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return 1 + (values >= 0x80) + (values >= 0x4000) + (values >= 0x200000)


@dataclass(slots=True)
class _Open:
    """An aggregate still taking events."""

    shard_id: ShardId
    arrived: float
    deadline: float
    size: int
    sequences: list[int]
    data: list[bytes]
    keys: list[str]
    event_bytes: int = 0


class Packer:
    """Keeps one open aggregate per shard and packs events into them."""

    def __init__(self, *, max_size: int, ordered: bool = False):
        self.max_size = max_size
        self.ordered = ordered
        self._shard_map: ShardMap | None = None
        self._shards: dict[str, int] = {}
        self._open: dict[int, _Open] = {}
        self.open_events = 0
        """Events in open aggregates."""

    @property
    def shard_map(self) -> ShardMap | None:
        return self._shard_map

    @shard_map.setter
    def shard_map(self, shard_map: ShardMap) -> None:
        # NB: open aggregates keep their shard; new events follow the new map.
        self._shard_map = shard_map
        self._shards.clear()

    @property
    def oldest(self) -> float | None:
        """When the oldest open aggregate's first event arrived; None when there is none."""
        return min((entry.arrived for entry in self._open.values()), default=None)

    def add(self, columns: Columns, *, deadline: float, now: float) -> list[Unit]:
        """Pack the events; return the aggregates they filled up."""
        count = len(columns.data)
        if not count:
            return []
        if self._shard_map is None:
            raise RuntimeError("the shard map must be read before events are packed")
        shard_of = self._shard_indexes(columns.keys)
        data_sizes = np.fromiter(map(len, columns.data), dtype=np.int64, count=count)
        sizes = np.asarray(columns.sizes, dtype=np.int64)
        costs = sizes_in_aggregate(data_sizes, sizes)
        closed: list[Unit] = []
        # An event too large to share an aggregate goes alone, as a plain record.
        alone = np.flatnonzero(costs + FRAME_SIZE + (sizes - data_sizes) > self.max_size)
        for position in alone.tolist():
            closed.append(self._unit(self._single(position, columns, deadline, now)))
        shard_of[alone] = _ALONE
        order = np.argsort(shard_of, kind="stable")
        shards_sorted = shard_of[order]
        starts = np.flatnonzero(np.r_[True, shards_sorted[1:] != shards_sorted[:-1]])
        ends = np.r_[starts[1:], count]
        sequences = columns.sequences
        event_sizes = columns.sizes
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            positions = order[start:end]
            shard = int(shards_sorted[start])
            if shard == _ALONE:
                continue
            self._fill(
                shard,
                positions.tolist(),
                np.cumsum(costs[positions]),
                columns,
                sequences,
                event_sizes,
                deadline=deadline,
                now=now,
                closed=closed,
            )
        self.open_events += count
        self.open_events -= sum(map(EVENTS_OF, closed))
        return closed

    def close_all(self) -> list[Unit]:
        """Close every open aggregate, oldest first."""
        entries = sorted(self._open.values(), key=operator.attrgetter("arrived"))
        self._open.clear()
        self.open_events = 0
        return [self._unit(entry) for entry in entries]

    # -- internals ------------------------------------------------------------

    def _shard_indexes(self, keys: list[str]) -> npt.NDArray[np.intp]:
        shards = self._shards
        if len(shards) > SHARD_CACHE_LIMIT:
            shards.clear()
        found = list(map(shards.get, keys))
        if None in found:
            assert self._shard_map is not None
            for index, key in enumerate(keys):
                if found[index] is None:
                    shard = shards.get(key)
                    if shard is None:
                        shard = shards[key] = self._shard_map.index_of(hash_key(key))
                    found[index] = shard
        return np.asarray(found, dtype=np.intp)

    def _fill(
        self,
        shard: int,
        positions: list[int],
        cumulative: npt.NDArray[np.int64],
        columns: Columns,
        sequences: Sequence[int],
        event_sizes: list[int],
        *,
        deadline: float,
        now: float,
        closed: list[Unit],
    ) -> None:
        assert self._shard_map is not None
        taken = 0
        consumed = 0
        total = len(positions)
        while taken < total:
            entry = self._open.get(shard)
            if entry is None:
                first_key = columns.keys[positions[taken]]
                entry = self._open[shard] = _Open(
                    shard_id=self._shard_map.shard_ids[shard],
                    arrived=now,
                    deadline=deadline,
                    size=FRAME_SIZE + len(first_key.encode("utf-8")),
                    sequences=[],
                    data=[],
                    keys=[],
                )
            room = self.max_size - entry.size
            # Events that fit: the running sum of their sizes stays within the room.
            fits = int(np.searchsorted(cumulative[taken:], consumed + room, side="right"))
            fits = min(fits, MAX_EVENTS - len(entry.data))
            if fits == 0 and not entry.data:
                # NB: an event always fits an empty aggregate (the sink sends
                # events too large to share one as plain records).
                fits = 1
            if fits:
                chosen = positions[taken : taken + fits]
                pick = operator.itemgetter(*chosen)
                if fits == 1:
                    entry.sequences.append(sequences[chosen[0]])
                    entry.data.append(columns.data[chosen[0]])
                    entry.keys.append(columns.keys[chosen[0]])
                    entry.event_bytes += event_sizes[chosen[0]]
                else:
                    entry.sequences.extend(pick(sequences))
                    entry.data.extend(pick(columns.data))
                    entry.keys.extend(pick(columns.keys))
                    entry.event_bytes += sum(pick(event_sizes))
                added = int(cumulative[taken + fits - 1]) - consumed
                entry.size += added
                consumed += added
                taken += fits
            if taken < total:
                # Full: it leaves for the buffer, the rest starts a new one.
                del self._open[shard]
                closed.append(self._unit(entry))

    def _single(self, position: int, columns: Columns, deadline: float, now: float) -> _Open:
        assert self._shard_map is not None
        key = columns.keys[position]
        return _Open(
            shard_id=self._shard_map.shard_ids[0],
            arrived=now,
            deadline=deadline,
            size=columns.sizes[position],
            sequences=[columns.sequences[position]],
            data=[columns.data[position]],
            keys=[key],
            event_bytes=columns.sizes[position],
        )

    def _unit(self, entry: _Open) -> Unit:
        keys = frozenset(entry.keys) if self.ordered else NO_KEYS
        first = entry.keys[0]
        if len(entry.data) == 1:
            size = entry.event_bytes
            return Unit(
                1,
                entry.sequences[0],
                size,
                size,
                entry.deadline,
                first,
                entry.arrived,
                entry.data[0],
                keys=keys,
            )
        return Unit(
            events=len(entry.data),
            sequence=entry.sequences[0],
            inside=EventColumns(entry.sequences, entry.data, entry.keys),
            size=entry.size,
            event_bytes=entry.event_bytes,
            deadline=entry.deadline,
            partition_key=first,
            arrived=entry.arrived,
            data=None,
            explicit_hash_key=str(hash_key(first)),
            shard_id=entry.shard_id,
            keys=keys,
        )
