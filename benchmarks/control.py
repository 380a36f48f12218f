"""Control latency: how fast the HTTP API's stop and rate change take effect.

One ``csgen run --serve 127.0.0.1:0 --autostart --no-auth --sink stdout``
process generates at `RATE`; a reader thread here notes when each line of its
standard output arrives and keeps the events' ``event_time``.

- ``stop_to_last_event_ms``: from sending ``POST /v1/stop`` to the arrival of
  the last event on the pipe (what a consumer sees; the stop flushes, so
  nothing arrives after its reply).
- ``stop_reply_ms``: from sending the stop to its reply (the state is then
  ``stopped``).
- ``last_event_due_after_stop_ms``: the scheduled time of the last event
  minus the moment the stop was sent (negative: nothing was scheduled after
  the request).
- ``rate_change_ms``: from sending ``PUT /v1/config {"eventsPerSecond": R2}``
  to the scheduled time of the first 10 ms in which at least 90 % of R2's
  events are due (the events' own timestamps, millisecond resolution).
- ``rate_change_reply_ms``: from sending the change to its reply.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import threading
import time
import urllib.request
from typing import IO, Any

from benchmarks.measuring import CSGEN, Figures, environment
from benchmarks.pacing import _epoch

RATE = 1000.0
NEW_RATE = 5000.0
_LISTENING = re.compile(r"listening on (http://\S+)")


class _Reader(threading.Thread):
    """Notes the arrival of each line and the event time it carries."""

    def __init__(self, stream: IO[bytes]):
        super().__init__(daemon=True)
        self.stream = stream
        self.arrivals: list[tuple[float, float]] = []  # (arrived, due), epoch seconds

    def run(self) -> None:
        for line in self.stream:
            arrived = time.time()
            due = _epoch(json.loads(line)["event_time"])
            self.arrivals.append((arrived, due))


def _call(url: str, method: str, body: dict[str, Any] | None = None) -> float:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    sent = time.time()
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
    return sent


def run_once() -> Figures:
    process = subprocess.Popen(
        [
            CSGEN, "run", "--serve", "127.0.0.1:0", "--autostart", "--no-auth",
            "--sink", "stdout", "--rate", str(RATE), "--quiet",
        ],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        base = _wait_for_url(process.stderr)
        reader = _Reader(process.stdout)
        reader.start()
        time.sleep(2.0)
        # Stop, then see what still arrives.
        stop_sent = _call(f"{base}/v1/stop", "POST")
        stop_replied = time.time()
        time.sleep(1.0)
        arrivals = list(reader.arrivals)
        last_arrived = max(a for a, _ in arrivals)
        last_due = max(d for _, d in arrivals)
        # Start again, then change the rate.
        _call(f"{base}/v1/start", "POST")
        time.sleep(2.0)
        change_sent = _call(f"{base}/v1/config", "PUT", {"eventsPerSecond": NEW_RATE})
        change_replied = time.time()
        time.sleep(1.0)
        _call(f"{base}/v1/stop", "POST")
        switched = _new_rate_reached([d for _, d in reader.arrivals], after=change_sent - 0.05)
        return {
            "stop_to_last_event_ms": (last_arrived - stop_sent) * 1000,
            "stop_reply_ms": (stop_replied - stop_sent) * 1000,
            "last_event_due_after_stop_ms": (last_due - stop_sent) * 1000,
            "rate_change_ms": (switched - change_sent) * 1000,
            "rate_change_reply_ms": (change_replied - change_sent) * 1000,
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_url(stderr: IO[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = stderr.readline().decode()
        if not line:
            break
        found = _LISTENING.search(line)
        if found:
            # Keep draining stderr so that the child never blocks on it.
            threading.Thread(target=stderr.read, daemon=True).start()
            return found.group(1).rstrip(";,")
    raise RuntimeError("csgen did not say where its control API listens")


def _new_rate_reached(due: list[float], *, after: float) -> float:
    # The first 10 ms window (by scheduled time) holding >= 90 % of the new rate's events.
    per_ms = collections.Counter(int(d * 1000) for d in due if d >= after)
    needed = 0.9 * NEW_RATE * 0.010
    for start in sorted(per_ms):
        if sum(per_ms.get(start + i, 0) for i in range(10)) >= needed:
            return start / 1000
    return float("nan")
