"""Wall time of a suite run on a quiet machine and beside a CPU-bound load this study starts.

Each run pins its intra-op threads (1 torch + BLAS thread per run by default, see
``benchmarks.execution.parallel``), so a loaded machine should slow a run by the share of cores it
gets, not by oversubscription. The study times each named run quiet, then again while
``--load`` busy-loop processes run, in one process, and writes a table with the load
averages next to every time.

    python -m benchmarks.studies.load_sensitivity   # writes results/harness/load_sensitivity.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.execution.environment import REPO_ROOT
from benchmarks.execution.provenance import produced_by

COMMAND = "python -m benchmarks.studies.load_sensitivity"
RUNS = {
    "smoke": ["--suite", "smoke"],
    "manifolds circle seed 0": ["--suite", "manifolds", "--targets", "circle", "--seeds", "0"],
}


def _burn(stop: float) -> None:
    """A CPU-bound loop until ``stop`` (time.time())."""
    x = 0
    while time.time() < stop:
        x += 1


def timed_run(args: list[str]) -> float:
    """Wall seconds of ``python -m benchmarks run ARGS`` into a fresh temporary folder."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "benchmarks", "run", *args, "--out", out, "--no-progress"]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    p.add_argument("--load", type=int, default=2, help="busy-loop processes started")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "harness")
    args = p.parse_args(argv)
    rows = []
    for name, run_args in RUNS.items():
        load_quiet = os.getloadavg()[0]
        quiet = timed_run(run_args)
        stop = time.time() + 10 * quiet + 600
        burners = [mp.Process(target=_burn, args=(stop,), daemon=True) for _ in range(args.load)]
        for b in burners:
            b.start()
        time.sleep(5)  # let the load settle in
        load_busy = os.getloadavg()[0]
        try:
            busy = timed_run(run_args)
        finally:
            for b in burners:
                b.terminate()
                b.join()
        rows.append((name, quiet, load_quiet, busy, load_busy))
        print(rows[-1], flush=True)
    lines = [
        "# Suite wall time, quiet and beside a CPU-bound load",
        "",
        produced_by(COMMAND) + f" ({os.cpu_count()} cores, "
        f"{args.load} busy-loop processes as the load, default settings: 1 thread per run).",
        "",
        "| run | quiet s | load avg (1 min) | loaded s | load avg (1 min) | loaded / quiet |",
        "|---|---|---|---|---|---|",
    ]
    for name, quiet, lq, busy, lb in rows:
        lines.append(
            f"| {name} | {quiet:.1f} | {lq:.2f} | {busy:.1f} | {lb:.2f} | {busy / quiet:.2f} |"
        )
    lines.append("")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load_sensitivity.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
