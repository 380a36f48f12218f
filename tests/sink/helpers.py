"""Shared pieces of the sink tests: events, a fake Kinesis client, a throttling proxy.

`FakeKinesis` answers like Kinesis (a sequence number per stored entry,
index-aligned results) and lets a test decide per call which entries fail.
`ThrottlingProxy` is a loopback HTTP proxy in front of an emulator that,
when told to, answers PutRecords with throttling instead of forwarding: no
emulator throttles, and the product has no fault-injection switch.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import http.server
import json
import threading
import time
import types
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import botocore.hooks

from clickstream_generator.model.events import EventBatch, EventSource, Record
from clickstream_generator.model.settings import ClickModel, ShardSlice
from clickstream_generator.sinks.kinesis.serialising import PreparedRecords

THROTTLED = {
    "ErrorCode": "ProvisionedThroughputExceededException",
    "ErrorMessage": "Rate exceeded for shard shardId-000000000000.",
}


def events(count: int, *, seed: int = 1, producer: str = "test") -> EventBatch:
    """Real encoded click events, numbered from 0."""
    source = EventSource(ClickModel(), ShardSlice(), producer_id=producer, seed=seed)
    return source.take(count, first_time=time.time(), interval=0.001)


def sized(count: int, size: int, *, key: str | None = None, start: int = 0) -> list[Record]:
    """Records whose data plus partition key is exactly ``size`` bytes."""
    records = []
    for sequence in range(start, start + count):
        partition_key = key or f"k{sequence}"
        data = f"{sequence:08d}".encode().ljust(size - len(partition_key), b"x")
        records.append(Record(sequence, data, partition_key))
    return records


def event_id(data: bytes) -> str:
    return str(json.loads(data)["event_id"])


Decide = Callable[[int, list[dict[str, Any]]], "list[dict[str, Any] | None] | Exception | None"]


class FakeKinesis:
    """A thread-safe stand-in for a Kinesis client with one shard.

    ``decide(call_number, entries)`` may return an exception to raise, a list
    with a failure result (or None to store) per entry, or None to store all.
    """

    def __init__(self, decide: Decide | None = None, *, gate: threading.Event | None = None):
        self.decide = decide
        self.gate = gate
        self.lock = threading.Lock()
        self.calls: list[list[dict[str, Any]]] = []
        self.stored: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.keys_in_flight: list[str] = []
        self.key_overlaps = 0
        # Where the sink registers its PutRecords hooks, as on a botocore client.
        self.meta = types.SimpleNamespace(events=botocore.hooks.HierarchicalEmitter())

    def describe_stream_summary(self, **_: Any) -> dict[str, Any]:
        return {"StreamDescriptionSummary": {"StreamStatus": "ACTIVE"}}

    def list_shards(self, **_: Any) -> dict[str, Any]:
        return {
            "Shards": [
                {
                    "ShardId": "shardId-000000000000",
                    "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
                    "SequenceNumberRange": {"StartingSequenceNumber": "1"},
                }
            ]
        }

    def put_records(self, *, Records: Any, **_: Any) -> dict[str, Any]:  # noqa: N803
        if isinstance(Records, PreparedRecords):
            # As botocore's client takes it from the sink: the body, encoded ahead.
            Records = [  # noqa: N806
                {**entry, "Data": base64.b64decode(entry["Data"])}
                for entry in json.loads(Records.body)["Records"]
            ]
        keys = [entry["PartitionKey"] for entry in Records]
        with self.lock:
            number = len(self.calls)
            self.calls.append(Records)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if set(keys) & set(self.keys_in_flight):
                self.key_overlaps += 1
            self.keys_in_flight.extend(keys)
        try:
            if self.gate is not None:
                self.gate.wait(30)
            decision = self.decide(number, Records) if self.decide else None
            if isinstance(decision, Exception):
                raise decision
            results: list[dict[str, Any]] = []
            with self.lock:
                for index, entry in enumerate(Records):
                    failure = decision[index] if decision else None
                    if failure is None:
                        self.stored.append(entry)
                        results.append(
                            {"SequenceNumber": str(len(self.stored)), "ShardId": "shardId-0"}
                        )
                    else:
                        results.append(failure)
            failed = sum(1 for result in results if "ErrorCode" in result)
            return {"FailedRecordCount": failed, "Records": results}
        finally:
            with self.lock:
                self.in_flight -= 1
                for key in keys:
                    self.keys_in_flight.remove(key)


class ThrottlingProxy:
    """Forwards HTTP to an emulator; while ``throttle`` is set, PutRecords is refused."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.throttle = threading.Event()
        self.refused = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                if proxy.throttle.is_set() and target.endswith(".PutRecords"):
                    proxy.refused += 1
                    self._answer(
                        400,
                        json.dumps(
                            {
                                "__type": "ProvisionedThroughputExceededException",
                                "message": "Rate exceeded (test proxy).",
                            }
                        ).encode(),
                        "application/x-amz-json-1.1",
                    )
                    return
                connection = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request("POST", self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                connection.close()
                self._answer(
                    answer.status,
                    payload,
                    answer.getheader("Content-Type", "application/x-amz-json-1.1"),
                )

            def _answer(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ThrottlingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` on the event loop until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
