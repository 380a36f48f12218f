"""Memory: peak RSS of a generator at 50,000 events/s with its Kinesis sink at the buffer limit.

``csgen run --rate 50000`` writes to kinesalite through a loopback proxy that
answers every PutRecords with throttling, so nothing is ever acknowledged and
the sink fills up to its default limits (100,000 events or 32 MiB); from then
on `send` waits and the pacer writes off the rest as shortfall. The figure is
the process's peak resident set (``VmHWM``) after it has held the limit for
`HOLD` seconds, read before it is asked to stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.emulators import create_stream, kinesis_client, unique_stream_name
from tests.sink.helpers import ThrottlingProxy

from benchmarks.control import _wait_for_url
from benchmarks.measuring import CSGEN, Figures, environment

RATE = 50_000
BUFFER_RECORDS = 100_000


def _status(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/v1/status", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc: peak RSS is measured on Linux only")


def run_once(endpoint: str, *, hold: float) -> Figures:
    stream = unique_stream_name("bench-memory")
    create_stream(kinesis_client(endpoint), stream, shards=4)
    with ThrottlingProxy(endpoint) as proxy, tempfile.TemporaryDirectory() as scratch:
        proxy.throttle.set()
        process = subprocess.Popen(
            [
                CSGEN, "run", "--serve", "127.0.0.1:0", "--autostart", "--no-auth",
                "--rate", str(RATE), "--stream", stream, "--region", "us-east-1",
                "--kinesis-endpoint", proxy.endpoint_url, "--quiet",
                "--spool", str(Path(scratch) / "spool.jsonl"), "--shutdown-timeout", "1",
            ],
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            base = _wait_for_url(process.stderr)
            started = time.monotonic()
            full_since = None
            pending = 0
            while time.monotonic() - started < 120:
                pending = int(_status(base)["pending"])
                if pending >= BUFFER_RECORDS and full_since is None:
                    full_since = time.monotonic()
                if full_since is not None and time.monotonic() - full_since >= hold:
                    break
                time.sleep(0.2)
            if full_since is None:
                raise RuntimeError(f"the sink never reached its limit (pending {pending})")
            status = _status(base)
            peak = _peak_rss(process.pid)
            return {
                "peak_rss_mib": peak / 2**20,
                "pending_events": float(status["pending"]),
                "buffered_mib": status["buffered_bytes"] / 2**20,
                "seconds_to_limit": full_since - started,
            }
        finally:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
