"""pytest fixtures for tests against Kinesis emulators.

Registered in ``tests/conftest.py`` through ``pytest_plugins``. Servers are
session-scoped and shared; tests stay independent by using streams with
unique names, which the ``*_stream`` fixtures create and delete.

Markers are added at collection time, so ``-m kinesis`` and ``-m "not
kinesalite"`` select correctly without tests marking themselves:

* every test using a loopback emulator fixture gets ``kinesis``;
* every test that starts kinesalite gets ``kinesalite`` (for
  ``kinesis_endpoint``, only its ``kinesalite`` variant).

``moto_mock`` (moto in process, no server) gets neither marker.

If node or the npm packages are missing, kinesalite fixtures fail with the
command to run; they never skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from tests.emulators.servers import Kinesalite, MotoServer
from tests.emulators.streams import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    create_stream,
    kinesis_client,
    unique_stream_name,
)

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

__all__ = [
    "StreamRef",
    "clean_moto_server",
    "kinesalite",
    "kinesalite_factory",
    "kinesalite_stream",
    "kinesis_endpoint",
    "kinesis_stream",
    "moto_mock",
    "moto_server",
    "moto_stream",
]

_KINESIS_FIXTURES = frozenset(
    {
        "kinesalite",
        "kinesalite_factory",
        "kinesalite_stream",
        "moto_server",
        "clean_moto_server",
        "moto_stream",
        "kinesis_endpoint",
        "kinesis_stream",
    }
)
_KINESALITE_FIXTURES = frozenset({"kinesalite", "kinesalite_factory", "kinesalite_stream"})


class StreamRef(NamedTuple):
    """A stream made for one test; unpacks as ``endpoint_url, stream_name``."""

    endpoint_url: str
    stream_name: str


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _KINESIS_FIXTURES:
            item.add_marker(pytest.mark.kinesis)
        if names & _KINESALITE_FIXTURES:
            item.add_marker(pytest.mark.kinesalite)


@pytest.fixture(scope="session")
def kinesalite() -> Iterator[Kinesalite]:
    """A kinesalite shared by the session, data in memory. Do not restart it."""
    with Kinesalite() as server:
        yield server


@pytest.fixture
def kinesalite_factory(tmp_path: Path) -> Iterator[Callable[..., Kinesalite]]:
    """Start private kinesalite instances, stopped when the test ends.

    Each call takes :class:`Kinesalite` keywords; ``data_dir`` defaults to a
    fresh directory under ``tmp_path``, so ``restart()`` keeps the data.
    """
    started: list[Kinesalite] = []

    def start(**options: Any) -> Kinesalite:
        options.setdefault("data_dir", tmp_path / f"kinesalite-{len(started)}")
        server = Kinesalite(**options)
        started.append(server)
        server.start()
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's server mode shared by the session.

    NB: it shares state with ``moto_mock``; leaving a mock resets it.
    """
    with MotoServer() as server:
        yield server


@pytest.fixture
def clean_moto_server(moto_server: MotoServer) -> MotoServer:
    """The session moto server with every stream forgotten before the test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def moto_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[KinesisClient]:
    """moto's in-process mock (no server); yields a client for it.

    Credentials and region are set in the environment only for this test,
    so code under test that builds its own client never finds real ones.
    """
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield kinesis_client(None)


@pytest.fixture(
    params=[
        pytest.param("moto_server", id="moto"),
        pytest.param("kinesalite", id="kinesalite", marks=pytest.mark.kinesalite),
    ]
)
def kinesis_endpoint(request: pytest.FixtureRequest) -> str:
    """The endpoint URL of each emulator in turn: ``moto`` and ``kinesalite``."""
    server: Kinesalite | MotoServer = request.getfixturevalue(request.param)
    return server.endpoint_url


@pytest.fixture
def kinesalite_stream(
    request: pytest.FixtureRequest, kinesalite: Kinesalite
) -> Iterator[StreamRef]:
    """A one-shard stream with a unique name on the session kinesalite."""
    yield from _make_stream(request, kinesalite.endpoint_url)


@pytest.fixture
def moto_stream(request: pytest.FixtureRequest, moto_server: MotoServer) -> Iterator[StreamRef]:
    """A one-shard stream with a unique name on the session moto server."""
    yield from _make_stream(request, moto_server.endpoint_url)


@pytest.fixture
def kinesis_stream(request: pytest.FixtureRequest, kinesis_endpoint: str) -> Iterator[StreamRef]:
    """A one-shard stream on each emulator in turn (see ``kinesis_endpoint``)."""
    yield from _make_stream(request, kinesis_endpoint)


def _make_stream(request: pytest.FixtureRequest, endpoint_url: str) -> Iterator[StreamRef]:
    # NB: one shard only; tests that need more create their own stream.
    client = kinesis_client(endpoint_url)
    name = unique_stream_name(request.node.originalname)
    create_stream(client, name)
    yield StreamRef(endpoint_url, name)

    # Delete so that a long session does not accumulate streams; the test
    # may have deleted it already, or stopped the server.
    try:
        client.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    except client.exceptions.ResourceNotFoundException:
        pass
    finally:
        client.close()
