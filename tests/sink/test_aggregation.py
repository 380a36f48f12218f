"""KPL aggregation: the records the sink packs are what standard de-aggregators read."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from clickstream_generator.model.events import Record
from clickstream_generator.sinks.kinesis.aggregation import (
    ShardMap,
    encode_aggregate,
    hash_key,
)
from clickstream_generator.sinks.kinesis.batching import Unit, columns_of
from clickstream_generator.sinks.kinesis.packing import MAX_EVENTS, Packer
from clickstream_generator.sinks.kinesis.sink import KinesisSettings, KinesisSink
from tests.emulators import (
    create_stream,
    kinesis_client,
    list_shards,
    read_all_records,
    unique_stream_name,
)
from tests.emulators.servers import Kinesalite
from tests.sink.helpers import events, until


def deaggregate(records: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes, bool]]:
    """(partition key, data, was aggregated) of every user record inside."""
    boto_records = [
        {
            "Data": data,
            "PartitionKey": key,
            "SequenceNumber": str(number),
            "ApproximateArrivalTimestamp": datetime.datetime.now(datetime.UTC),
        }
        for number, (key, data) in enumerate(records)
    ]
    result = []
    for user in iter_deaggregate_records(boto_records, data_format="Boto3"):
        inner = user["kinesis"]
        aggregated = bool(inner.get("aggregated"))
        data = base64.b64decode(inner["data"]) if aggregated else inner["data"]
        result.append((inner["partitionKey"], bytes(data), aggregated))
    return result


def _encode(records: list[Record]) -> bytes:
    return encode_aggregate([r.partition_key for r in records], [r.data for r in records])


def test_encoded_aggregate_reads_back_with_the_reference_deaggregator() -> None:
    records = [*events(200), Record(999, b"", "empty"), Record(1000, "ü€".encode(), "ключ")]
    assert len({r.partition_key for r in records}) < len(records)  # keys repeat
    blob = _encode(records)
    got = deaggregate([(records[0].partition_key, blob)])
    assert all(aggregated for _, _, aggregated in got)
    assert [(key, data) for key, data, _ in got] == [(r.partition_key, r.data) for r in records]


def _four_shards() -> ShardMap:
    quarter = 2**126
    return ShardMap.from_shards(
        {
            "ShardId": f"shardId-{index}",
            "HashKeyRange": {
                "StartingHashKey": str(index * quarter),
                "EndingHashKey": str((index + 1) * quarter - 1),
            },
        }
        for index in range(4)
    )


def _pack(packer: Packer, records: list[Record], chunk: int) -> list[Unit]:
    units: list[Unit] = []
    for start in range(0, len(records), chunk):
        part = columns_of(records[start : start + chunk])
        assert part is not None
        units += packer.add(part, deadline=1e9, now=0.0)
    return units


def test_packed_aggregates_hold_every_event_once_within_the_limit_and_their_shard() -> None:
    limit = 16 * 1024
    shard_map = _four_shards()
    packer = Packer(max_size=limit)
    packer.shard_map = shard_map
    records = list(events(5000))
    full = _pack(packer, records, chunk=700)
    assert packer.open_events == 5000 - sum(len(unit.records) for unit in full)
    units = full + packer.close_all()
    assert packer.open_events == 0
    packed = sorted(record for unit in units for record in unit.records)
    assert packed == sorted(records)
    largest = max(len(r.data) + len(r.partition_key) for r in records) + 12
    for unit in units:
        blob = _encode(list(unit.records))
        actual = len(blob) + len(unit.partition_key.encode())
        assert actual <= unit.size <= limit
        assert unit.event_bytes == sum(len(r.data) + len(r.partition_key) for r in unit.records)
        assert {shard_map.shard_of(hash_key(r.partition_key)) for r in unit.records} == {
            unit.shard_id
        }
    # Aggregates that filled up left little room: the size bound is tight.
    assert all(unit.size > limit - largest for unit in full)
    assert len(full) > 4 * 5


def test_an_event_too_large_to_share_an_aggregate_goes_alone() -> None:
    packer = Packer(max_size=1024)
    packer.shard_map = _four_shards()
    big, small = Record(0, b"x" * 2000, "big"), Record(1, b"y", "small")
    units = _pack(packer, [big, small], chunk=2)
    assert [(u.records[0], u.data, u.shard_id) for u in units] == [(big, big.data, None)]
    (alone,) = packer.close_all()
    assert (list(alone.records), alone.data) == ([small], small.data)


def test_aggregates_hold_at_most_max_events_and_read_back() -> None:
    packer = Packer(max_size=1024 * 1024)
    packer.shard_map = _four_shards()
    records = [Record(i, b"e", "k") for i in range(MAX_EVENTS + 10)]
    units = _pack(packer, records, chunk=5000) + packer.close_all()
    assert [len(unit.records) for unit in units] == [MAX_EVENTS, 10]
    blob = _encode(list(units[0].records))
    assert [data for _, data, _ in deaggregate([("k", blob)])] == [b"e"] * MAX_EVENTS


def test_shard_map_finds_the_owner_of_a_hash_key() -> None:
    half = 2**127
    shard_map = ShardMap.from_shards(
        [
            {"ShardId": "b", "HashKeyRange": {"StartingHashKey": str(half), "EndingHashKey": "9"}},
            {"ShardId": "a", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"}},
            {
                "ShardId": "closed",
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
                "SequenceNumberRange": {"EndingSequenceNumber": "5"},
            },
        ]
    )
    assert shard_map.shard_of(0) == "a"
    assert shard_map.shard_of(half - 1) == "a"
    assert shard_map.shard_of(half) == "b"


@pytest.mark.kinesis
@pytest.mark.kinesalite
@pytest.mark.asyncio
async def test_aggregated_events_land_on_their_shard_and_read_back_equal(
    kinesalite: Kinesalite, tmp_path: Path
) -> None:
    client = kinesis_client(kinesalite.endpoint_url)
    name = unique_stream_name("aggregated")
    create_stream(client, name, shards=4)
    sent = events(5000)
    sink = KinesisSink(
        KinesisSettings(
            stream=name,
            region="us-east-1",
            endpoint_url=kinesalite.endpoint_url,
            aggregate=True,
            max_aggregate_bytes=16 * 1024,
            spool_path=tmp_path / "spool.jsonl",
        )
    )
    await sink.open()
    for start in range(0, len(sent), 500):
        await sink.send(sent[start : start + 500])
    totals = await sink.close(30)
    assert totals.acknowledged == 5000
    assert totals.failed == 0

    stored = read_all_records(client, name)
    # Far fewer Kinesis records than events: that is the point.
    assert len(stored) < 500
    shards = {shard.shard_id: shard for shard in list_shards(client, name)}
    got: list[tuple[str, bytes]] = []
    for record in stored:
        inner = deaggregate([(record.partition_key, record.data)])
        # The explicit hash key is the first event's key hash, so it is in this shard too.
        assert shards[record.shard_id].owns(hash_key(record.partition_key))
        for key, data, _ in inner:
            assert shards[record.shard_id].owns(hash_key(key))
            got.append((key, data))
    assert sorted(got) == sorted((r.partition_key, r.data) for r in sent)
    assert sink.metrics.aggregated_events == 5000


@pytest.mark.asyncio
async def test_stale_shard_map_is_read_again(tmp_path: Path) -> None:
    from tests.sink.helpers import FakeKinesis

    fake = FakeKinesis()
    sink = KinesisSink(
        KinesisSettings(stream="fake", region="us-east-1", aggregate=True, linger=0.01),
        client=fake,
    )
    await sink.open()
    # The fake answers "shardId-0", not the listed shard id: the map looks stale.
    await sink.send(events(100))
    assert await sink.flush(5)
    await until(lambda: sink.metrics.shard_map_refreshes >= 2, timeout=5)
    await sink.close(1)
    entries: list[dict[str, Any]] = fake.stored
    assert all(int(e["ExplicitHashKey"]) == hash_key(e["PartitionKey"]) for e in entries)
