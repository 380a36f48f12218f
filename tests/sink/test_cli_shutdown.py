"""`csgen run` as a subprocess: SIGTERM mid-stream and a stream deleted mid-run.

Every generated sequence number must end up either in the stream or in the
spool. Throttling comes from a loopback proxy in front of kinesalite (see
`ThrottlingProxy`), since the product has no fault switch and kinesalite
does not throttle.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulators import kinesis_client, read_all_records
from tests.emulators.fixtures import StreamRef
from tests.polling import wait_for
from tests.sink.helpers import ThrottlingProxy

SUMMARY = re.compile(
    r"generated ([\d,]+) events .*?; ([\d,]+) acknowledged, ([\d,]+) failed, ([\d,]+) pending"
)


def start_run(endpoint_url: str, stream: str, spool: Path, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "clickstream_generator",
        "run",
        "--stream",
        stream,
        "--kinesis-endpoint",
        endpoint_url,
        "--region",
        "us-east-1",
        "--rate",
        "1000",
        "--seed",
        "7",
        "--producer-id",
        "sigterm-test",
        "--spool",
        str(spool),
        "--quiet",
        *extra,
    ]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )


def totals(stderr: str) -> tuple[int, int, int, int]:
    match = SUMMARY.search(stderr)
    assert match, stderr
    generated, acked, failed, pending = (int(g.replace(",", "")) for g in match.groups())
    return generated, acked, failed, pending


def sequences_in_stream(endpoint_url: str, stream: str) -> list[int]:
    records = read_all_records(kinesis_client(endpoint_url), stream)
    return [json.loads(r.data)["sequence"] for r in records]


def sequences_in_spool(spool: Path) -> list[int]:
    if not spool.exists():
        return []
    return [json.loads(line)["sequence"] for line in spool.read_text().splitlines()]


def count_in_stream(endpoint_url: str, stream: str) -> int:
    return len(read_all_records(kinesis_client(endpoint_url), stream))


@pytest.mark.timeout(90)
def test_sigterm_flushes_in_time_and_delivers_everything(
    kinesalite_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesalite_stream
    spool = tmp_path / "spool.jsonl"
    process = start_run(endpoint_url, stream, spool)
    try:
        wait_for(lambda: count_in_stream(endpoint_url, stream) >= 200, timeout=40, interval=0.01)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=40)
    generated, acked, failed, pending = totals(stderr)
    assert process.returncode == 0, stderr
    assert (failed, pending) == (0, 0)
    assert acked == generated
    assert sorted(sequences_in_stream(endpoint_url, stream)) == list(range(generated))
    assert sequences_in_spool(spool) == []


@pytest.mark.timeout(90)
def test_sigterm_during_throttling_spools_what_the_deadline_left(
    kinesalite_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesalite_stream
    spool = tmp_path / "spool.jsonl"
    with ThrottlingProxy(endpoint_url) as proxy:
        process = start_run(proxy.endpoint_url, stream, spool, "--shutdown-timeout", "1")
        try:
            wait_for(
                lambda: count_in_stream(endpoint_url, stream) >= 200, timeout=40, interval=0.01
            )
            proxy.throttle.set()
            wait_for(lambda: proxy.refused >= 3, timeout=20, interval=0.01)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=40)
    generated, acked, failed, pending = totals(stderr)
    assert process.returncode == 1, stderr
    assert failed > 0
    assert pending == 0
    assert acked + failed == generated
    delivered = sequences_in_stream(endpoint_url, stream)
    spooled = sequences_in_spool(spool)
    assert len(delivered) == acked
    assert sorted(delivered + spooled) == list(range(generated))
    assert "shutdown_deadline" in spool.read_text()


@pytest.mark.timeout(90)
def test_stream_deleted_mid_run_stops_spools_and_exits_non_zero(
    kinesalite_stream: StreamRef, tmp_path: Path
) -> None:
    endpoint_url, stream = kinesalite_stream
    spool = tmp_path / "spool.jsonl"
    process = start_run(endpoint_url, stream, spool)
    try:
        wait_for(lambda: count_in_stream(endpoint_url, stream) >= 200, timeout=40, interval=0.01)
        kinesis_client(endpoint_url).delete_stream(StreamName=stream)
        _, stderr = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    generated, acked, failed, pending = totals(stderr)
    assert process.returncode == 1, stderr
    assert "does not exist" in stderr
    assert pending == 0
    assert acked + failed == generated
    assert failed > 0
    assert len(sequences_in_spool(spool)) == failed
    assert set(sequences_in_spool(spool)) <= set(range(generated))
