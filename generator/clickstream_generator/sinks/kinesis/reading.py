"""Reading records back from a stream, for ``csgen tail`` and for checks.

Reads every shard (closed parents of a reshard included) from the oldest
record or from the newest, and yields records in each shard's order; shards
are visited round-robin, so there is no global order across shards. KPL
aggregated records are unpacked into their events.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clickstream_generator.sinks.kinesis.deaggregating import deaggregate
from clickstream_generator.sinks.kinesis.sending import list_shards


@dataclass(frozen=True)
class ReadRecord:
    """One record read from a shard."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes


def read_stream(
    client: Any,
    stream: str,
    *,
    from_start: bool = True,
    follow: bool = False,
    idle_timeout: float = 2.0,
    poll_interval: float = 0.2,
) -> Iterator[ReadRecord]:
    """Yield records of every shard.

    Without ``follow``, stops once every shard has returned nothing new for
    ``idle_timeout`` seconds; with it, keeps polling until the caller stops.
    """
    argument = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
    iterators: dict[str, str | None] = {}
    for shard in list_shards(client, argument):
        answer = client.get_shard_iterator(
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON" if from_start else "LATEST",
            **argument,
        )
        iterators[shard["ShardId"]] = answer["ShardIterator"]
    last_news = time.monotonic()
    while any(iterators.values()):
        got_any = False
        for shard_id, iterator in list(iterators.items()):
            if iterator is None:
                continue
            answer = client.get_records(ShardIterator=iterator, Limit=10_000)
            iterators[shard_id] = answer.get("NextShardIterator")
            for record in answer.get("Records", []):
                got_any = True
                # KPL aggregates (``--aggregate``) are shown as the events inside them.
                for data in deaggregate(record["Data"]):
                    yield ReadRecord(
                        shard_id, record["SequenceNumber"], record["PartitionKey"], data
                    )
        if got_any:
            last_news = time.monotonic()
        elif not follow and time.monotonic() - last_news >= idle_timeout:
            return
        else:
            time.sleep(poll_interval)
