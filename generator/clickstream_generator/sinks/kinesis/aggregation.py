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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, Final, NewType

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
        """The shard owning a hash key."""
        return self.shard_ids[self.index_of(key_hash)]

    def index_of(self, key_hash: int) -> int:
        """The index of the shard owning a hash key (the last one starting at or below it)."""
        return max(bisect.bisect_right(self.starts, key_hash) - 1, 0)


def encode_aggregate(keys: Sequence[str], data: Sequence[bytes]) -> bytes:
    """The aggregated record of the events ``keys`` and ``data`` (index-aligned), in order.

    Each distinct partition key is listed once. Built with C-level iteration
    only (joins over zipped columns): this runs for every aggregated event.
    """
    # NB: dict.fromkeys keeps the first occurrence's order: the key table.
    index_of = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    table_keys = list(map(str.encode, index_of))
    key_varint = _varint_function(len(index_of))
    table = b"".join(
        chain.from_iterable(
            zip(
                repeat(_TABLE_KEY_TAG),
                map(_SMALL_VARINTS.__getitem__, map(len, table_keys)),
                table_keys,
            )
        )
    )
    sizes = list(map(len, data))
    size_varint = _varint_function(max(sizes, default=0))
    index_varints = list(map(key_varint, map(index_of.__getitem__, keys)))
    size_varints = list(map(size_varint, sizes))
    # inner = key index tag + its varint + data tag + size varint + data
    inners = list(map(sum, zip(repeat(2), map(len, index_varints), map(len, size_varints), sizes)))
    inner_varint = _varint_function(max(inners, default=0))
    body = table + b"".join(
        chain.from_iterable(
            zip(
                repeat(_RECORD_TAG),
                map(inner_varint, inners),
                repeat(_KEY_INDEX_TAG),
                index_varints,
                repeat(_DATA_TAG),
                size_varints,
                data,
            )
        )
    )
    return MAGIC + body + hashlib.md5(body, usedforsecurity=False).digest()


def _varint_function(largest: int) -> Callable[[int], bytes]:
    """`varint`, or a table lookup doing the same when no value passes ``largest``."""
    return _SMALL_VARINTS.__getitem__ if largest < len(_SMALL_VARINTS) else varint
