"""Cutting the buffer into PutRecords requests within the service limits.

A request holds at most `MAX_RECORDS_PER_REQUEST` Kinesis records and
`MAX_BYTES_PER_REQUEST` bytes (data plus partition keys, before base64). A
Kinesis record (`Unit`) is one event, or with aggregation many events of one
shard packed together (see ``aggregation``).

Retried units (``ready``) always go first: they are older than anything in
the buffer. In ordered mode a unit is held back while another unit sharing
one of its partition keys is in flight or waiting for a retry, or was held
back before it in this scan, and a request never holds two units sharing a
key, so a partial failure cannot reorder a user's events. The scan for units
that may go is bounded (`SCAN_LIMIT`), so a buffer full of one hot key costs
little per batch.

Not here: when to send, retries and accounting (``sink``).
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Collection, Sequence
from itertools import accumulate, islice, repeat
from typing import NamedTuple

from clickstream_generator.model.events import EventBatch, Record
from clickstream_generator.sinks.kinesis.aggregation import ShardId

#: Service limits of PutRecords.
MAX_RECORDS_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
MAX_PARTITION_KEY_LENGTH = 256
#: Most buffered events looked at for one batch in ordered mode.
SCAN_LIMIT = 10_000


#: The keys of a unit outside ordered mode (shared, to save building one per event).
NO_KEYS: frozenset[str] = frozenset()


class Unit(NamedTuple):
    """One Kinesis record of a request: one event, or an aggregate of several.

    Immutable, so that the buffer's units can be built column by column
    without Python code per event; a retry replaces a unit with a copy whose
    ``attempts`` is one more. A single event's unit holds no `Record`: its
    sequence, data and key are fields of the unit, which saves two objects per
    buffered event (about 10 MiB at the default buffer limit).
    """

    events: int
    """Events inside: 1, or an aggregate's count."""
    sequence: int
    """The event's sequence number (an aggregate's first)."""
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
    inside: Sequence[Record] | None = None
    """An aggregate's events; None for a single event."""

    @property
    def records(self) -> Sequence[Record]:
        """The events inside, as records (built on demand for a single event)."""
        if self.inside is not None:
            return self.inside
        assert self.data is not None
        return (Record(self.sequence, self.data, self.partition_key),)


#: The events in a unit, as a C-level getter (summed over whole batches).
#: NB: ``Unit.events`` is a field, not ``len(records)``, so that this runs no
#: Python code per unit.
EVENTS_OF: Callable[[Unit], int] = operator.attrgetter("events")


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


class Columns(NamedTuple):
    """Events to buffer, column by column, with their sizes."""

    sequences: Sequence[int]
    data: list[bytes]
    keys: list[str]
    sizes: list[int]
    """Data plus partition key, in bytes."""


def columns_of(records: Sequence[Record]) -> Columns | None:
    """The records as columns; None if one of them can never be sent.

    Works column by column, without Python code per event (the sink's hot
    path); `check_record` tells what is wrong with a record when this says None.
    """
    if isinstance(records, EventBatch):
        sequences: Sequence[int] = records.sequences
        data, keys = records.data, records.keys
    else:
        sequences = [record.sequence for record in records]
        data = [record.data for record in records]
        keys = [record.partition_key for record in records]
    if not records:
        return Columns(sequences, data, keys, [])
    key_lengths = list(map(len, keys))
    if min(key_lengths) < 1 or max(key_lengths) > MAX_PARTITION_KEY_LENGTH:
        return None
    # NB: an ASCII key has as many bytes as characters (the usual case: no encoding).
    key_sizes = key_lengths if "".join(keys).isascii() else map(len, map(str.encode, keys))
    sizes = list(map(operator.add, map(len, data), key_sizes))
    if max(sizes) > MAX_BYTES_PER_RECORD:
        return None
    return Columns(sequences, data, keys, sizes)


def singles(columns: Columns, *, deadline: float, now: float, ordered: bool) -> list[Unit]:
    """A unit for every event, built without Python code per event."""
    keys = columns.keys
    fields = zip(
        repeat(1),
        columns.sequences,
        columns.sizes,
        columns.sizes,
        repeat(deadline),
        keys,
        repeat(now),
        columns.data,
        repeat(None),
        repeat(None),
        map(frozenset, zip(keys)) if ordered else repeat(NO_KEYS),
        repeat(0),
        repeat(None),
    )
    # NB: tuple.__new__ builds the named tuples without running Python code per event.
    return list(map(tuple.__new__, repeat(Unit), fields))


_SIZE = operator.attrgetter("size")
_EVENT_BYTES = operator.attrgetter("event_bytes")


class Batcher:
    """Takes one request's worth of units from the retry queue and the buffer."""

    def __init__(self, *, ordered: bool = False):
        self.ordered = ordered

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
        if self.ordered:
            self._take_ordered(buffer, held, batch, nbytes)
        else:
            self._take_in_order(buffer, batch, nbytes)
        return Taken(batch, sum(map(_EVENT_BYTES, islice(batch, retried, None))))

    @staticmethod
    def _take_in_order(buffer: deque[Unit], batch: list[Unit], nbytes: int) -> None:
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
    def _take_ordered(
        buffer: deque[Unit], held: Collection[str], batch: list[Unit], nbytes: int
    ) -> None:
        # Keys that may not go: in flight or retrying, taken, or of a unit held back.
        blocked = set(held)
        skipped: list[Unit] = []
        while buffer and len(batch) < MAX_RECORDS_PER_REQUEST and len(skipped) < SCAN_LIMIT:
            unit = buffer[0]
            if nbytes + unit.size > MAX_BYTES_PER_REQUEST:
                break
            buffer.popleft()
            if not blocked.isdisjoint(unit.keys):
                skipped.append(unit)
            else:
                batch.append(unit)
                nbytes += unit.size
            blocked.update(unit.keys)
        buffer.extendleft(reversed(skipped))
