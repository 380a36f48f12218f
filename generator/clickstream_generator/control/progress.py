"""Progress lines and the final summary of a command-line run, on stderr."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from clickstream_generator.engine.running import Producer


def _n(value: int) -> str:
    return f"{value:,}"


def progress_line(status: dict[str, Any], elapsed: float) -> str:
    """One line: rate, totals, errors."""
    rate = status["achieved_rate"]
    target = status["target_rate"]
    target_text = "max" if target is None else f"{target:g}/s"
    parts = [
        f"{elapsed:6.1f}s",
        f"{rate:,.1f} events/s (target {target_text})",
        f"generated {_n(status['generated'])}",
        f"acknowledged {_n(status['acknowledged'])}",
        f"failed {_n(status['failed'])}",
        f"pending {_n(status['pending'])}",
    ]
    if status.get("shortfall"):
        parts.append(f"shortfall {_n(status['shortfall'])}")
    if status.get("last_error"):
        parts.append(f"last error: {status['last_error']}")
    return "csgen: " + ", ".join(parts)


def summary_line(status: dict[str, Any], elapsed: float) -> str:
    """The closing sentence of a run."""
    generated = status["generated"]
    rate = generated / elapsed if elapsed > 0 else 0.0
    text = (
        f"csgen: done: generated {_n(generated)} events in {elapsed:.1f} s ({rate:,.1f}/s); "
        f"{_n(status['acknowledged'])} acknowledged, {_n(status['failed'])} failed, "
        f"{_n(status['pending'])} pending"
    )
    if status.get("spooled"):
        text += f", {_n(status['spooled'])} written to the spool"
    if status.get("shortfall"):
        text += f"; {_n(status['shortfall'])} behind schedule (the sink could not keep up)"
    return text + "."


async def report_progress(
    producer: Producer, started: float, *, every: float = 5.0, out: TextIO | None = None
) -> None:
    """Print a progress line every ``every`` seconds until cancelled."""
    stream = out or sys.stderr
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every)
        print(progress_line(producer.status(), loop.time() - started), file=stream, flush=True)
