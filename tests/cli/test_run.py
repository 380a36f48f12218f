"""``csgen run`` and ``csgen tail`` as a user runs them: real processes, real emulators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.emulators import kinesis_client, read_all_records
from tests.emulators.fixtures import StreamRef

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def csgen(
    *args: str, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "clickstream_generator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )


@pytest.mark.slow
def test_a_thousand_events_reach_the_stream_complete_and_in_order(
    kinesis_stream: StreamRef,
) -> None:
    endpoint, stream = kinesis_stream
    done = csgen(
        "run",
        "--sink",
        "kinesis",
        "--count",
        "1000",
        "--rate",
        "max",
        "--stream",
        stream,
        "--kinesis-endpoint",
        endpoint,
        "--region",
        "us-east-1",
        "--seed",
        "42",
        "--producer-id",
        "e2e-0",
        "--max-in-flight",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert "1,000 acknowledged, 0 failed, 0 pending" in done.stderr
    records = read_all_records(kinesis_client(endpoint), stream, expected=1000)
    events = [orjson.loads(r.data) for r in records]
    assert sorted(e["sequence"] for e in events) == list(range(1000))
    assert {e["producer_id"] for e in events} == {"e2e-0"}
    assert all(r.partition_key == str(orjson.loads(r.data)["user_id"]) for r in records)
    # Per partition key, the stream keeps the generation order.
    by_key: dict[str, list[int]] = {}
    for record, event in zip(records, events, strict=True):
        by_key.setdefault(record.partition_key, []).append(event["sequence"])
    assert all(seqs == sorted(seqs) for seqs in by_key.values())


@pytest.mark.slow
def test_tail_prints_what_run_sent(kinesalite_stream: StreamRef) -> None:
    endpoint, stream = kinesalite_stream
    common = ["--stream", stream, "--kinesis-endpoint", endpoint, "--region", "us-east-1"]
    assert csgen("run", "--count", "25", "--rate", "max", *common).returncode == 0
    tail = csgen("tail", *common, "--count", "25")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert sorted(orjson.loads(line)["sequence"] for line in lines) == list(range(25))
    assert "25 events read" in tail.stderr


@pytest.mark.slow
def test_with_no_stream_the_run_uses_an_embedded_kinesis_and_says_so() -> None:
    done = csgen("run", "--count", "40", "--rate", "400")
    assert done.returncode == 0, done.stderr
    first_line = done.stderr.splitlines()[0]
    assert "embedded Kinesis" in first_line
    assert "40 acknowledged, 0 failed, 0 pending" in done.stderr


def test_stdout_sink_prints_json_lines_from_a_properties_file() -> None:
    done = csgen(
        "run",
        "--sink",
        "stdout",
        "--config",
        str(EXAMPLES / "csgen.properties"),
        "--count",
        "30",
        "--rate",
        "max",
        "--seed",
        "1",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [e["sequence"] for e in events] == list(range(30))
    assert "probability-browsing-group-1 is ignored" in done.stderr


def test_the_config_file_can_come_from_cs_config_file(tmp_path: Path) -> None:
    done = csgen(
        "run",
        "--sink",
        "stdout",
        "--count",
        "5",
        "--rate",
        "max",
        "--quiet",
        env={"CS_CONFIG_FILE": str(EXAMPLES / "three-groups.yaml")},
    )
    assert done.returncode == 0, done.stderr
    assert all("shop.example.com" in line for line in done.stdout.splitlines())


def test_file_sink_appends(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    for _ in range(2):
        assert (
            csgen("run", "--sink", f"file:{out}", "--count", "10", "--rate", "max").returncode == 0
        )
    assert len(out.read_text().splitlines()) == 20


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate", "-3"], "must be > 0"),
        (["--rate", "fast"], "events per second"),
        (["--sink", "kafka"], "--sink must be"),
        (["--shard-index", "3", "--shard-count", "3"], "shard index must be in 0..2"),
        (["--config", "missing.properties"], "cannot read the file"),
        (["--kinesis-endpoint", "http://127.0.0.1:9"], "needs --stream"),
        (["--stream", "clicks"], "no AWS region"),
    ],
)
def test_bad_input_is_one_clear_line_not_a_traceback(args: list[str], words: str) -> None:
    done = csgen("run", "--count", "1", *args)
    assert done.returncode == 2
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_properties_file_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "csgen.properties"
    bad.write_text(
        (EXAMPLES / "csgen.properties")
        .read_text()
        .replace("customer-id-max=100", "customer-id-max=x")
    )
    done = csgen("run", "--sink", "stdout", "--config", str(bad), "--count", "1")
    assert done.returncode == 2
    assert f"{bad}: customer-id-max: must be a whole number (got 'x')" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_tail_unpacks_aggregated_records(kinesalite_stream: StreamRef) -> None:
    endpoint, stream = kinesalite_stream
    common = ["--stream", stream, "--kinesis-endpoint", endpoint, "--region", "us-east-1"]
    sent = csgen("run", "--count", "300", "--rate", "max", "--aggregate", *common)
    assert sent.returncode == 0, sent.stderr
    stored = read_all_records(kinesis_client(endpoint), stream)
    assert len(stored) < 300  # aggregated: fewer records than events
    tail = csgen("tail", *common, "--count", "300")
    assert tail.returncode == 0, tail.stderr
    events = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert sorted(e["sequence"] for e in events) == list(range(300))
