"""Packing many events into one Kinesis record in the KPL aggregated format.

An aggregated record is::

    magic (F3 89 9A C2) ‖ protobuf AggregatedRecord ‖ MD5 of the protobuf

with ``AggregatedRecord = {1: repeated partition key, 2: repeated explicit hash
key, 3: repeated Record}`` and ``Record = {1: partition key index, 2: explicit
hash key index, 3: data}``. KCL and the ``aws-kinesis-agg`` de-aggregators
read it back into the original events, partition keys included.

Kinesis routes a record by its own key, not by the keys inside it, so events
are only grouped with others of the same shard (`ShardMap`), and the
aggregate is sent with an explicit hash key inside that shard: the hash of its
first event's partition key. Consumers that rely on "all events of a user are
on one shard" keep that guarantee as long as the shard map is current; the
sink re-reads it when Kinesis puts an aggregate on an unexpected shard.

Only the protobuf subset this format needs is encoded here (varints and
length-delimited fields); there is no decoder, the tests use the reference one.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NewType

from clickstream_generator.model.events import Record

ShardId = NewType("ShardId", str)

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_SIZE = 16
#: Overhead of an aggregate beyond its protobuf body.
FRAME_SIZE = len(MAGIC) + DIGEST_SIZE

_TABLE_KEY_TAG = b"\x0a"  # field 1, length-delimited
_RECORD_TAG = b"\x1a"  # field 3, length-delimited
_KEY_INDEX_TAG = b"\x08"  # field 1, varint
_DATA_TAG = b"\x1a"  # field 3, length-delimited


def varint(value: int) -> bytes:
    """A protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_size(value: int) -> int:
    """Bytes `varint` would produce, without producing them."""
    if value < 0x4000:
        return 1 if value < 0x80 else 2
    size = 3
    value >>= 21
    while value > 0:
        value >>= 7
        size += 1
    return size


#: Varints of the small numbers that key indexes and event lengths are, ready-made.
_SMALL_VARINTS: Final = [varint(value) for value in range(0x4000)]


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key Kinesis derives from a partition key (MD5)."""
    return int.from_bytes(
        hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest(), "big"
    )


@dataclass(frozen=True)
class ShardMap:
    """The open shards of a stream and the hash key range each owns."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    shard_ids: tuple[ShardId, ...]

    @classmethod
    def from_shards(cls, shards: Iterable[dict[str, Any]]) -> ShardMap:
        """Build from ListShards entries, keeping open shards only."""
        ranges = sorted(
            (
                int(shard["HashKeyRange"]["StartingHashKey"]),
                int(shard["HashKeyRange"]["EndingHashKey"]),
                ShardId(shard["ShardId"]),
            )
            for shard in shards
            if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {})
        )
        if not ranges:
            raise ValueError("the stream has no open shards")
        return cls(
            tuple(r[0] for r in ranges), tuple(r[1] for r in ranges), tuple(r[2] for r in ranges)
        )

    def shard_of(self, key_hash: int) -> ShardId:
        """The shard owning a hash key (the last one whose range starts at or below it)."""
        index = bisect.bisect_right(self.starts, key_hash) - 1
        return self.shard_ids[max(index, 0)]


class AggregateBuilder:
    """Collects events of one shard into one aggregated record, tracking its size."""

    def __init__(self, shard_id: ShardId, max_size: int):
        self.shard_id = shard_id
        self.max_size = max_size
        self.records: list[Record] = []
        self.size = 0
        """Bytes of the finished record plus its partition key, as PutRecords counts them."""
        self._keys: dict[str, int] = {}

    def growth(self, record: Record) -> int:
        """Bytes the aggregate grows by when ``record`` is added."""
        key = record.partition_key
        index = self._keys.get(key)
        growth = 0
        if index is None:
            index = len(self._keys)
            key_size = len(key.encode())
            growth = 1 + varint_size(key_size) + key_size
        data_size = len(record.data)
        inner = 2 + varint_size(index) + varint_size(data_size) + data_size
        return growth + 1 + varint_size(inner) + inner

    def fits(self, record: Record, growth: int | None = None) -> bool:
        """Whether ``record`` can join without passing ``max_size`` (an empty one always can)."""
        if not self.records:
            return True
        return self.size + (self.growth(record) if growth is None else growth) <= self.max_size

    def add(self, record: Record, growth: int | None = None) -> None:
        """Add ``record``; ``growth`` is what `growth` said for it, if already asked."""
        if growth is None:
            growth = self.growth(record)
        if not self.records:
            # The aggregate's own partition key (its first event's) counts too.
            self.size = FRAME_SIZE + len(record.partition_key.encode())
        self.size += growth
        if record.partition_key not in self._keys:
            self._keys[record.partition_key] = len(self._keys)
        self.records.append(record)


def encode_aggregate(records: Sequence[Record]) -> bytes:
    """The aggregated record of ``records``, in order (magic, protobuf, MD5)."""
    keys: dict[str, int] = {}
    parts: list[bytes] = []
    append = parts.append
    small = _SMALL_VARINTS
    for record in records:
        key = record.partition_key
        index = keys.get(key)
        if index is None:
            index = keys[key] = len(keys)
        data = record.data
        size = len(data)
        index_varint = small[index] if index < 0x4000 else varint(index)
        size_varint = small[size] if size < 0x4000 else varint(size)
        inner = 2 + len(index_varint) + len(size_varint) + size
        append(_RECORD_TAG)
        append(small[inner] if inner < 0x4000 else varint(inner))
        append(_KEY_INDEX_TAG)
        append(index_varint)
        append(_DATA_TAG)
        append(size_varint)
        append(data)
    table = []
    for key in keys:
        encoded = key.encode("utf-8")
        table.append(_TABLE_KEY_TAG + varint(len(encoded)) + encoded)
    body = b"".join(table) + b"".join(parts)
    return MAGIC + body + hashlib.md5(body, usedforsecurity=False).digest()
