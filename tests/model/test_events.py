"""Events: their format, their numbering, their reproducibility and sharding."""

from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema
import orjson
import pytest

from clickstream_generator.model.events import BLOCK_SIZE, TABLE_LIMIT, EventBatch, EventSource
from clickstream_generator.model.settings import (
    ClickModel,
    Group,
    IdRange,
    ShardCount,
    ShardIndex,
    ShardSlice,
)

SCHEMA = json.loads(
    resources.files("clickstream_generator").joinpath("schemas/event.schema.json").read_text()
)


def _source(seed: int = 5, shard: ShardSlice | None = None, **kwargs: object) -> EventSource:
    return EventSource(
        kwargs.pop("model", ClickModel()),  # type: ignore[arg-type]
        shard or ShardSlice(),
        producer_id=str(kwargs.pop("producer_id", "web-0")),
        seed=seed,
        **kwargs,  # type: ignore[arg-type]
    )


def _reproducible_part(data: bytes) -> dict[str, object]:
    event = orjson.loads(data)
    del event["event_id"], event["event_time"]
    return event


def test_every_event_matches_the_published_schema() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for record in _source().take(2_000, first_time=1_767_225_600.0, interval=0.001):
        validator.validate(orjson.loads(record.data))


def test_urls_are_exactly_the_original_systems() -> None:
    model = ClickModel(base_url="https://webstore.demo.com")
    for record in _source(model=model).take(500, first_time=0.0):
        e = orjson.loads(record.data)
        base = f"https://webstore.demo.com/api/group/{e['group_id']}"
        if e["event_type"] == "group_view":
            assert e["url"] == f"{base}?userid={e['user_id']}"
            assert e["product_id"] is None
        else:
            assert e["url"] == f"{base}/product/{e['product_id']}?userid={e['user_id']}"


def test_sequences_start_at_zero_and_step_by_one_across_calls() -> None:
    source = _source()
    sequences = []
    for size in (1, 7, BLOCK_SIZE, 3, 1000):
        sequences += [orjson.loads(r.data)["sequence"] for r in source.take(size, first_time=0.0)]
    assert sequences == list(range(len(sequences)))


def test_event_times_follow_the_schedule_to_the_millisecond() -> None:
    records = _source().take(3, first_time=1_767_225_600.0, interval=0.25)
    times = [orjson.loads(r.data)["event_time"] for r in records]
    assert times == [
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00.250Z",
        "2026-01-01T00:00:00.500Z",
    ]


def test_the_same_seed_gives_the_same_clicks_however_they_are_batched() -> None:
    one = _source(seed=11)
    two = _source(seed=11)
    first = [_reproducible_part(r.data) for r in one.take(10_000, first_time=0.0)]
    second = []
    for size in (1, 2, 4095, 4097, 1805):
        second += [_reproducible_part(r.data) for r in two.take(size, first_time=0.0)]
    assert first == second


def test_event_ids_are_unique_within_and_across_runs() -> None:
    ids = [orjson.loads(r.data)["event_id"] for r in _source(seed=3).take(5_000, first_time=0.0)]
    ids += [orjson.loads(r.data)["event_id"] for r in _source(seed=3).take(5_000, first_time=0.0)]
    assert len(set(ids)) == len(ids)


def test_different_seeds_give_different_streams() -> None:
    a = [_reproducible_part(r.data) for r in _source(seed=1).take(200, first_time=0.0)]
    b = [_reproducible_part(r.data) for r in _source(seed=2).take(200, first_time=0.0)]
    assert a != b


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, [(1, 100)]),
        (3, [(1, 34), (35, 67), (68, 100)]),
        (4, [(1, 25), (26, 50), (51, 75), (76, 100)]),
        (7, [(1, 15), (16, 30), (31, 44), (45, 58), (59, 72), (73, 86), (87, 100)]),
    ],
)
def test_user_slices_are_contiguous_disjoint_and_cover_everyone(
    count: int, expected: list[tuple[int, int]]
) -> None:
    users = IdRange(1, 100)
    slices = [ShardSlice(ShardIndex(k), ShardCount(count)).users_of(users) for k in range(count)]
    assert [(s.min, s.max) for s in slices] == expected


def test_shards_draw_only_their_users_and_never_repeat_each_other() -> None:
    count = 5
    streams = []
    for k in range(count):
        shard = ShardSlice(ShardIndex(k), ShardCount(count))
        allowed = shard.users_of(IdRange(1, 100))
        events = [
            orjson.loads(r.data) for r in _source(seed=9, shard=shard).take(3000, first_time=0.0)
        ]
        assert {e["user_id"] for e in events} <= set(range(allowed.min, allowed.max + 1))
        streams.append([(e["event_type"], e["group_id"], e["product_id"]) for e in events])
    for a in range(count):
        for b in range(a + 1, count):
            assert streams[a] != streams[b]


def test_the_same_seed_and_shard_give_the_same_events() -> None:
    shard = ShardSlice(ShardIndex(2), ShardCount(3))
    a = [_reproducible_part(r.data) for r in _source(seed=4, shard=shard).take(500, first_time=0.0)]
    b = [_reproducible_part(r.data) for r in _source(seed=4, shard=shard).take(500, first_time=0.0)]
    assert a == b


def test_partition_keys_are_user_ids_by_default_and_random_on_request() -> None:
    by_user = _source().take(200, first_time=0.0)
    assert all(r.partition_key == str(orjson.loads(r.data)["user_id"]) for r in by_user)
    random_keys = _source(partition_key="random").take(200, first_time=0.0)
    assert len({r.partition_key for r in random_keys}) == 200
    assert all(re.fullmatch(r"[0-9a-f]{16}", r.partition_key) for r in random_keys)


def test_names_and_urls_with_quotes_and_percent_signs_stay_valid_json() -> None:
    model = ClickModel(
        base_url="https://x.example/100%25",
        groups=(Group(id=3, name='Say "hi" 50% \\ off', weight=1.0, products=IdRange(1, 2)),),
    )
    for record in _source(model=model).take(50, first_time=0.0):
        event = orjson.loads(record.data)
        assert event["group_name"] == 'Say "hi" 50% \\ off'
        assert event["url"].startswith("https://x.example/100%25/api/group/3")


def test_id_ranges_too_large_for_tables_give_the_same_events_as_small_ones() -> None:
    # The same draws, encoded through lookup tables and one by one: only the ids' size differs.
    def model(extra: int) -> ClickModel:
        return ClickModel(
            users=IdRange(1, 10 + extra),
            groups=(
                Group(id=1, name="Fröbel", weight=0.5, products=IdRange(5, 9 + extra)),
                Group(id=2, name="Toys", weight=0.5, products=IdRange(42, 42)),
            ),
        )

    small = _source(model=model(0), seed=8).take(3000, first_time=1_767_225_600.0, interval=0.01)
    large = _source(model=model(TABLE_LIMIT), seed=8).take(
        3000, first_time=1_767_225_600.0, interval=0.01
    )
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for record in large:
        event = orjson.loads(record.data)
        validator.validate(event)
        assert record.partition_key == str(event["user_id"])
        query = f"?userid={event['user_id']}"
        if event["product_id"] is None:
            assert event["url"].endswith(f"/api/group/{event['group_id']}{query}")
        else:
            assert event["url"].endswith(f"/product/{event['product_id']}{query}")
    assert [r.sequence for r in small] == [r.sequence for r in large] == list(range(3000))
    assert {orjson.loads(r.data)["event_type"] for r in small} == {"group_view", "product_view"}


def test_a_batch_reads_as_a_sequence_of_records() -> None:
    batch = _source().take(10, first_time=0.0)
    assert isinstance(batch, EventBatch)
    records = list(batch)
    assert [r.sequence for r in records] == list(range(10))
    assert batch[3] == records[3]
    assert batch[-1] == records[-1]
    assert list(batch[2:5]) == records[2:5]
    assert list(batch[::3]) == records[::3]
    assert batch.data == [r.data for r in records]
    with pytest.raises(IndexError):
        batch[10]
