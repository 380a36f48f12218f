"""``csgen tail`` unpacks KPL aggregates: the decoder against our encoder and the reference one."""

from __future__ import annotations

import hashlib

import aws_kinesis_agg.aggregator as reference

from clickstream_generator.model.events import Record
from clickstream_generator.sinks.kinesis.aggregation import MAGIC, encode_aggregate
from clickstream_generator.sinks.kinesis.deaggregating import deaggregate


def test_our_aggregates_unpack_into_the_events_in_order() -> None:
    records = [
        Record(i, f'{{"n":{i}}}'.encode() * (i % 7 + 1), f"user-{i % 3}") for i in range(300)
    ]
    blob = encode_aggregate([r.partition_key for r in records], [r.data for r in records])
    assert deaggregate(blob) == [r.data for r in records]


def test_the_reference_aggregators_records_unpack_too() -> None:
    aggregator = reference.RecordAggregator()
    for i in range(50):
        aggregator.add_user_record(f"key-{i}", f"event {i}".encode(), explicit_hash_key=str(i + 1))
    _, _, data = aggregator.clear_and_get().get_contents()
    assert deaggregate(data) == [f"event {i}".encode() for i in range(50)]


def test_plain_and_damaged_records_are_shown_as_they_are() -> None:
    assert deaggregate(b'{"plain":true}') == [b'{"plain":true}']
    body = b"\x1a\x05\x1a\x03abc"
    damaged = MAGIC + body + hashlib.md5(b"other", usedforsecurity=False).digest()
    assert deaggregate(damaged) == [damaged]
    truncated = MAGIC + b"\x1a\x7f" + hashlib.md5(b"\x1a\x7f", usedforsecurity=False).digest()
    assert deaggregate(truncated) == [truncated]
