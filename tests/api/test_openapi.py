"""The OpenAPI document: it matches the router, and the live server matches it.

The fuzzing test runs schemathesis against ``/openapi.json`` of a real server
on loopback (in a thread with its own event loop, a fake sink behind it):
no 5xx, every status code documented, every JSON body matching its schema.
Examples are derandomised and capped, so the run is the same every time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from clickstream_generator.control import serving
from clickstream_generator.control.api import ApiSettings, make_app
from clickstream_generator.control.auth import Token
from clickstream_generator.control.openapi import OPERATIONS, openapi_document
from tests.api.conftest import AUTH, TOKEN, RecordingSink, make_producer

#: Examples per operation and generation mode.
EXAMPLES = 30
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Valid requests for every operation; invalid ones only where there is a body to break.
FUZZ_CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or method in ("PUT", "PATCH")
]


@pytest.mark.parametrize("open_probes", [True, False])
@pytest.mark.parametrize("auth", [True, False])
def test_the_document_lists_exactly_the_routes_of_the_app(auth, open_probes):
    app = make_app(
        make_producer(RecordingSink()),
        ApiSettings(token=Token(TOKEN) if auth else None, open_probes=open_probes),
    )
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    document = openapi_document(auth=auth, open_probes=open_probes)
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }

    assert routes == documented == set(OPERATIONS)


def test_the_document_marks_exactly_the_protected_operations():
    document = openapi_document(auth=True, open_probes=True)
    protected = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation["security"]
    }

    assert protected == {
        ("GET", "/v1/status"),
        ("POST", "/v1/start"),
        ("POST", "/v1/stop"),
        ("GET", "/v1/config"),
        ("PUT", "/v1/config"),
        ("PATCH", "/v1/config"),
    }


class LiveServer:
    """The API on 127.0.0.1 in a background thread, with its own event loop."""

    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-api", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the live API did not start within 30 s")
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the test thread
            self._failure = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        producer = make_producer(RecordingSink(), rate=200.0)
        await producer.open()
        app = make_app(producer, ApiSettings(token=Token(TOKEN)))
        try:
            async with serving.listening(app, "127.0.0.1", 0) as url:
                self.url = url
                self._ready.set()
                await self._stop.wait()
        finally:
            await producer.shutdown(5.0)


@pytest.fixture(scope="module")
def live_api() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(live_api: LiveServer) -> Any:
    # Loaded from the running server, as a client would.
    return schemathesis.openapi.from_url(f"{live_api.url}/openapi.json")


# NB: schemathesis' pytest integration (``from_fixture``) breaks on pytest 9
# (it touches ``Node._nodeid``), so each operation drives Hypothesis directly.
@pytest.mark.parametrize(("method", "path", "mode"), FUZZ_CASES)
def test_the_live_server_conforms_to_its_document(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    exercise()
