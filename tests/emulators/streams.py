"""Kinesis clients, streams and record reading for tests against emulators.

The helpers here talk to whichever endpoint they are given (kinesalite, moto
server, or moto's in-process mock when the endpoint is ``None``). They exist
so that every test sets up streams and checks delivered records the same way:

* :func:`kinesis_client` builds a client with fixed dummy credentials and no
  proxy, so a developer's real AWS credentials are never read or sent.
* :func:`create_stream` waits for ACTIVE by polling with a deadline.
* :func:`read_all_records` reads every shard from TRIM_HORIZON, closed parent
  shards included, and can keep polling until an expected count arrives.

What this module does not do: start emulators (see ``servers``) or inject
faults (use botocore event hooks on the client; no emulator throttles).

Limits: GetRecords does not return the ExplicitHashKey a record was put with,
so :attr:`StoredRecord.explicit_hash_key` is ``None`` with both emulators; use
:func:`hash_key_of` and :func:`list_shards` to check routing instead.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import TYPE_CHECKING, NamedTuple

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

__all__ = [
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "ShardRange",
    "StoredRecord",
    "create_stream",
    "hash_key_of",
    "kinesis_client",
    "list_shards",
    "read_all_records",
    "unique_stream_name",
    "wait_for_stream_active",
]

DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
_POLL_INTERVAL = 0.02
_STREAM_NAME_LIMIT = 128


class ShardRange(NamedTuple):
    """One shard of a stream and the hash keys it owns (both ends included)."""

    shard_id: str
    starting_hash_key: int
    ending_hash_key: int
    parent_shard_id: str | None
    adjacent_parent_shard_id: str | None
    is_open: bool

    def owns(self, hash_key: int) -> bool:
        return self.starting_hash_key <= hash_key <= self.ending_hash_key


class StoredRecord(NamedTuple):
    """A record as read back from a stream."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    explicit_hash_key: str | None


def kinesis_client(
    endpoint_url: str | None,
    region: str = "us-east-1",
    *,
    config: Config | None = None,
) -> KinesisClient:
    """A Kinesis client for an emulator, with dummy credentials set explicitly.

    ``endpoint_url=None`` is for ``moto.mock_aws``, which intercepts requests
    in process. ``config`` is merged over the defaults (few retries, short
    timeouts, no proxy).
    """
    defaults = Config(
        # An empty map, not None: botocore would otherwise honour HTTP_PROXY.
        proxies={},
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        aws_session_token=None,
        region_name=region,
    )
    return session.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name=region,
        config=defaults.merge(config) if config is not None else defaults,
    )


def unique_stream_name(prefix: str = "test") -> str:
    """A stream name no other test uses; ``prefix`` helps to tell them apart."""
    suffix = uuid.uuid4().hex[:12]
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]+", "-", prefix).strip("-") or "test"
    return f"{cleaned[: _STREAM_NAME_LIMIT - len(suffix) - 1]}-{suffix}"


def create_stream(
    client: KinesisClient,
    name: str,
    shards: int = 1,
    wait: bool = True,
    *,
    timeout: float = 30.0,
) -> None:
    """Create a provisioned stream and, unless ``wait`` is false, wait for ACTIVE."""
    client.create_stream(StreamName=name, ShardCount=shards)
    if wait:
        wait_for_stream_active(client, name, timeout=timeout)


def wait_for_stream_active(client: KinesisClient, name: str, *, timeout: float = 30.0) -> None:
    """Poll until the stream is ACTIVE (after create, split, merge or update)."""
    deadline = time.monotonic() + timeout
    while True:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        status = summary["StreamStatus"]
        if status == "ACTIVE":
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Stream {name!r} is still {status} after {timeout} s.")
        time.sleep(_POLL_INTERVAL)


def list_shards(client: KinesisClient, stream_name: str) -> list[ShardRange]:
    """Every shard of the stream, open and closed, in shard-id order."""
    shards: list[ShardRange] = []
    response = client.list_shards(StreamName=stream_name)
    while True:
        for shard in response["Shards"]:
            hash_range = shard["HashKeyRange"]
            shards.append(
                ShardRange(
                    shard_id=shard["ShardId"],
                    starting_hash_key=int(hash_range["StartingHashKey"]),
                    ending_hash_key=int(hash_range["EndingHashKey"]),
                    parent_shard_id=shard.get("ParentShardId"),
                    adjacent_parent_shard_id=shard.get("AdjacentParentShardId"),
                    is_open="EndingSequenceNumber" not in shard["SequenceNumberRange"],
                )
            )
        token = response.get("NextToken")
        if not token:
            break
        response = client.list_shards(NextToken=token)
    return sorted(shards, key=lambda shard: shard.shard_id)


def hash_key_of(partition_key: str) -> int:
    """The hash key Kinesis derives from a partition key (MD5 as a 128-bit int)."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def read_all_records(
    client: KinesisClient,
    stream_name: str,
    *,
    expected: int | None = None,
    timeout: float = 30.0,
) -> list[StoredRecord]:
    """Read every record of every shard from TRIM_HORIZON.

    Without ``expected``, read each shard until caught up, once. With it,
    keep polling (new shards included) until at least that many records
    have arrived or ``timeout`` passes; then return what was read, so the
    caller's assertion can show what is missing. Records come grouped by
    shard, in sequence order within a shard.
    """
    deadline = time.monotonic() + timeout
    # shard id -> iterator to continue from; None once a closed shard is done.
    iterators: dict[str, str | None] = {}
    records: list[StoredRecord] = []
    while True:
        # Shards can appear between rounds when the stream is resharded.
        for shard in list_shards(client, stream_name):
            if shard.shard_id not in iterators:
                iterators[shard.shard_id] = client.get_shard_iterator(
                    StreamName=stream_name,
                    ShardId=shard.shard_id,
                    ShardIteratorType="TRIM_HORIZON",
                )["ShardIterator"]

        for shard_id, iterator in iterators.items():
            if iterator is not None:
                iterators[shard_id] = _drain_shard(client, shard_id, iterator, records, deadline)

        if expected is None or len(records) >= expected or time.monotonic() >= deadline:
            return records
        time.sleep(_POLL_INTERVAL)


def _drain_shard(
    client: KinesisClient,
    shard_id: str,
    iterator: str,
    records: list[StoredRecord],
    deadline: float,
) -> str | None:
    """Append the shard's records until caught up; return where to go on."""
    while True:
        response = client.get_records(ShardIterator=iterator, Limit=10_000)
        for record in response["Records"]:
            records.append(
                StoredRecord(
                    shard_id=shard_id,
                    sequence_number=record["SequenceNumber"],
                    partition_key=record["PartitionKey"],
                    data=bytes(record["Data"]),
                    # NB: GetRecords never returns it; see the module docstring.
                    explicit_hash_key=None,
                )
            )
        next_iterator = response.get("NextShardIterator")
        # A closed shard read to its end has no next iterator.
        if next_iterator is None:
            return None
        caught_up = not response["Records"] and not response.get("MillisBehindLatest")
        if caught_up or time.monotonic() >= deadline:
            return next_iterator
        iterator = next_iterator
