"""Generation throughput: events drawn and encoded per CPU second, against a naive baseline.

The shipped path is `EventSource.take` in chunks of the engine's size
(`MAX_CHUNK`, 1,000), as the generation loop calls it. The baseline is written
here, the way the original system worked: one event at a time, drawn with the
`random` module, built as a dict and serialised with `json.dumps`. Both make
the same events (same fields, same model); only the baseline's draws differ.

CPU seconds are this process's (`time.process_time`), so other load on the
machine slows the clock less than it slows the wall; the two run alternately
within one run, so that their ratio is measured under the same conditions.
"""

from __future__ import annotations

import datetime
import json
import random
import time
from collections.abc import Callable

from benchmarks.measuring import Figures
from clickstream_generator.engine.running import MAX_CHUNK
from clickstream_generator.model.events import EventSource, run_id_prefix
from clickstream_generator.model.settings import ClickModel, ShardSlice

EPOCH_2026 = 1_767_225_600.0


class NaiveSource:
    """One event at a time with `random` and `json.dumps`: the baseline."""

    def __init__(self, model: ClickModel, *, producer_id: str, seed: int):
        self.model = model
        self.producer_id = producer_id
        self.random = random.Random(seed)
        self.prefix = run_id_prefix()
        self.weights = [group.weight for group in model.groups]
        self.sequence = 0

    def take(self, count: int, *, first_time: float, interval: float) -> list[bytes]:
        model, rng = self.model, self.random
        out = []
        for i in range(count):
            group = rng.choices(model.groups, weights=self.weights)[0]
            user = rng.randint(model.users.min, model.users.max)
            when = datetime.datetime.fromtimestamp(first_time + i * interval, tz=datetime.UTC)
            url = f"{model.base_url}/api/group/{group.id}"
            product = None
            if rng.random() >= model.group_click_probability:
                product = rng.randint(group.products.min, group.products.max)
                url += f"/product/{product}"
            event = {
                "event_id": f"{self.prefix}{self.sequence:012x}",
                "event_time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "event_type": "group_view" if product is None else "product_view",
                "user_id": user,
                "group_id": group.id,
                "group_name": group.name,
                "product_id": product,
                "url": f"{url}?userid={user}",
                "producer_id": self.producer_id,
                "sequence": self.sequence,
            }
            out.append(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
            self.sequence += 1
        return out


def _rate(take: Callable[[int, float], object], seconds: float) -> float:
    # Events per CPU second over at least ``seconds`` of CPU time, in engine-sized chunks.
    take(MAX_CHUNK, EPOCH_2026)  # warm up: tables, caches
    events = 0
    started = time.process_time()
    while (spent := time.process_time() - started) < seconds:
        take(MAX_CHUNK, EPOCH_2026 + events * 1e-5)
        events += MAX_CHUNK
    return events / spent


def run_once(*, seconds: float) -> Figures:
    """One run: the shipped path and the baseline, alternately, and their ratio."""
    model = ClickModel()
    shipped = EventSource(model, ShardSlice(), producer_id="bench-0", seed=1)
    naive = NaiveSource(model, producer_id="bench-0", seed=1)

    def take_shipped(count: int, first_time: float) -> object:
        return shipped.take(count, first_time=first_time, interval=1e-5)

    def take_naive(count: int, first_time: float) -> object:
        return naive.take(count, first_time=first_time, interval=1e-5)

    # Alternate in halves, so that a change of machine load hits both alike.
    fast, slow = [], []
    for _ in range(2):
        fast.append(_rate(take_shipped, seconds / 3))
        slow.append(_rate(take_naive, seconds / 6))
    fast_rate, slow_rate = sum(fast) / 2, sum(slow) / 2
    return {
        "events_per_cpu_second": fast_rate,
        "baseline_events_per_cpu_second": slow_rate,
        "speedup_over_baseline": fast_rate / slow_rate,
    }
