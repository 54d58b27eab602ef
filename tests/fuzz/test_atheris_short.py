"""The short run of every Atheris target: 2,000 inputs or 10 s each, whichever comes first.

Each target runs in its own process (`tests/fuzz/run.py`: libFuzzer exits the process on
a crash) with the same oracle as the long runs of `make fuzz`; a crash, a hang or a
memory blow-up gives a non-zero exit and the failing input in the output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_run(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", name, "-runs=2000", "-max_total_time=10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # The target really ran under coverage: libFuzzer counted the inputs and found edges
    # (a module imported before instrumentation leaves only a handful).
    runs = re.search(r"stat::number_of_executed_units: *(\d+)", proc.stderr)
    assert runs is not None and int(runs.group(1)) > 0, proc.stderr[-2000:]
    edges = [int(n) for n in re.findall(r" cov: (\d+)", proc.stderr)]
    assert edges and edges[-1] >= 20, f"coverage {edges[-1:]}: pillarbox not instrumented?"
