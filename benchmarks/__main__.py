"""``python -m benchmarks``: every measure, side by side, into results/latest.json and summary.png.

``--quick`` shortens every window (5 s of pacing instead of 60, one cycle
of the operator, fewer events) and writes ``quick.json`` and ``quick.png``
instead, so that a development run never replaces the committed figures.
``--only`` picks measures. Progress goes to stderr; the table of verdicts
is printed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import reporting
from benchmarks.measuring import Measured, git_commit, machine, repeat, say

RESULTS = Path(__file__).resolve().parent / "results"
MEASURES = ("generation", "delivery", "pacing", "control", "memory", "fleet")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows, for development")
    parser.add_argument("--runs", type=int, help="runs of each measure (default 3, quick 1)")
    parser.add_argument(
        "--only", help=f"comma-separated measures to run (default all: {','.join(MEASURES)})"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory for the results")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG (no matplotlib)")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(MEASURES)
    unknown = sorted(set(chosen) - set(MEASURES))
    if unknown:
        parser.error(f"unknown measures {unknown}; choose from {', '.join(MEASURES)}")
    args.only = [m for m in MEASURES if m in chosen]
    args.runs = args.runs or (1 if args.quick else 3)
    return args


def _run(name: str, args: argparse.Namespace) -> dict[str, Measured]:
    quick, runs = args.quick, args.runs
    if name == "generation":
        from benchmarks import generation

        seconds = 1.0 if quick else 4.0
        result = repeat(runs, lambda: generation.run_once(seconds=seconds), label=name)
        result.notes = {"chunk": 1000, "cpu_seconds_per_run": seconds, "model": "shipped"}
        return {name: result}
    if name == "pacing":
        from benchmarks import pacing

        seconds = 5.0 if quick else 60.0
        result = repeat(runs, lambda: pacing.run_once(seconds=seconds), label=name)
        result.notes = {
            "window_seconds": seconds,
            "sink": "TimingSink: a null sink that notes arrival times (in benchmarks/pacing.py)",
            "rates": list(pacing.RATES),
            "concurrently": "the four rates run at once, one process each",
        }
        return {name: result}
    if name == "control":
        from benchmarks import control

        result = repeat(runs, control.run_once, label=name)
        result.notes = {"rate": control.RATE, "new_rate": control.NEW_RATE, "sink": "stdout"}
        return {name: result}
    if name in ("delivery", "memory"):
        return _with_kinesalite(name, args)
    return _fleet(args)


def _with_kinesalite(name: str, args: argparse.Namespace) -> dict[str, Measured]:
    from tests.emulators import Kinesalite

    with Kinesalite() as kinesalite:
        endpoint = kinesalite.endpoint_url
        if name == "delivery":
            from benchmarks import delivery

            count = 20_000 if args.quick else 100_000
            result = repeat(args.runs, lambda: delivery.run_once(endpoint, count=count), label=name)
            result.notes = {"events_per_run": count, "shards": delivery.SHARDS}
            return {name: result}
        from benchmarks import memory

        hold = 3.0 if args.quick else 10.0
        result = repeat(args.runs, lambda: memory.run_once(endpoint, hold=hold), label=name)
        result.notes = {"rate": memory.RATE, "hold_seconds": hold, "destination": "throttled"}
        return {name: result}


def _fleet(args: argparse.Namespace) -> dict[str, Measured]:
    from benchmarks import fleet

    cycles = 1 if args.quick else args.runs
    pods_counts = (1, 5) if args.quick else (1, 5, 20)
    pause = Measured(notes={"pods": list(pods_counts), "cycles": cycles})
    with fleet.fleet() as running:
        scale = fleet.measure_scale(running, cycles)
        for pods in pods_counts:
            measured = fleet.measure_pause(running, pods, cycles)
            # One run per cycle, its figures side by side for every pod count.
            for index, figures in enumerate(measured.runs):
                if index < len(pause.runs):
                    pause.runs[index].update(figures)
                else:
                    pause.runs.append(dict(figures))
    combined = Measured(
        runs=[{**p, **s} for p, s in zip(pause.runs, scale.runs, strict=False)],
        notes={**pause.notes, "scale": scale.notes, "per_pod_rate": fleet.PER_POD_RATE},
    )
    return {"fleet": combined}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    document: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "mode": "quick" if args.quick else "full",
        "runs": args.runs,
        "machine": machine(),
        "measures": {},
    }
    runners: dict[str, Callable[[], dict[str, Measured]]] = {
        name: (lambda name=name: _run(name, args)) for name in args.only
    }
    for name, run in runners.items():
        say(f"{name} ...")
        for key, measured in run().items():
            document["measures"][key] = measured.as_dict()
    document["duration_seconds"] = round(time.monotonic() - started)
    rows = reporting.verdicts(document["measures"])
    document["targets"] = rows
    stem = "quick" if args.quick else "latest"
    reporting.write_json(args.output / f"{stem}.json", document)
    if not args.no_chart:
        chart = "summary" if not args.quick else "quick"
        title = f"csgen benchmarks, {document['date'][:10]}, {document['machine']['cores']} cores"
        reporting.draw(args.output / f"{chart}.png", rows, title=title)
    print(reporting.table(rows))
    say(f"done in {document['duration_seconds']} s; results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
