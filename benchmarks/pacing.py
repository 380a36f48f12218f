"""Pacing accuracy: the rate the engine achieves against its target, and the spread of gaps.

Each rate runs in its own process (``python -m benchmarks.pacing --rate R
--seconds S``), the four at once, through the real `Producer` on the real
clock into `TimingSink`: a null sink that only notes when each chunk of
events reached it (``time.monotonic``) and the scheduled time of its first
event. It costs almost nothing, so what is measured is the engine's pacing,
not a destination's speed.

Figures over the window (after a 2 s warm-up):

- ``achieved_over_target``: events that arrived after the first arrival up to
  the last, over the time between the two, divided by the target. Counting
  between arrivals (rather than in a fixed window) has no off-by-one at 1 event/s.
- ``gap_p01_ms``, ``gap_p50_ms``, ``gap_p99_ms``: percentiles of the time
  between two consecutive arrivals at the sink. Below about 1,000 events/s
  each event arrives alone, so these are inter-event gaps; above, events
  arrive in chunks (``events_per_arrival``), one per turn of the loop.
- ``lateness_p50_ms``, ``lateness_p99_ms``: how long after its scheduled time
  (its ``event_time``) the first event of each chunk arrived.
- ``shortfall``: events the schedule wrote off because the loop fell behind.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Sequence

import orjson

from benchmarks.measuring import ROOT, Figures, environment
from clickstream_generator.engine.running import Producer, RunSettings
from clickstream_generator.kits import collecting
from clickstream_generator.model.events import Record, data_of
from clickstream_generator.sinks.base import Sink

RATES = (1.0, 100.0, 10_000.0, 50_000.0)
WARM_UP = 2.0


class TimingSink(Sink):
    """Notes when events arrive and when the first of each chunk was due; keeps nothing else."""

    kind = "timing"

    def __init__(self) -> None:
        super().__init__()
        self.arrived = array("d")
        self.counts = array("q")
        self.lateness = array("d")

    async def send(self, records: Sequence[Record]) -> None:
        count = len(records)
        self.accounting.accept(count)
        self.arrived.append(time.monotonic())
        self.counts.append(count)
        due = orjson.loads(data_of(records)[0])["event_time"]
        self.lateness.append(time.time() - _epoch(due))
        self.accounting.acknowledge(count)

    async def flush(self, timeout: float | None = None) -> bool:
        return True


def _epoch(text: str) -> float:
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.UTC).timestamp()


async def _pace(rate: float, seconds: float) -> Figures:
    sink = TimingSink()
    producer = Producer(RunSettings(rate=rate), sink, producer_id="bench-0", seed=1)
    collecting.tune_for_throughput()
    await producer.start()
    await asyncio.sleep(WARM_UP + seconds)
    await producer.stop()
    return _figures(sink, rate, seconds, producer.shortfall)


def _figures(sink: TimingSink, rate: float, seconds: float, shortfall: int) -> Figures:
    start = sink.arrived[0] + WARM_UP
    end = start + seconds
    window = [i for i, t in enumerate(sink.arrived) if start <= t <= end]
    first, last = window[0], window[-1]
    events = sum(sink.counts[first + 1 : last + 1])
    achieved = events / (sink.arrived[last] - sink.arrived[first])
    gaps = sorted(
        (sink.arrived[i] - sink.arrived[i - 1]) * 1000 for i in window[1:] if i > window[0]
    )
    lateness = sorted(sink.lateness[i] * 1000 for i in window)
    return {
        "achieved_over_target": achieved / rate,
        "events_in_window": float(events),
        "gap_p01_ms": _percentile(gaps, 0.01),
        "gap_p50_ms": _percentile(gaps, 0.5),
        "gap_p99_ms": _percentile(gaps, 0.99),
        "events_per_arrival": statistics.fmean(sink.counts[first : last + 1]),
        "lateness_p50_ms": _percentile(lateness, 0.5),
        "lateness_p99_ms": _percentile(lateness, 0.99),
        "shortfall": float(shortfall),
    }


def _percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


def run_once(*, seconds: float, rates: Sequence[float] = RATES) -> Figures:
    """All rates at once, each in its own process; figures prefixed ``rate_<R>_``."""
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.pacing",
                "--rate",
                str(rate),
                "--seconds",
                str(seconds),
            ],
            cwd=ROOT,
            env=environment(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for rate in rates
    ]
    figures: Figures = {}
    for rate, child in zip(rates, children, strict=True):
        out, _ = child.communicate(timeout=seconds + 120)
        if child.returncode != 0:
            raise RuntimeError(f"the pacing run at {rate:g} events/s failed ({child.returncode})")
        for key, value in json.loads(out).items():
            figures[f"rate_{rate:g}_{key}"] = value
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one pacing run (a child of the benchmark)")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_pace(args.rate, args.seconds))))


if __name__ == "__main__":
    main()
