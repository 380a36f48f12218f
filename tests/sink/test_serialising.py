"""PutRecords bodies built ahead and answers decoded fast: what botocore would send and read."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from clickstream_generator.sinks.kinesis import serialising
from tests.sink.helpers import events

#: Keys a JSON writer must escape, and some it must not touch.
AWKWARD_KEYS = ['say "hi"', "back\\slash", "tab\there", "new\nline", "ключ", "€", "\x00", "a/b"]


class _Wire:
    """Answers every call with a canned response and keeps the requests."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        self.status = status
        self.body = json.dumps(answer).encode()
        self.requests: list[Any] = []

    def send(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(request)
        raw = _Raw(self.body)
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, self.status, headers, raw)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _client(wire: _Wire, *, validate: bool = True) -> Any:
    session = botocore.session.get_session()
    client = session.create_client(
        "kinesis",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(parameter_validation=validate),
    )
    client.meta.events.register("before-send.kinesis.PutRecords", wire.send)
    return client


def _stored(count: int) -> dict[str, Any]:
    return {
        "FailedRecordCount": 0,
        "Records": [
            {"SequenceNumber": str(i), "ShardId": "shardId-000000000000"} for i in range(count)
        ],
    }


@pytest.mark.parametrize("awkward", [False, True], ids=["plain keys", "awkward keys"])
@pytest.mark.parametrize("with_hash_key", [False, True], ids=["", "hash key"])
def test_prepared_body_is_what_botocore_would_send(awkward: bool, with_hash_key: bool) -> None:
    batch = events(20)
    data = list(batch.data)
    keys = list(batch.keys)
    if awkward:
        data += [b"", "ü".encode()] * len(AWKWARD_KEYS)
        keys += [key for key in AWKWARD_KEYS for _ in range(2)]
    hash_keys: list[str | None] = [None] * len(data)
    if with_hash_key:
        hash_keys[3] = str(2**127)
    argument = {"StreamName": "clicks"}
    wire = _Wire(200, _stored(len(data)))
    client = _client(wire)
    entries: list[dict[str, Any]] = [
        {"Data": d, "PartitionKey": k} for d, k in zip(data, keys, strict=True)
    ]
    if with_hash_key:
        entries[3]["ExplicitHashKey"] = str(2**127)
    client.put_records(Records=entries, **argument)
    serialising.install(client)
    client.put_records(Records=serialising.prepare(argument, data, keys, hash_keys), **argument)
    botocores, ours = (json.loads(request.body) for request in wire.requests)
    assert ours == botocores
    assert [base64.b64decode(e["Data"]) for e in ours["Records"]] == data


def test_prepared_body_without_entries_is_still_json() -> None:
    body = serialising.prepare({"StreamARN": "arn:aws:kinesis:us-east-1:1:stream/s"}, [], []).body
    assert json.loads(body) == {"StreamARN": "arn:aws:kinesis:us-east-1:1:stream/s", "Records": []}


@pytest.mark.parametrize("validate", [True, False])
def test_clients_with_or_without_parameter_validation_take_a_prepared_body(
    validate: bool,
) -> None:
    batch = events(3)
    wire = _Wire(200, _stored(3))
    client = _client(wire, validate=validate)
    serialising.install(client)
    serialising.install(client)  # NB: twice, as a sink reopened would.
    prepared = serialising.prepare({"StreamName": "s"}, batch.data, batch.keys)
    answer = client.put_records(Records=prepared, StreamName="s")
    assert len(wire.requests) == 1
    assert json.loads(wire.requests[0].body)["Records"][2]["PartitionKey"] == batch.keys[2]
    assert answer["FailedRecordCount"] == 0
    assert [r["SequenceNumber"] for r in answer["Records"]] == ["0", "1", "2"]
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_ordinary_calls_are_left_alone() -> None:
    wire = _Wire(200, _stored(1))
    client = _client(wire)
    serialising.install(client)
    client.put_records(Records=[{"Data": b"x", "PartitionKey": "k"}], StreamName="s")
    assert json.loads(wire.requests[0].body)["Records"] == [
        {"Data": base64.b64encode(b"x").decode(), "PartitionKey": "k"}
    ]


def test_decoded_answer_equals_botocores_own() -> None:
    answer = {
        "FailedRecordCount": 1,
        "EncryptionType": "NONE",
        "Records": [
            {"SequenceNumber": "4965539731", "ShardId": "shardId-000000000001"},
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Slow down."},
        ],
    }
    entries = [{"Data": b"a", "PartitionKey": "a"}, {"Data": b"b", "PartitionKey": "b"}]
    plain = _client(_Wire(200, answer)).put_records(Records=entries, StreamName="s")
    fast_client = _client(_Wire(200, answer))
    serialising.install(fast_client)
    fast = fast_client.put_records(Records=entries, StreamName="s")
    for parsed in (plain, fast):
        parsed["ResponseMetadata"].pop("RetryAttempts", None)
    assert fast == plain


def test_error_answers_still_raise_botocores_errors() -> None:
    wire = _Wire(400, {"__type": "ResourceNotFoundException", "message": "Stream s not found."})
    client = _client(wire)
    serialising.install(client)
    prepared = serialising.prepare({"StreamName": "s"}, [b"x"], ["k"])
    with pytest.raises(ClientError) as caught:
        client.put_records(Records=prepared, StreamName="s")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
