"""The results file, the chart and the table: each measure against its target.

`TARGETS` is the one list of what the issue promised, figure by figure; the
JSON, the chart and the printed table are all made from it, so they cannot
disagree. A figure without a target is recorded but not charted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """A promise about one median figure."""

    measure: str
    figure: str
    label: str
    unit: str
    limit: float
    kind: str
    """``at_least``, ``at_most``, or ``within`` (a relative distance from 1)."""

    def passes(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.kind == "at_least":
            return value >= self.limit
        if self.kind == "at_most":
            return value <= self.limit
        return abs(value - 1.0) <= self.limit

    def load(self, value: float) -> float:
        """The figure as a share of its budget: 1 is exactly on target, below 1 passes."""
        if self.kind == "at_least":
            return self.limit / value if value > 0 else math.inf
        if self.kind == "at_most":
            return value / self.limit
        return abs(value - 1.0) / self.limit

    def describe(self) -> str:
        if self.kind == "at_least":
            return f">= {self.limit:,.4g} {self.unit}"
        if self.kind == "at_most":
            return f"<= {self.limit:,.4g} {self.unit}"
        return f"within {self.limit:.1%} of target"


TARGETS = (
    Target("generation", "events_per_cpu_second", "generation", "events/CPU s", 1e6, "at_least"),
    Target("generation", "speedup_over_baseline", "generation vs naive", "x", 10, "at_least"),
    Target("delivery", "plain_cpu_us_per_event", "delivery", "µs CPU/event", 10, "at_most"),
    Target(
        "delivery", "aggregated_cpu_us_per_event", "delivery, aggregated", "µs CPU/event", 2,
        "at_most",
    ),
    *(
        Target(
            "pacing", f"rate_{rate}_achieved_over_target", f"pacing at {rate}/s", "", 0.005,
            "within",
        )
        for rate in ("1", "100", "10000", "50000")
    ),
    Target("control", "stop_to_last_event_ms", "HTTP stop", "ms", 100, "at_most"),
    *(
        Target(
            "fleet", f"pause_{pods}_pods_ms", f"pause, {pods} pod{'s' if pods > 1 else ''}",
            "ms", 2000, "at_most",
        )
        for pods in (1, 5, 20)
    ),
    Target("memory", "peak_rss_mib", "peak RSS at 50k/s, sink full", "MiB", 150, "at_most"),
)  # fmt: skip


def verdicts(measures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its median figure and whether it passes (measures not run are left out)."""
    rows = []
    for target in TARGETS:
        median = measures.get(target.measure, {}).get("median", {})
        if target.figure not in median:
            continue
        value = float(median[target.figure])
        rows.append(
            {
                "measure": target.measure,
                "figure": target.figure,
                "label": target.label,
                "value": value,
                "unit": target.unit,
                "target": target.describe(),
                "pass": target.passes(value),
                "share_of_budget": target.load(value),
            }
        )
    return rows


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the verdicts."""
    lines = ["| measure | median | target | |", "|---|---|---|---|"]
    for row in rows:
        value = _format(row["value"], row["unit"])
        verdict = "pass" if row["pass"] else "**miss**"
        lines.append(f"| {row['label']} | {value} | {row['target']} | {verdict} |")
    return "\n".join(lines)


def _format(value: float, unit: str) -> str:
    if not unit:
        return f"{value:.5f}"
    if value >= 1000:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def draw(path: Path, rows: list[dict[str, Any]], *, title: str) -> None:
    """One bar per target: the median as a share of its budget, on a log scale; 1 is the line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(reversed(rows))
    shares = [max(min(row["share_of_budget"], 100.0), 1e-3) for row in rows]
    colours = ["#2e7d32" if row["pass"] else "#c62828" for row in rows]
    figure, axes = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.6))
    axes.barh(range(len(rows)), shares, color=colours)
    axes.set_xscale("log")
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_yticks(range(len(rows)), [row["label"] for row in rows])
    for index, (row, share) in enumerate(zip(rows, shares, strict=True)):
        text = f"{_format(row['value'], row['unit'])}  (target {row['target']})"
        axes.text(share * 1.08, index, text, va="center", fontsize=8)
    low = min([*shares, 0.1]) / 2
    high = max([*shares, 1.0]) * 40
    axes.set_xlim(low, high)
    axes.set_xlabel("median as a share of its budget (log scale): left of the line passes")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
