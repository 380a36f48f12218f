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
from dataclasses import dataclass, field
from itertools import repeat
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


class Buffered(NamedTuple):
    """An event waiting in the buffer."""

    record: Record
    size: int
    """Data plus partition key, in bytes."""
    deadline: float
    """Monotonic time after which it fails instead of being retried."""
    arrived: float
    """Monotonic time it was buffered (for the linger time)."""


@dataclass(eq=False, slots=True)
class Unit:
    """One Kinesis record of a request: one event, or an aggregate of several."""

    records: list[Record]
    size: int
    """Bytes as PutRecords counts them."""
    event_bytes: int
    """Sum of the events' own sizes (the accounting's unit)."""
    deadline: float
    partition_key: str
    explicit_hash_key: str | None = None
    shard_id: ShardId | None = None
    """The shard an aggregate was built for; None for a single event."""
    data: bytes | None = None
    """The bytes to send; encoded by the sender thread for aggregates."""
    attempts: int = 0
    sent: bool = False
    """Whether it has left the buffer for a request before."""
    keys: frozenset[str] = field(default_factory=frozenset)
    """Partition keys inside (ordered mode only)."""


def check_record(record: Record) -> tuple[int, str | None]:
    """Its size, and why it can never be sent (None if it can)."""
    size = len(record.data) + len(record.partition_key.encode("utf-8"))
    if not 1 <= len(record.partition_key) <= MAX_PARTITION_KEY_LENGTH:
        return size, "invalid_partition_key"
    if size > MAX_BYTES_PER_RECORD:
        return size, "record_too_large"
    return size, None


def buffer_all(
    records: Sequence[Record], *, deadline: float, now: float
) -> tuple[list[Buffered], int] | None:
    """Every record ready to buffer, and their bytes; None if one of them cannot be sent.

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
    # NB: tuple.__new__ builds the named tuples without running Python code per event.
    entries = zip(records, sizes, repeat(deadline), repeat(now))
    return list(map(tuple.__new__, repeat(Buffered), entries)), sum(sizes)


#: The keys of a unit outside ordered mode (shared, to save building one per event).
NO_KEYS: frozenset[str] = frozenset()


def single(item: Buffered, *, ordered: bool) -> Unit:
    record = item.record
    return Unit(
        records=[record],
        size=item.size,
        event_bytes=item.size,
        deadline=item.deadline,
        partition_key=record.partition_key,
        data=record.data,
        keys=frozenset((record.partition_key,)) if ordered else NO_KEYS,
    )


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

    def take(
        self, ready: deque[Unit], buffer: deque[Buffered], held: Collection[str]
    ) -> list[Unit]:
        """Pop units for one request; ``held`` are keys that may not go now (ordered)."""
        batch: list[Unit] = []
        nbytes = 0
        while ready and len(batch) < MAX_RECORDS_PER_REQUEST:
            if nbytes + ready[0].size > MAX_BYTES_PER_REQUEST:
                return batch
            unit = ready.popleft()
            batch.append(unit)
            nbytes += unit.size
        if self.aggregate and self.shard_map is not None:
            self._take_aggregated(buffer, held, batch, nbytes, self.shard_map)
        else:
            self._take_single(buffer, held, batch, nbytes)
        return batch

    def _take_single(
        self, buffer: deque[Buffered], held: Collection[str], batch: list[Unit], nbytes: int
    ) -> None:
        ordered = self.ordered
        taken: set[str] = set()
        skipped: list[Buffered] = []
        while buffer and len(batch) < MAX_RECORDS_PER_REQUEST and len(skipped) < SCAN_LIMIT:
            item = buffer[0]
            if nbytes + item.size > MAX_BYTES_PER_REQUEST:
                break
            buffer.popleft()
            if ordered:
                key = item.record.partition_key
                if key in held or key in taken:
                    skipped.append(item)
                    continue
                taken.add(key)
            batch.append(single(item, ordered=ordered))
            nbytes += item.size
        buffer.extendleft(reversed(skipped))

    def _take_aggregated(
        self,
        buffer: deque[Buffered],
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
        builders: dict[ShardId, tuple[AggregateBuilder, list[Buffered]]] = {}
        closed_keys: set[str] = set()
        skipped: list[Buffered] = []
        while buffer and len(skipped) < SCAN_LIMIT:
            item = buffer[0]
            record = item.record
            key = record.partition_key
            if ordered and (key in held or key in closed_keys):
                skipped.append(buffer.popleft())
                continue
            # An event too large to share a record goes alone, unaggregated.
            if item.size + FRAME_SIZE + 16 > self.max_aggregate_bytes:
                if len(batch) + len(builders) >= MAX_RECORDS_PER_REQUEST:
                    break
                if nbytes + item.size > MAX_BYTES_PER_REQUEST:
                    break
                batch.append(single(buffer.popleft(), ordered=ordered))
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

    def _finish(self, builder: AggregateBuilder, items: list[Buffered]) -> Unit:
        if len(items) == 1:
            return single(items[0], ordered=self.ordered)
        first = builder.records[0].partition_key
        return Unit(
            records=builder.records,
            size=builder.size,
            event_bytes=sum(item.size for item in items),
            deadline=min(item.deadline for item in items),
            partition_key=first,
            explicit_hash_key=str(hash_key(first)),
            shard_id=builder.shard_id,
            keys=frozenset(r.partition_key for r in builder.records) if self.ordered else NO_KEYS,
        )
