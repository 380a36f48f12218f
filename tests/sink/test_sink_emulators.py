"""The Kinesis sink against real endpoints (moto server, kinesalite), with faults injected.

Faults are injected with botocore event hooks on the client the sink uses:
no emulator throttles, and the product has no fault switch of its own.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from clickstream_generator.model.events import Record
from clickstream_generator.sinks.kinesis.sink import KinesisSettings, KinesisSink
from tests.emulators import (
    create_stream,
    kinesis_client,
    read_all_records,
    unique_stream_name,
)
from tests.emulators.fixtures import StreamRef
from tests.emulators.servers import Kinesalite
from tests.sink.helpers import THROTTLED, event_id, events, sized, until

pytestmark = pytest.mark.asyncio

MIB = 1024 * 1024


def sink_for(endpoint_url: str, stream: str, tmp_path: Path, **overrides: Any) -> KinesisSink:
    values: dict[str, Any] = {
        "stream": stream,
        "region": "us-east-1",
        "endpoint_url": endpoint_url,
        "backoff_base": 0.01,
        "backoff_cap": 0.2,
        "spool_path": tmp_path / "spool.jsonl",
    }
    client = overrides.pop("client", None)
    values.update(overrides)
    return KinesisSink(KinesisSettings(**values), client=client)


async def send_all(sink: KinesisSink, records: list[Record], chunk: int = 1000) -> None:
    await sink.open()
    for start in range(0, len(records), chunk):
        await sink.send(records[start : start + chunk])


def spooled_sequences(tmp_path: Path) -> list[int]:
    path = tmp_path / "spool.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["sequence"] for line in path.read_text().splitlines()]


def error_response(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {
        "Error": {"Code": code, "Message": f"{code} (injected)"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return AWSResponse("http://127.0.0.1/", status, {}, None), parsed


# -- limits and round trips on both emulators -------------------------------------


async def test_501_records_take_two_requests_and_all_arrive(
    kinesis_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesis_stream
    sink = sink_for(endpoint_url, stream, tmp_path, max_in_flight=1)
    sent = events(501)
    await send_all(sink, sent, chunk=501)
    totals = await sink.close(30)
    assert totals.acknowledged == 501
    assert sink.metrics.put_records_calls == 2
    stored = read_all_records(kinesis_client(endpoint_url), stream, expected=501)
    assert sorted(event_id(r.data) for r in stored) == sorted(event_id(r.data) for r in sent)


async def test_5_mib_plus_one_byte_takes_two_requests(
    kinesis_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesis_stream
    # Five records of 1 MiB and one of a byte: 5 MiB + 1 byte in all.
    sent = [*sized(5, MIB), *sized(1, 2, start=5)]
    sent[-1] = Record(5, b"x", "k")
    sink = sink_for(endpoint_url, stream, tmp_path, max_in_flight=1)
    await send_all(sink, sent, chunk=6)
    totals = await sink.close(60)
    assert totals.acknowledged == 6
    assert sink.metrics.put_records_calls == 2
    stored = read_all_records(kinesis_client(endpoint_url), stream, expected=6)
    assert sorted(len(r.data) for r in stored) == sorted(len(r.data) for r in sent)


async def test_record_of_1_mib_plus_one_byte_is_spooled_not_sent(
    kinesis_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesis_stream
    sink = sink_for(endpoint_url, stream, tmp_path)
    await send_all(sink, [*sized(1, MIB + 1), *sized(1, 100, start=1)])
    totals = await sink.close(30)
    assert totals.failed_by_reason == {"record_too_large": 1}
    assert spooled_sequences(tmp_path) == [0]
    stored = read_all_records(kinesis_client(endpoint_url), stream, expected=1)
    assert len(stored) == 1


async def test_event_ids_read_back_equal_those_acknowledged(
    kinesis_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesis_stream
    # moto loses records under concurrent writers: one request at a time here.
    sink = sink_for(endpoint_url, stream, tmp_path, max_in_flight=1)
    sent = events(3000)
    await send_all(sink, sent)
    totals = await sink.close(30)
    assert totals.acknowledged == 3000
    assert totals.failed == 0
    stored = read_all_records(kinesis_client(endpoint_url), stream, expected=3000)
    assert {event_id(r.data) for r in stored} == {event_id(r.data) for r in sent}
    assert len(stored) == 3000


# -- faults, on kinesalite ------------------------------------------------------------


async def test_30_percent_partial_throttling_loses_and_duplicates_nothing(
    kinesalite_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesalite_stream
    client = kinesis_client(endpoint_url)
    rng = random.Random(30)

    def drop_some(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # The throttled entries are cut from the body on its way out, so they
        # are never stored and a resend cannot duplicate them.
        body = json.loads(params["body"])
        records = body["Records"]
        dropped = [i for i in range(len(records)) if rng.random() < 0.3]
        if len(dropped) == len(records):
            # Kinesis refuses a request without entries.
            dropped.pop()
        context["throttled"] = (dropped, len(records))
        body["Records"] = [r for i, r in enumerate(records) if i not in set(dropped)]
        params["body"] = json.dumps(body).encode()

    def answer_throttled(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "throttled" not in context or "Records" not in parsed:
            return
        dropped, total = context["throttled"]
        stored = iter(parsed["Records"])
        parsed["Records"] = [
            dict(THROTTLED) if i in set(dropped) else next(stored) for i in range(total)
        ]
        parsed["FailedRecordCount"] = parsed.get("FailedRecordCount", 0) + len(dropped)

    client.meta.events.register("before-call.kinesis.PutRecords", drop_some)
    client.meta.events.register("after-call.kinesis.PutRecords", answer_throttled)
    sink = sink_for(endpoint_url, stream, tmp_path, client=client)
    sent = events(5000)
    await send_all(sink, sent)
    totals = await sink.close(60)
    assert totals.acknowledged == 5000, sink.last_error
    assert sink.metrics.retried_records > 1000
    stored = read_all_records(kinesis_client(endpoint_url), stream, expected=5000)
    assert sorted(event_id(r.data) for r in stored) == sorted(event_id(r.data) for r in sent)


async def test_whole_call_internal_failures_are_retried(
    kinesalite_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesalite_stream
    client = kinesis_client(endpoint_url)
    calls = {"n": 0}

    def fail_first_calls(**_: Any) -> Any:
        calls["n"] += 1
        return error_response("InternalFailure", 500) if calls["n"] <= 3 else None

    client.meta.events.register("before-call.kinesis.PutRecords", fail_first_calls)
    sink = sink_for(endpoint_url, stream, tmp_path, client=client, max_in_flight=1)
    sent = events(1000)
    await send_all(sink, sent)
    totals = await sink.close(30)
    assert totals.acknowledged == 1000
    assert calls["n"] > 3
    stored = read_all_records(kinesis_client(endpoint_url), stream, expected=1000)
    assert {event_id(r.data) for r in stored} == {event_id(r.data) for r in sent}


async def test_timeout_after_the_server_stored_counts_duplicates_and_loses_nothing(
    kinesalite_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesalite_stream
    client = kinesis_client(endpoint_url)
    lost_answers = {"n": 0}

    def lose_first_answer(**_: Any) -> None:
        if lost_answers["n"] == 0:
            lost_answers["n"] += 1
            raise ReadTimeoutError(endpoint_url=endpoint_url)

    client.meta.events.register("after-call.kinesis.PutRecords", lose_first_answer)
    sink = sink_for(endpoint_url, stream, tmp_path, client=client, max_in_flight=1)
    sent = events(400)
    await send_all(sink, sent, chunk=400)
    totals = await sink.close(30)
    assert totals.acknowledged == 400
    assert sink.metrics.duplicate_risk_records == 400
    stored = read_all_records(kinesis_client(endpoint_url), stream, expected=800)
    assert len(stored) == 800  # every event twice: stored, answer lost, resent
    assert {event_id(r.data) for r in stored} == {event_id(r.data) for r in sent}


async def test_expired_credentials_are_permanent(
    kinesalite_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesalite_stream
    client = kinesis_client(endpoint_url)
    client.meta.events.register(
        "before-call.kinesis.PutRecords",
        lambda **_: error_response("ExpiredTokenException", 400),
    )
    sink = sink_for(endpoint_url, stream, tmp_path, client=client)
    await send_all(sink, events(100))
    assert not await sink.flush(10)
    totals = await sink.close(1)
    assert totals.failed_by_reason == {"invalid_credentials": 100}
    assert sorted(spooled_sequences(tmp_path)) == list(range(100))
    assert "credentials" in str(sink.fatal)


@pytest.mark.kinesis
@pytest.mark.kinesalite
@pytest.mark.timeout(90)
async def test_connection_refused_then_recovery_delivers_everything(
    kinesalite_factory: Any, tmp_path: Path
) -> None:
    server: Kinesalite = kinesalite_factory()
    name = unique_stream_name("outage")
    create_stream(kinesis_client(server.endpoint_url), name)
    sink = sink_for(server.endpoint_url, name, tmp_path, connect_timeout=1.0, record_deadline=0)
    await sink.open()
    server.stop()
    sent = events(2000)
    await sink.send(sent)
    await until(lambda: bool(sink.metrics.calls_by_outcome.get("connection_error")), 30)
    server.start()
    totals = await sink.close(60)
    assert totals.acknowledged == 2000
    stored = read_all_records(kinesis_client(server.endpoint_url), name, expected=2000)
    assert {event_id(r.data) for r in stored} == {event_id(r.data) for r in sent}


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_eight_requests_in_flight_deliver_100000_events(
    kinesalite: Kinesalite, tmp_path: Path
) -> None:
    client = kinesis_client(kinesalite.endpoint_url)
    name = unique_stream_name("concurrent")
    create_stream(client, name, shards=4)
    sink = sink_for(kinesalite.endpoint_url, name, tmp_path, max_in_flight=8)
    sent = events(100_000)
    started = time.monotonic()
    await send_all(sink, sent)
    totals = await sink.close(120)
    elapsed = time.monotonic() - started
    assert totals.acknowledged == 100_000
    stored = read_all_records(client, name, expected=100_000, timeout=120)
    assert len({event_id(r.data) for r in stored}) == 100_000 == len(stored)
    print(f"100,000 events in {elapsed:.1f} s, {sink.metrics.put_records_calls} calls")
