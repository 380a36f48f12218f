"""Fixtures of the control API tests: fake sinks, producers, test clients.

The fake sinks check what the real ones cannot show from outside: that
sequence numbers arrive contiguous, and how many generation loops were alive
at once (each loop is its own asyncio task).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from clickstream_generator.control.api import ApiSettings, make_app
from clickstream_generator.control.auth import Token
from clickstream_generator.engine.running import Producer, RunSettings
from clickstream_generator.model.events import Record
from clickstream_generator.sinks.base import PermanentSinkError, Sink

TOKEN = "test-token-7f3a9c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RecordingSink(Sink):
    """Acknowledges everything at once, and watches order and loops."""

    kind = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.received = 0
        self.next_sequence = 0
        self.gaps = 0
        self.max_live_loops = 0
        self.last_record: Record | None = None
        #: Raise a permanent error from this many more sends on (None: never).
        self.fail_after: int | None = None
        #: While set, flush waits for it to be cleared by `release_flush`.
        self.flush_gate: asyncio.Event | None = None
        self.flushing = asyncio.Event()

    async def send(self, records: Sequence[Record]) -> None:
        self.max_live_loops = max(self.max_live_loops, self.live_loops())
        if self.fail_after is not None:
            if self.fail_after <= 0:
                raise PermanentSinkError("the stream was deleted", reason="stream_gone")
            self.fail_after -= 1
        self.accounting.accept(len(records))
        for record in records:
            if record.sequence != self.next_sequence:
                self.gaps += 1
            self.next_sequence = record.sequence + 1
        self.received += len(records)
        self.last_record = records[-1]
        self.accounting.acknowledge(len(records))
        await asyncio.sleep(0)

    async def flush(self, timeout: float | None = None) -> bool:
        if self.flush_gate is not None:
            self.flushing.set()
            await self.flush_gate.wait()
        return True

    @staticmethod
    def live_loops() -> int:
        # NB: the producer names each loop's task "generate-<producer id>".
        return sum(1 for task in asyncio.all_tasks() if task.get_name().startswith("generate-"))


def make_producer(sink: Sink, *, rate: float | None = 2000.0) -> Producer:
    return Producer(RunSettings(rate=rate), sink, producer_id="test-0", seed=7, stop_timeout=5.0)


ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Builds test clients around producers; shuts everything down afterwards."""
    made: list[tuple[TestClient[Any, Any], Producer]] = []

    async def factory(
        producer: Producer,
        *,
        token: str | None = TOKEN,
        open_probes: bool = True,
        max_body: int | None = None,
    ) -> TestClient[Any, Any]:
        settings = ApiSettings(
            token=None if token is None else Token(token),
            open_probes=open_probes,
            **({} if max_body is None else {"max_body": max_body}),
        )
        await producer.open()
        client = TestClient(TestServer(make_app(producer, settings), host="127.0.0.1"))
        await client.start_server()
        made.append((client, producer))
        return client

    yield factory
    for client, producer in made:
        await producer.shutdown(5.0)
        await client.close()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


async def wait_for_status(
    client: TestClient[Any, Any],
    condition: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Poll /v1/status until ``condition`` holds, or fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await client.get("/v1/status", headers=AUTH)
        status: dict[str, Any] = await response.json()
        if condition(status):
            return status
        if loop.time() > deadline:
            raise AssertionError(f"status never matched; last: {status}")
        await asyncio.sleep(0.01)
