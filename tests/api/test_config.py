"""Configuration changes: validated whole, applied atomically, versioned."""

from __future__ import annotations

import orjson
import pytest

from tests.api.conftest import AUTH, make_producer, wait_for_status

MODEL = {
    "baseUrl": "https://shop.example.org",
    "users": {"min": 1, "max": 30},
    "groupClickProbability": 0.5,
    "groups": [
        {"id": 1, "name": "Games", "weight": 0.25, "products": {"min": 1, "max": 9}},
        {"id": 2, "name": "Music", "weight": 0.75, "products": {"min": 10, "max": 99}},
    ],
}


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_valid_change_is_applied_and_bumps_the_version(make_client, sink, method):
    producer = make_producer(sink)
    client = await make_client(producer)

    reply = await client.request(
        method,
        "/v1/config",
        headers=AUTH,
        json={
            "eventsPerSecond": 12.5,
            "shard": {"index": 1, "count": 3},
            "model": MODEL,
            "partitionKey": "random",
            "expectedVersion": 1,
        },
    )
    status = await reply.json()
    config = await (await client.get("/v1/config", headers=AUTH)).json()

    assert reply.status == 200
    assert status["config_version"] == 2
    assert status["target_rate"] == 12.5
    assert (status["shard_index"], status["shard_count"]) == (1, 3)
    assert status["users"] == "11..20"
    assert config["model"] == MODEL
    assert config["partitionKey"] == "random"
    assert config["version"] == 2


@pytest.mark.asyncio
async def test_a_change_while_running_takes_effect_without_a_gap(make_client, sink):
    client = await make_client(make_producer(sink))
    await client.post("/v1/start", headers=AUTH)
    await wait_for_status(client, lambda s: s["generated"] > 0)

    reply = await client.put("/v1/config", headers=AUTH, json={"model": MODEL})
    await wait_for_status(
        client,
        lambda s: sink.last_record is not None and b"shop.example.org" in sink.last_record.data,
    )
    status = await (await client.post("/v1/stop", headers=AUTH)).json()

    assert reply.status == 200
    assert status["loops_started"] == 1
    assert sink.gaps == 0
    assert status["generated"] == status["next_sequence"] == sink.received


@pytest.mark.asyncio
async def test_the_rate_may_be_max(make_client, sink):
    client = await make_client(make_producer(sink))

    status = await (
        await client.put("/v1/config", headers=AUTH, json={"eventsPerSecond": "max"})
    ).json()
    config = await (await client.get("/v1/config", headers=AUTH)).json()

    assert status["target_rate"] is None
    assert config["eventsPerSecond"] == "max"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"eventsPerSecond": -5}, "eventsPerSecond"),
        ({"eventsPerSecond": 0}, "eventsPerSecond"),
        ({"eventsPerSecond": "fast"}, "eventsPerSecond"),
        ({"eventsPerSecond": True}, "eventsPerSecond"),
        ({"shard": {"index": 3, "count": 3}}, "shard.index"),
        ({"shard": {"count": 0}}, "shard.count"),
        ({"shard": {"index": "1"}}, "shard.index"),
        ({"shard": {"count": 1000}}, "shard.count"),
        ({"shard": {"colour": 1}}, "shard.colour"),
        ({"partitionKey": "session"}, "partitionKey"),
        ({"expectedVersion": 0}, "expectedVersion"),
        (
            {"model": {"groups": [MODEL["groups"][0], {**MODEL["groups"][1], "weight": 1.5}]}},
            "model.groups[1].weight",
        ),
        ({"model": {"users": {"min": 9, "max": 1}}}, "model.users.min"),
        ({"model": {"users": {"min": 1, "max": 2**60}}}, "model.users.max"),
        ({"model": {"baseUrl": "ftp://x"}}, "model.baseUrl"),
        ({"model": {"seed": -1}}, "model.seed"),
        ({"model": {"colour": "red"}}, "model.colour"),
        ({"model": []}, "model"),
        ({"speed": 3}, "speed"),
    ],
)
async def test_an_invalid_field_gets_422_naming_it_and_nothing_changes(
    make_client, sink, body, field
):
    client = await make_client(make_producer(sink))
    before = await (await client.get("/v1/config", headers=AUTH)).json()

    reply = await client.put("/v1/config", headers=AUTH, json={"eventsPerSecond": 3, **body})
    error = (await reply.json())["error"]
    after = await (await client.get("/v1/config", headers=AUTH)).json()

    assert reply.status == 422
    assert error["code"] == "invalid_config"
    assert [problem["field"] for problem in error["fields"]] == [field]
    assert field in error["message"]
    assert after == before  # all or nothing: not even the valid rate was applied


@pytest.mark.asyncio
async def test_every_invalid_section_is_reported_at_once(make_client, sink):
    client = await make_client(make_producer(sink))

    reply = await client.put(
        "/v1/config",
        headers=AUTH,
        json={"eventsPerSecond": -1, "partitionKey": "x", "shard": {"count": 0}},
    )
    fields = {problem["field"] for problem in (await reply.json())["error"]["fields"]}

    assert fields == {"eventsPerSecond", "partitionKey", "shard.count"}


@pytest.mark.asyncio
async def test_an_outdated_expected_version_gets_409_with_the_current_one(make_client, sink):
    client = await make_client(make_producer(sink))
    await client.put("/v1/config", headers=AUTH, json={"eventsPerSecond": 4})

    stale = await client.put(
        "/v1/config", headers=AUTH, json={"eventsPerSecond": 5, "expectedVersion": 1}
    )
    error = (await stale.json())["error"]
    fresh = await client.put(
        "/v1/config", headers=AUTH, json={"eventsPerSecond": 5, "expectedVersion": 2}
    )

    assert stale.status == 409
    assert error["code"] == "version_conflict"
    assert error["currentVersion"] == 2
    assert fresh.status == 200
    assert (await fresh.json())["config_version"] == 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 422, "invalid_config"),
        (b"eventsPerSecond=3", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
async def test_a_malformed_body_gets_a_json_error(
    make_client, sink, data, content_type, status, code
):
    client = await make_client(make_producer(sink))

    reply = await client.put(
        "/v1/config", headers={**AUTH, "Content-Type": content_type}, data=data
    )

    assert reply.status == status
    assert reply.content_type == "application/json"
    assert (await reply.json())["error"]["code"] == code


@pytest.mark.asyncio
async def test_a_body_over_the_limit_gets_413(make_client, sink):
    client = await make_client(make_producer(sink), max_body=1024)

    reply = await client.put(
        "/v1/config",
        headers={**AUTH, "Content-Type": "application/json"},
        data=orjson.dumps({"model": {"baseUrl": "https://x.org/" + "a" * 4000}}),
    )

    assert reply.status == 413
    assert (await reply.json())["error"]["code"] == "body_too_large"


@pytest.mark.asyncio
async def test_unknown_paths_and_methods_get_json_errors(make_client, sink):
    client = await make_client(make_producer(sink))

    missing = await client.get("/v1/nothing", headers=AUTH)
    wrong = await client.get("/v1/start", headers=AUTH)

    assert (missing.status, (await missing.json())["error"]["code"]) == (404, "not_found")
    assert (wrong.status, (await wrong.json())["error"]["code"]) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "POST"


@pytest.mark.asyncio
async def test_an_internal_error_is_json_without_a_traceback(make_client, sink, monkeypatch):
    producer = make_producer(sink)
    client = await make_client(producer)

    def broken() -> dict[str, object]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(producer, "status", broken)
    reply = await client.get("/v1/status", headers=AUTH)
    text = await reply.text()

    assert reply.status == 500
    assert orjson.loads(text)["error"]["code"] == "internal"
    assert "secret internals" not in text
    assert "Traceback" not in text
