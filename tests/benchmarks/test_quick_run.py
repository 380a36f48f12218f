"""The benchmark suite still runs: one cheap measure end to end, in quick mode.

Figures are never asserted (they depend on the machine); only that the run
finished and wrote a results file of the documented shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_quick_generation_run_writes_its_figures_and_verdicts(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks", "--quick", "--only", "generation"),
            *("--no-chart", "--output", str(tmp_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads((tmp_path / "quick.json").read_text())
    assert document["mode"] == "quick"
    assert {"date", "git_commit", "machine", "runs", "duration_seconds"} <= set(document)
    generation = document["measures"]["generation"]
    assert len(generation["runs"]) == 1
    assert set(generation["median"]) == set(generation["runs"][0])
    assert {row["figure"] for row in document["targets"]} == {
        "events_per_cpu_second",
        "speedup_over_baseline",
    }
    assert all(isinstance(row["pass"], bool) for row in document["targets"])
