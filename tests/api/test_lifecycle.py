"""The state machine through the API: one loop at a time, failures visible, recovery."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.conftest import AUTH, RecordingSink, make_producer, wait_for_status


def assert_counters_consistent(status: dict[str, object], sink: RecordingSink) -> None:
    # Every sequence number issued was generated once, handed over once, in order.
    assert status["generated"] == status["next_sequence"] == sink.received
    assert status["acknowledged"] == sink.received
    assert status["pending"] == 0
    assert sink.gaps == 0


@pytest.mark.asyncio
async def test_a_hundred_concurrent_starts_run_one_loop(make_client, sink):
    client = await make_client(make_producer(sink))

    replies = await asyncio.gather(*(client.post("/v1/start", headers=AUTH) for _ in range(100)))

    assert {reply.status for reply in replies} == {200}
    assert {(await reply.json())["state"] for reply in replies} == {"running"}
    status = await wait_for_status(client, lambda s: s["generated"] > 0)
    assert status["loops_started"] == 1
    assert sink.live_loops() == 1
    stopped = await (await client.post("/v1/stop", headers=AUTH)).json()
    assert stopped["state"] == "stopped"
    assert sink.max_live_loops == 1
    assert sink.live_loops() == 0
    assert_counters_consistent(stopped, sink)


@pytest.mark.asyncio
async def test_a_hundred_interleaved_start_stop_pairs_never_overlap_loops(make_client, sink):
    client = await make_client(make_producer(sink))

    calls = [
        client.post(f"/v1/{step}", headers=AUTH) for _ in range(100) for step in ("start", "stop")
    ]
    replies = await asyncio.gather(*calls)

    assert {reply.status for reply in replies} == {200}
    # The calls are served in order: the last one is a stop.
    final = await (await client.get("/v1/status", headers=AUTH)).json()
    assert final["state"] == "stopped"
    assert 1 <= final["loops_started"] <= 100
    assert sink.max_live_loops == 1
    assert sink.live_loops() == 0
    assert_counters_consistent(final, sink)
    # And the machine still works afterwards.
    started = await (await client.post("/v1/start", headers=AUTH)).json()
    assert started["state"] == "running"
    await wait_for_status(client, lambda s: s["generated"] > final["generated"])
    stopped = await (await client.post("/v1/stop", headers=AUTH)).json()
    assert sink.max_live_loops == 1
    assert_counters_consistent(stopped, sink)


@pytest.mark.asyncio
async def test_start_and_stop_are_idempotent(make_client, sink):
    client = await make_client(make_producer(sink))

    idle = await (await client.post("/v1/stop", headers=AUTH)).json()
    first = await (await client.post("/v1/start", headers=AUTH)).json()
    second = await (await client.post("/v1/start", headers=AUTH)).json()
    stopped = await (await client.post("/v1/stop", headers=AUTH)).json()
    again = await (await client.post("/v1/stop", headers=AUTH)).json()

    assert idle["state"] == "idle"
    assert (first["state"], second["state"]) == ("running", "running")
    assert second["loops_started"] == 1
    assert (stopped["state"], again["state"]) == ("stopped", "stopped")


@pytest.mark.asyncio
async def test_a_start_during_a_flushing_stop_waits_for_it_then_runs_one_loop(make_client, sink):
    client = await make_client(make_producer(sink))
    await client.post("/v1/start", headers=AUTH)
    await wait_for_status(client, lambda s: s["generated"] > 0)
    sink.flush_gate = asyncio.Event()

    stopping = asyncio.ensure_future(client.post("/v1/stop", headers=AUTH))
    await asyncio.wait_for(sink.flushing.wait(), 5)
    status = await (await client.get("/v1/status", headers=AUTH)).json()
    starting = asyncio.ensure_future(client.post("/v1/start", headers=AUTH))
    await wait_for_status(client, lambda s: s["state"] == "stopping")
    assert not starting.done()
    sink.flush_gate.set()
    stopped, started = await asyncio.gather(stopping, starting)

    assert status["state"] == "stopping"
    assert (await stopped.json())["state"] == "stopped"
    assert (await started.json())["state"] == "running"
    assert (await started.json())["loops_started"] == 2
    assert sink.max_live_loops == 1


@pytest.mark.asyncio
async def test_a_sink_that_raises_moves_the_state_to_failed_with_the_error(make_client, sink):
    client = await make_client(make_producer(sink))
    sink.fail_after = 3

    await client.post("/v1/start", headers=AUTH)
    status = await wait_for_status(client, lambda s: s["state"] != "running")

    assert status["state"] == "failed"
    assert "the stream was deleted" in status["last_error"]
    metrics = await (await client.get("/metrics")).text()
    assert 'csgen_state{csgen_state="failed"} 1.0' in metrics


@pytest.mark.asyncio
async def test_a_start_after_a_failure_recovers(make_client, sink):
    client = await make_client(make_producer(sink))
    sink.fail_after = 0
    await client.post("/v1/start", headers=AUTH)
    failed = await wait_for_status(client, lambda s: s["state"] == "failed")
    stop_reply = await (await client.post("/v1/stop", headers=AUTH)).json()
    sink.fail_after = None

    restarted = await (await client.post("/v1/start", headers=AUTH)).json()
    status = await wait_for_status(client, lambda s: s["acknowledged"] > 0)

    assert stop_reply["state"] == "failed"  # a stop does not hide a failure
    assert restarted["state"] == "running"
    assert status["state"] == "running"
    assert status["loops_started"] == failed["loops_started"] + 1 == 2


@pytest.mark.asyncio
async def test_steps_after_shutdown_are_refused_with_409_and_the_state(make_client, sink):
    producer = make_producer(sink)
    client = await make_client(producer)
    await client.post("/v1/start", headers=AUTH)
    await producer.shutdown(5.0)

    start = await client.post("/v1/start", headers=AUTH)
    stop = await client.post("/v1/stop", headers=AUTH)
    config = await client.put("/v1/config", headers=AUTH, json={"eventsPerSecond": 5})

    for reply in (start, stop, config):
        assert reply.status == 409
        error = (await reply.json())["error"]
        assert error["code"] == "illegal_transition"
        assert error["state"] == "stopped"
        assert "shutting down" in error["message"]


@pytest.mark.asyncio
async def test_status_reports_identity_rates_and_counters(make_client, sink):
    client = await make_client(make_producer(sink, rate=500.0))

    status = await (await client.get("/v1/status", headers=AUTH)).json()

    assert status["state"] == "idle"
    assert status["producer_id"] == "test-0"
    assert (status["shard_index"], status["shard_count"]) == (0, 1)
    assert status["target_rate"] == 500.0
    assert status["achieved_rate"] == 0.0
    assert status["config_version"] == 1
    assert status["last_error"] is None
    assert len(status["boot_id"]) == 36
    for counter in ("generated", "acknowledged", "failed", "pending", "buffered_bytes"):
        assert status[counter] == 0


@pytest.mark.asyncio
async def test_probes_report_liveness_and_readiness(make_client, sink):
    producer = make_producer(sink)
    client = await make_client(producer)

    health = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert health.status == 200
    assert (await health.json())["boot_id"] == producer.boot_id
    assert ready.status == 200
    assert (await ready.json()) == {"ready": True, "state": "idle"}


@pytest.mark.asyncio
async def test_readiness_fails_while_the_sink_is_not_open(make_client):
    class Unopened(RecordingSink):
        async def open(self) -> None:
            from clickstream_generator.sinks.base import RetryableSinkError

            raise RetryableSinkError("the stream is not reachable")

    producer = make_producer(Unopened())
    with pytest.raises(Exception, match="not reachable"):
        await make_client(producer)
    from aiohttp.test_utils import TestClient, TestServer

    from clickstream_generator.control.api import make_app

    async with TestClient(TestServer(make_app(producer), host="127.0.0.1")) as client:
        ready = await client.get("/readyz")
        start = await client.post("/v1/start")
        body = await ready.json()
        start_body = await start.json()
    await producer.shutdown(1.0)

    assert ready.status == 503
    assert body["error"]["code"] == "not_ready"
    assert start.status == 503
    assert start_body["error"]["code"] == "sink_unavailable"
    assert start_body["error"]["state"] == "failed"
