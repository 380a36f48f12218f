"""Behaviour of the emulator harness itself: servers, fixtures and helpers."""

from __future__ import annotations

import itertools
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from tests.emulators import servers
from tests.emulators.fixtures import StreamRef
from tests.emulators.servers import (
    EmulatorError,
    EmulatorNotInstalledError,
    EmulatorStartError,
    Kinesalite,
    MotoServer,
    ServerState,
)
from tests.emulators.streams import (
    create_stream,
    hash_key_of,
    kinesis_client,
    list_shards,
    read_all_records,
    unique_stream_name,
    wait_for_stream_active,
)

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

_TCP_LISTEN = "0A"
_MAX_HASH_KEY = 2**128 - 1


def _put_numbered_records(endpoint_url: str | None, stream_name: str, count: int) -> None:
    client = kinesis_client(endpoint_url)
    for start in range(0, count, 500):
        response = client.put_records(
            StreamName=stream_name,
            Records=[
                {"PartitionKey": f"user-{n}", "Data": f"event-{n}".encode()}
                for n in range(start, min(start + 500, count))
            ],
        )
        assert response["FailedRecordCount"] == 0


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of TCP sockets listening on ``port`` (hex, as in /proc)."""
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, _remote, state = line.split()[1:4]
                address, port_hex = local.split(":")
                if state == _TCP_LISTEN and int(port_hex, 16) == port:
                    addresses.append(address)
    return addresses


def _other_local_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses other than 127.0.0.1 (127.0.0.2 always)."""
    found = {"127.0.0.2"}
    with open("/proc/net/fib_trie") as trie:
        text = trie.read()
    for address in re.findall(r"\|-- (\d+\.\d+\.\d+\.\d+)\n\s+/32 host LOCAL", text):
        if address != "127.0.0.1":
            found.add(address)
    return sorted(found)


def test_records_round_trip_through_each_emulator(kinesis_stream: StreamRef) -> None:
    endpoint_url, stream_name = kinesis_stream
    _put_numbered_records(endpoint_url, stream_name, 120)

    records = read_all_records(kinesis_client(endpoint_url), stream_name, expected=120)

    assert sorted(r.data for r in records) == sorted(f"event-{n}".encode() for n in range(120))
    assert {r.partition_key for r in records} == {f"user-{n}" for n in range(120)}
    assert len({r.sequence_number for r in records}) == 120


def test_records_round_trip_through_the_in_process_mock(moto_mock: KinesisClient) -> None:
    client = moto_mock
    create_stream(client, "in-process")
    _put_numbered_records(None, "in-process", 10)

    records = read_all_records(client, "in-process", expected=10)

    assert sorted(r.data for r in records) == sorted(f"event-{n}".encode() for n in range(10))


def test_reading_includes_closed_parent_shards_after_a_split(kinesalite_stream: StreamRef) -> None:
    endpoint_url, stream_name = kinesalite_stream
    client = kinesis_client(endpoint_url)
    _put_numbered_records(endpoint_url, stream_name, 30)
    [parent] = list_shards(client, stream_name)
    client.split_shard(
        StreamName=stream_name,
        ShardToSplit=parent.shard_id,
        NewStartingHashKey=str(2**127),
    )
    wait_for_stream_active(client, stream_name)
    assert len(list_shards(client, stream_name)) == 3
    _put_numbered_records(endpoint_url, stream_name, 30)

    records = read_all_records(client, stream_name, expected=60)

    shards = {shard.shard_id: shard for shard in list_shards(client, stream_name)}
    assert not shards[parent.shard_id].is_open
    assert len(records) == 60
    assert sum(r.shard_id == parent.shard_id for r in records) == 30
    for record in records:
        assert shards[record.shard_id].owns(hash_key_of(record.partition_key))


def test_listed_shards_cover_the_whole_hash_key_space(kinesis_endpoint: str) -> None:
    client = kinesis_client(kinesis_endpoint)
    name = unique_stream_name("hash-space")
    create_stream(client, name, shards=4)

    shards = list_shards(client, name)

    assert len(shards) == 4
    assert shards[0].starting_hash_key == 0
    assert shards[-1].ending_hash_key == _MAX_HASH_KEY
    for left, right in itertools.pairwise(shards):
        assert right.starting_hash_key == left.ending_hash_key + 1
    client.delete_stream(StreamName=name)


def test_emulator_fixtures_mark_their_tests(
    request: pytest.FixtureRequest, kinesis_endpoint: str
) -> None:
    is_kinesalite = request.node.callspec.id == "kinesalite"

    assert request.node.get_closest_marker("kinesis") is not None
    assert (request.node.get_closest_marker("kinesalite") is not None) == is_kinesalite


def test_kinesalite_listens_on_loopback_only(kinesalite: Kinesalite) -> None:
    # 127.0.0.1 in /proc/net/tcp's little-endian hex; nothing on IPv6.
    assert _listening_addresses(kinesalite.port) == ["0100007F"]

    for address in _other_local_ipv4_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, kinesalite.port), timeout=5).close()


def test_moto_server_listens_on_loopback_only(moto_server: MotoServer) -> None:
    assert _listening_addresses(moto_server.port) == ["0100007F"]


def test_restart_keeps_the_port_and_the_data(
    kinesalite_factory: Callable[..., Kinesalite],
) -> None:
    server = kinesalite_factory()
    port = server.port
    client = kinesis_client(server.endpoint_url, config=Config(retries={"total_max_attempts": 1}))
    create_stream(client, "survivor", shards=2)
    _put_numbered_records(server.endpoint_url, "survivor", 40)

    server.stop()
    with pytest.raises(EndpointConnectionError):
        client.list_streams()
    server.start()

    assert server.port == port
    assert server.endpoint_url == f"http://127.0.0.1:{port}"
    records = read_all_records(client, "survivor", expected=40)
    assert sorted(r.data for r in records) == sorted(f"event-{n}".encode() for n in range(40))

    server.restart()
    assert server.port == port
    assert client.list_streams()["StreamNames"] == ["survivor"]


def test_restart_refuses_when_data_is_in_memory(
    kinesalite_factory: Callable[..., Kinesalite],
) -> None:
    server = kinesalite_factory(data_dir=None)

    with pytest.raises(EmulatorError, match="data_dir"):
        server.restart()
    assert server.state is ServerState.RUNNING


def test_stop_leaves_no_node_process(kinesalite_factory: Callable[..., Kinesalite]) -> None:
    server = kinesalite_factory()
    pid = server.pid

    server.stop()

    assert server.state is ServerState.STOPPED
    assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert _listening_addresses(server.port) == []


def test_stream_creation_is_awaited_when_the_emulator_is_slow(
    kinesalite_factory: Callable[..., Kinesalite],
) -> None:
    server = kinesalite_factory(create_stream_ms=300)
    client = kinesis_client(server.endpoint_url)

    create_stream(client, "slow")

    status = client.describe_stream_summary(StreamName="slow")["StreamDescriptionSummary"]
    assert status["StreamStatus"] == "ACTIVE"


@pytest.mark.kinesis
@pytest.mark.kinesalite
def test_a_taken_port_fails_the_start_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = Kinesalite(port=taken.getsockname()[1])

        with pytest.raises(EmulatorStartError, match="EADDRINUSE"):
            server.start()
    assert server.state is ServerState.NEW


def test_a_missing_npm_install_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(servers, "_KINESALITE_PACKAGE", tmp_path / "absent" / "package.json")

    with pytest.raises(EmulatorNotInstalledError, match=r"npm ci --prefix tests/emulators/node"):
        Kinesalite().start()


def test_moto_reset_forgets_every_stream(moto_server: MotoServer) -> None:
    client = kinesis_client(moto_server.endpoint_url)
    create_stream(client, unique_stream_name("forgotten"))

    moto_server.reset()

    assert client.list_streams()["StreamNames"] == []
