"""Delivery cost: generator CPU per event delivered into a local Kinesis.

The generator runs in this process (the real `Producer` and `KinesisSink`,
unpaced, the collector tuned, as ``csgen run --rate max`` runs them); kinesalite runs in its own
Node process, so its CPU is not counted. CPU is this process's, every thread
included (the sink's sender threads are part of the cost), from the first
event to the last acknowledgement. PutRecords calls and the bytes of their
HTTP bodies (base64 included, as on the wire) are counted by a botocore
event hook on the sink's own client.

Absolute CPU figures swing by up to 3x on these shared machines between one
hour and the next, so each run also measures, in the same process and
against the same emulator, a baseline: the same generator feeding a plain
boto3 loop (PutRecords of 500 entries as dicts, the default client), the
way a straightforward Python producer writes. The ratios to it are what
compares across runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.emulators import create_stream, kinesis_client, unique_stream_name

from benchmarks.measuring import Figures, self_cpu
from clickstream_generator.engine.running import Limits, Producer, RunSettings
from clickstream_generator.kits import collecting
from clickstream_generator.model.events import EventSource
from clickstream_generator.model.settings import ClickModel, ShardSlice
from clickstream_generator.sinks.kinesis.sink import (
    MAX_RECORDS_PER_REQUEST,
    KinesisSettings,
    KinesisSink,
    make_client,
)

SHARDS = 4


class _Wire:
    """Counts PutRecords calls and request bytes."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0

    def count(self, request: Any, **_: Any) -> None:
        self.calls += 1
        self.bytes += len(request.body or b"")


def _baseline(endpoint: str, stream: str, count: int) -> float:
    """CPU µs per event of the same events written by a plain boto3 loop."""
    client = kinesis_client(endpoint)
    source = EventSource(ClickModel(), ShardSlice(), producer_id="bench-baseline", seed=1)
    cpu = self_cpu()
    for start in range(0, count, MAX_RECORDS_PER_REQUEST):
        batch = source.take(
            min(MAX_RECORDS_PER_REQUEST, count - start), first_time=time.time(), interval=1e-5
        )
        entries: Any = [{"Data": r.data, "PartitionKey": r.partition_key} for r in batch]
        answer = client.put_records(StreamName=stream, Records=entries)
        if answer["FailedRecordCount"]:
            raise RuntimeError("the baseline's records were refused; nothing throttles here")
    return (self_cpu() - cpu) / count * 1e6


async def _deliver(endpoint: str, stream: str, count: int, *, aggregate: bool) -> Figures:
    settings = KinesisSettings(
        stream=stream, region="us-east-1", endpoint_url=endpoint, aggregate=aggregate
    )
    client = make_client(settings)
    wire = _Wire()
    client.meta.events.register("before-send.kinesis.PutRecords", wire.count)
    sink = KinesisSink(settings, client=client)
    producer = Producer(
        RunSettings(model=ClickModel(), rate=None),
        sink,
        producer_id="bench-0",
        seed=1,
        limits=Limits(count=count),
    )
    await producer.open()
    # As `csgen run` does before it generates.
    collecting.tune_for_throughput()
    cpu, wall = self_cpu(), time.monotonic()
    await producer.start()
    await producer.wait_finished()
    cpu, wall = self_cpu() - cpu, time.monotonic() - wall
    totals = await sink.close(5.0)
    if totals.acknowledged != count:
        raise RuntimeError(f"only {totals.acknowledged} of {count} events were acknowledged")
    return {
        "cpu_us_per_event": cpu / count * 1e6,
        "put_records_calls_per_1000_events": wire.calls / count * 1000,
        "request_kib_per_1000_events": wire.bytes / count * 1000 / 1024,
        "events_per_wall_second": count / wall,
    }


def run_once(endpoint: str, *, count: int) -> Figures:
    """Deliver ``count`` events without and with aggregation, each into a fresh stream."""
    figures: Figures = {}
    stream = unique_stream_name("bench-baseline")
    create_stream(kinesis_client(endpoint), stream, shards=SHARDS)
    baseline = _baseline(endpoint, stream, count)
    figures["baseline_cpu_us_per_event"] = baseline
    for aggregate in (False, True):
        stream = unique_stream_name("bench-aggregated" if aggregate else "bench-plain")
        create_stream(kinesis_client(endpoint), stream, shards=SHARDS)
        run = asyncio.run(_deliver(endpoint, stream, count, aggregate=aggregate))
        prefix = "aggregated_" if aggregate else "plain_"
        figures.update({prefix + key: value for key, value in run.items()})
        figures[prefix + "cpu_over_baseline"] = run["cpu_us_per_event"] / baseline
    return figures
