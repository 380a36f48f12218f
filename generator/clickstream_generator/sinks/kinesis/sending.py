"""The blocking edge: building the boto3 client and making the calls.

Everything here runs in worker threads (boto3 is blocking) and touches
nothing of the sink's state but the units of its own request.

The client is configured explicitly: botocore's *standard* retry mode with
few attempts (the sink does its own, per-record retries with a deadline),
short connect and read timeouts so that a dead connection is noticed fast,
a connection pool as large as the requests that may run at once, and no
client-side parameter validation (the sink validates records itself).
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import boto3
import botocore.config

from clickstream_generator.sinks.kinesis import serialising
from clickstream_generator.sinks.kinesis.aggregation import ShardMap, encode_aggregate
from clickstream_generator.sinks.kinesis.batching import Unit
from clickstream_generator.sinks.kinesis.packing import EventColumns

logger = logging.getLogger(__name__)

_KEY = operator.attrgetter("partition_key")
_HASH_KEY = operator.attrgetter("explicit_hash_key")


def make_client(
    *,
    region: str | None,
    endpoint_url: str | None,
    max_in_flight: int = 4,
    connect_timeout: float = 2.0,
    read_timeout: float = 10.0,
    attempts: int = 2,
    extra_config: dict[str, Any] | None = None,
) -> Any:
    """A Kinesis client from boto3's standard credential chain.

    The chain covers the environment, profiles and web identity (IRSA). Only
    when an endpoint override is given and the chain finds nothing are
    placeholder credentials used, since emulators need some.
    """
    config = botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # One connection per request in flight, plus one for describe/list calls.
        max_pool_connections=max_in_flight + 1,
        # NB: the sink checks every record against the service limits before it
        # buffers it; botocore's own check walks each of the 500 entries of a
        # request again and costs more CPU than all the rest of the sink.
        parameter_validation=False,
        **(extra_config or {}),
    )
    session = boto3.session.Session()
    if endpoint_url and session.get_credentials() is None:
        logger.debug("No AWS credentials found; using placeholders for the endpoint override.")
        session = boto3.session.Session(
            aws_access_key_id="placeholder",
            aws_secret_access_key="placeholder",  # noqa: S106
        )
    client = session.client("kinesis", region_name=region, endpoint_url=endpoint_url, config=config)
    serialising.install(client)
    return client


class Outcome(NamedTuple):
    """How one PutRecords call ended: an answer or an error, and its latency."""

    answer: dict[str, Any] | None
    error: Exception | None
    seconds: float


def put_units(client: Any, stream_argument: dict[str, str], units: Sequence[Unit]) -> Outcome:
    """One PutRecords call; never raises what the call raised, returns it.

    The client must have had `serialising.install` (the sink's clients have).
    """
    # NB: aggregates are encoded here, off the event loop (again for a retry: rare).
    data = [_aggregate(unit) if unit.data is None else unit.data for unit in units]
    keys = list(map(_KEY, units))
    hash_keys = list(map(_HASH_KEY, units))
    records = serialising.prepare(stream_argument, data, keys, hash_keys)
    started = time.perf_counter()
    try:
        answer = client.put_records(Records=records, **stream_argument)
    except Exception as exc:
        # NB: sorting this out (retry or give up) is the sink's job, on its loop.
        # The traceback is dropped: it would tie this frame, and with it the
        # request, to the exception in a cycle that only the cyclic collector
        # frees (late, see kits.collecting), holding megabytes under throttling.
        return Outcome(None, exc.with_traceback(None), time.perf_counter() - started)
    return Outcome(dict(answer), None, time.perf_counter() - started)


def _aggregate(unit: Unit) -> bytes:
    records = unit.records
    if isinstance(records, EventColumns):
        return encode_aggregate(records.keys, records.data)
    return encode_aggregate([r.partition_key for r in records], [r.data for r in records])


def describe_stream(client: Any, stream_argument: dict[str, str]) -> dict[str, Any]:
    answer = client.describe_stream_summary(**stream_argument)
    return dict(answer["StreamDescriptionSummary"])


def read_shard_map(client: Any, stream_argument: dict[str, str]) -> ShardMap:
    """The open shards of the stream."""
    return ShardMap.from_shards(list_shards(client, stream_argument))


def list_shards(client: Any, stream_argument: dict[str, str]) -> list[dict[str, Any]]:
    """Every shard of the stream, from every page of ListShards."""
    shards: list[dict[str, Any]] = []
    answer = client.list_shards(**stream_argument)
    shards.extend(answer["Shards"])
    while answer.get("NextToken"):
        answer = client.list_shards(NextToken=answer["NextToken"])
        shards.extend(answer["Shards"])
    return shards
