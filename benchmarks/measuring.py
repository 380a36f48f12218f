"""What the measures share: runs and medians, the machine, child processes.

A measure is a function that returns one run's figures as a flat dict of
numbers; `repeat` runs it several times and keeps every run and the median
of each figure. Nothing here knows a particular measure.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The csgen command of the running interpreter's environment.
CSGEN = str(Path(sys.executable).with_name("csgen"))

Figures = dict[str, float]


@dataclass
class Measured:
    """Every run of one measure, and the median of each figure over them."""

    runs: list[Figures] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    """Settings and caveats of the measure (rates, sinks, counts), for the record."""

    @property
    def median(self) -> Figures:
        keys = [key for key in self.runs[0] if all(key in run for run in self.runs)]
        return {key: statistics.median(run[key] for run in self.runs) for key in keys}

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "runs": self.runs, "notes": self.notes}


def repeat(runs: int, measure: Callable[[], Figures], *, label: str) -> Measured:
    """Run ``measure`` ``runs`` times, saying so on stderr."""
    result = Measured()
    for number in range(1, runs + 1):
        started = time.monotonic()
        figures = measure()
        result.runs.append(figures)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in list(figures.items())[:4])
        say(f"{label} run {number}/{runs} ({time.monotonic() - started:.0f} s): {shown}")
    return result


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _short(value: float) -> str:
    return f"{value:.4g}"


def machine() -> dict[str, Any]:
    """What ran the figures: CPU, cores, memory, Python, and the load at the start."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> str:
    answer = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    commit = answer.stdout.strip() or "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "generator"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{commit}+dirty" if dirty else commit


def child_cpu(process: subprocess.Popen[Any]) -> tuple[int, float, int]:
    """Wait for a child; its exit code, CPU seconds (user + system) and peak RSS in bytes."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def environment(**extra: str) -> Mapping[str, str]:
    """The environment for csgen children: placeholder AWS credentials, no proxies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HTTP", "http"))}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", NO_PROXY="*")
    env.update(extra)
    return env


@contextmanager
def single_core() -> Iterator[None]:
    """Run the block with this process pinned to one core (where the system allows it)."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def self_cpu() -> float:
    """CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
