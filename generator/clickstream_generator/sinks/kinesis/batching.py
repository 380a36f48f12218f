"""Cutting the buffer into PutRecords requests within the service limits.

A request holds at most `MAX_RECORDS_PER_REQUEST` Kinesis records and
`MAX_BYTES_PER_REQUEST` bytes (data plus partition keys, before base64). A
Kinesis record (`Unit`) is one event, or with aggregation many events of one
shard packed together (see ``aggregation``).

Retried units (``ready``) always go first: they are older than anything in
the buffer. In ordered mode an event is held back while another unit with
its partition key is in flight or waiting for a retry, and a request never
holds two units with the same key, so a partial failure cannot reorder a
user's events. The scan for events that may go is bounded (`SCAN_LIMIT`), so
a buffer full of one hot key costs little per batch.

Not here: when to send, retries and accounting (``sink``).
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Collection, Sequence
from itertools import accumulate, islice, repeat
from typing import NamedTuple

from clickstream_generator.model.events import EventBatch, Record
from clickstream_generator.sinks.kinesis.aggregation import (
    FRAME_SIZE,
    AggregateBuilder,
    ShardId,
    ShardMap,
    hash_key,
)

#: Service limits of PutRecords.
MAX_RECORDS_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
MAX_PARTITION_KEY_LENGTH = 256
#: Most buffered events looked at for one batch in ordered mode.
SCAN_LIMIT = 10_000
#: Most partition keys whose shard is remembered (random keys never repeat).
SHARD_CACHE_LIMIT = 100_000


#: The keys of a unit outside ordered mode (shared, to save building one per event).
NO_KEYS: frozenset[str] = frozenset()


class Unit(NamedTuple):
    """One Kinesis record of a request: one event, or an aggregate of several.

    Immutable, so that the buffer's units can be built column by column
    without Python code per event; a retry replaces a unit with a copy whose
    ``attempts`` is one more.
    """

    records: Sequence[Record]
    size: int
    """Bytes as PutRecords counts them."""
    event_bytes: int
    """Sum of the events' own sizes (the accounting's unit)."""
    deadline: float
    """Monotonic time after which it fails instead of being retried."""
    partition_key: str
    arrived: float
    """Monotonic time its first event was buffered (for the linger time)."""
    data: bytes | None
    """The bytes to send; None for an aggregate not encoded yet."""
    explicit_hash_key: str | None = None
    shard_id: ShardId | None = None
    """The shard an aggregate was built for; None for a single event."""
    keys: frozenset[str] = NO_KEYS
    """Partition keys inside (ordered mode only)."""
    attempts: int = 0
    """Requests it failed in so far."""


class Taken(NamedTuple):
    """One request's units, and how many of their event bytes came from the buffer."""

    units: list[Unit]
    fresh_bytes: int


def check_record(record: Record) -> tuple[int, str | None]:
    """Its size, and why it can never be sent (None if it can)."""
    size = len(record.data) + len(record.partition_key.encode("utf-8"))
    if not 1 <= len(record.partition_key) <= MAX_PARTITION_KEY_LENGTH:
        return size, "invalid_partition_key"
    if size > MAX_BYTES_PER_RECORD:
        return size, "record_too_large"
    return size, None


def single(record: Record, size: int, *, deadline: float, now: float, ordered: bool) -> Unit:
    """The unit of one event."""
    key = record.partition_key
    keys = frozenset((key,)) if ordered else NO_KEYS
    return Unit((record,), size, size, deadline, key, now, record.data, keys=keys)


def buffer_all(
    records: Sequence[Record], *, deadline: float, now: float, ordered: bool
) -> tuple[list[Unit], int] | None:
    """A unit for every record, and their bytes; None if one of them cannot be sent.

    Works column by column, without Python code per event (the sink's hot
    path); `check_record` tells what is wrong with a record when this says None.
    """
    if not records:
        return [], 0
    if isinstance(records, EventBatch):
        data, keys = records.data, records.keys
        records = list(
            map(tuple.__new__, repeat(Record), zip(records.sequences, data, keys, strict=True))
        )
    else:
        data = [record.data for record in records]
        keys = [record.partition_key for record in records]
    key_lengths = list(map(len, keys))
    if min(key_lengths) < 1 or max(key_lengths) > MAX_PARTITION_KEY_LENGTH:
        return None
    sizes = list(map(operator.add, map(len, data), map(len, map(str.encode, keys))))
    if max(sizes) > MAX_BYTES_PER_RECORD:
        return None
    # NB: zip(records) gives each record in a 1-tuple: the unit's records.
    fields = zip(
        zip(records),
        sizes,
        sizes,
        repeat(deadline),
        keys,
        repeat(now),
        data,
        repeat(None),
        repeat(None),
        map(frozenset, zip(keys)) if ordered else repeat(NO_KEYS),
        repeat(0),
    )
    # NB: tuple.__new__ builds the named tuples without running Python code per event.
    return list(map(tuple.__new__, repeat(Unit), fields)), sum(sizes)


_SIZE = operator.attrgetter("size")
_EVENT_BYTES = operator.attrgetter("event_bytes")


class Batcher:
    """Takes one request's worth of units from the retry queue and the buffer."""

    def __init__(
        self,
        *,
        ordered: bool = False,
        aggregate: bool = False,
        max_aggregate_bytes: int = 64 * 1024,
    ):
        self.ordered = ordered
        self.aggregate = aggregate
        self.max_aggregate_bytes = min(max_aggregate_bytes, MAX_BYTES_PER_RECORD)
        self.shard_map: ShardMap | None = None
        # The shard of each partition key seen, for the current shard map.
        self._shards: dict[str, ShardId] = {}
        self._shards_of: ShardMap | None = None

    def take(self, ready: deque[Unit], buffer: deque[Unit], held: Collection[str]) -> Taken:
        """Pop units for one request; ``held`` are keys that may not go now (ordered)."""
        batch: list[Unit] = []
        nbytes = 0
        while ready and len(batch) < MAX_RECORDS_PER_REQUEST:
            if nbytes + ready[0].size > MAX_BYTES_PER_REQUEST:
                return Taken(batch, 0)
            unit = ready.popleft()
            batch.append(unit)
            nbytes += unit.size
        retried = len(batch)
        if self.aggregate and self.shard_map is not None:
            self._take_aggregated(buffer, held, batch, nbytes, self.shard_map)
        elif self.ordered:
            self._take_single_ordered(buffer, held, batch, nbytes)
        else:
            self._take_single(buffer, batch, nbytes)
        return Taken(batch, sum(map(_EVENT_BYTES, islice(batch, retried, None))))

    @staticmethod
    def _take_single(buffer: deque[Unit], batch: list[Unit], nbytes: int) -> None:
        room = MAX_RECORDS_PER_REQUEST - len(batch)
        limit = MAX_BYTES_PER_REQUEST - nbytes
        count = 0
        for total in accumulate(map(_SIZE, islice(buffer, room))):
            if total > limit:
                break
            count += 1
        batch.extend(islice(buffer, count))
        for _ in range(count):
            buffer.popleft()

    @staticmethod
    def _take_single_ordered(
        buffer: deque[Unit], held: Collection[str], batch: list[Unit], nbytes: int
    ) -> None:
        taken: set[str] = set()
        skipped: list[Unit] = []
        while buffer and len(batch) < MAX_RECORDS_PER_REQUEST and len(skipped) < SCAN_LIMIT:
            unit = buffer[0]
            if nbytes + unit.size > MAX_BYTES_PER_REQUEST:
                break
            buffer.popleft()
            key = unit.partition_key
            if key in held or key in taken:
                skipped.append(unit)
                continue
            taken.add(key)
            batch.append(unit)
            nbytes += unit.size
        buffer.extendleft(reversed(skipped))

    def _take_aggregated(
        self,
        buffer: deque[Unit],
        held: Collection[str],
        batch: list[Unit],
        nbytes: int,
        shard_map: ShardMap,
    ) -> None:
        ordered = self.ordered
        if self._shards_of is not shard_map:
            self._shards.clear()
            self._shards_of = shard_map
        elif len(self._shards) > SHARD_CACHE_LIMIT:
            self._shards.clear()
        shards = self._shards
        builders: dict[ShardId, tuple[AggregateBuilder, list[Unit]]] = {}
        closed_keys: set[str] = set()
        skipped: list[Unit] = []
        while buffer and len(skipped) < SCAN_LIMIT:
            item = buffer[0]
            record = item.records[0]
            key = item.partition_key
            if ordered and (key in held or key in closed_keys):
                skipped.append(buffer.popleft())
                continue
            # An event too large to share a record goes alone, unaggregated.
            if item.size + FRAME_SIZE + 16 > self.max_aggregate_bytes:
                if len(batch) + len(builders) >= MAX_RECORDS_PER_REQUEST:
                    break
                if nbytes + item.size > MAX_BYTES_PER_REQUEST:
                    break
                batch.append(buffer.popleft())
                nbytes += item.size
                continue
            shard = shards.get(key)
            if shard is None:
                shard = shards[key] = shard_map.shard_of(hash_key(key))
            entry = builders.get(shard)
            growth = 0 if entry is None else entry[0].growth(record)
            if entry is not None and not entry[0].fits(record, growth):
                # The shard's aggregate is full: it joins the batch as it is.
                del builders[shard]
                batch.append(self._finish(*entry))
                if ordered:
                    closed_keys.update(r.partition_key for r in entry[0].records)
                    if key in closed_keys:
                        continue
                entry = None
            if entry is None:
                if len(batch) + len(builders) >= MAX_RECORDS_PER_REQUEST:
                    break
                entry = (AggregateBuilder(shard, self.max_aggregate_bytes), [])
                inner = entry[0].growth(record)
                growth = FRAME_SIZE + len(key.encode("utf-8")) + inner
            else:
                inner = growth
            if nbytes + growth > MAX_BYTES_PER_REQUEST:
                break
            builders[shard] = entry
            buffer.popleft()
            entry[0].add(record, inner)
            entry[1].append(item)
            nbytes += growth
        for entry in builders.values():
            batch.append(self._finish(*entry))
        buffer.extendleft(reversed(skipped))

    def _finish(self, builder: AggregateBuilder, items: list[Unit]) -> Unit:
        if len(items) == 1:
            return items[0]
        first = builder.records[0].partition_key
        return Unit(
            records=builder.records,
            size=builder.size,
            event_bytes=sum(item.event_bytes for item in items),
            deadline=min(item.deadline for item in items),
            partition_key=first,
            arrived=min(item.arrived for item in items),
            data=None,
            explicit_hash_key=str(hash_key(first)),
            shard_id=builder.shard_id,
            keys=frozenset(r.partition_key for r in builder.records) if self.ordered else NO_KEYS,
        )
