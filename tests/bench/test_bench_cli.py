"""pytest-benchmark: start-up time of the command line (a fresh interpreter per round).

Run: pytest tests/bench/test_bench_cli.py --benchmark-only

``python -m benchmarks --help`` should answer in well under 0.5 s on a quiet machine: it
imports no torch, POT, pandas or scikit-learn (checked without timing in
tests/benchmarks/test_cli.py). ``list suites`` is as cheap; ``list`` (everything) imports
the registries and so torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv", [["--help"], ["list", "suites"], ["list"]], ids=" ".join)
def test_bench_cli_start_up(benchmark, argv):
    benchmark.group = "cli start-up"

    def call() -> int:
        cmd = [sys.executable, "-m", "benchmarks", *argv]
        return subprocess.run(cmd, cwd=REPO, capture_output=True).returncode

    assert benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1) == 0
