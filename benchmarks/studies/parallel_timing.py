"""Wall time of suites run serially and with ``--jobs N``, and whether their rows agree.

    python -m benchmarks.studies.parallel_timing                      # every named suite, --jobs 2
    python -m benchmarks.studies.parallel_timing --suites smoke,mixtures --jobs 2 -- --seeds 0

Each suite runs twice through the CLI in fresh temporary folders (``python -m benchmarks run
--suite S --no-progress [extra args]``): serially (``--jobs 1``; ``run``'s default is one
worker per usable core) and with ``--jobs N``. The table in
``results/harness/parallel_timing.md`` gives both wall times (the whole command, imports
included), the speed-up, the number of rows and how many rows differ in anything but
wall-time fields (``runner.TIMING_FIELDS``), with the largest metric difference. Serial runs
use torch's default thread count and workers one thread each, so large reductions may
differ in the last bits; ``--serial-threads 1`` makes the arithmetic the same.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.execution.environment import REPO_ROOT, environment
from benchmarks.execution.provenance import produced_by
from benchmarks.execution.runner import without_timing
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.suites import SUITES


def _run(suite: str, out: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "benchmarks", "run", "--suite", suite, "--out", str(out)]
    cmd += ["--no-progress", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def compare(a: list[dict], b: list[dict]) -> tuple[int, float]:
    """(rows of ``a`` that differ from ``b`` or are missing there, max |value difference|)."""
    kb = {(r["config_key"], r["metric"]): without_timing(r) for r in b}
    differ, worst = 0, 0.0
    for r in a:
        other = kb.get((r["config_key"], r["metric"]))
        mine = without_timing(r)
        if json.dumps(other, sort_keys=True) != json.dumps(mine, sort_keys=True):  # NaN == NaN
            differ += 1
            if other is not None and all(
                isinstance(v, float) and math.isfinite(v) for v in (mine["value"], other["value"])
            ):
                worst = max(worst, abs(mine["value"] - other["value"]))
    return differ + abs(len(b) - len(a)), worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.studies.parallel_timing", description=__doc__
    )
    p.add_argument("--suites", default=",".join(SUITES), help="comma-separated suite names")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--serial-threads", type=int, help="torch threads of the serial run")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "harness")
    p.add_argument("extra", nargs="*", help="extra 'benchmarks run' arguments (after --)")
    args = p.parse_args(argv)
    suites = [s for s in args.suites.split(",") if s]
    command = "python -m benchmarks.studies.parallel_timing " + " ".join(argv or sys.argv[1:])
    lines = [
        "# Serial vs parallel wall time per suite",
        "",
        produced_by(command.strip()),
        "",
        f"Machine: {environment()['machine']}, commit {environment()['commit']}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. Wall time of the "
        "whole `python -m benchmarks run` command (imports and metrics included).",
        "",
        f"| suite | rows | serial s | --jobs {args.jobs} s | speed-up | rows differing "
        "(beyond wall times) | max abs value difference |",
        "|---|---|---|---|---|---|---|",
    ]
    # --jobs 1: without it `run` starts one worker per usable core, and "serial" would not be
    serial_extra = [*args.extra, "--jobs", "1"]
    if args.serial_threads:
        serial_extra += ["--threads", str(args.serial_threads)]
    with tempfile.TemporaryDirectory() as tmp:
        for suite in suites:
            t_serial = _run(suite, Path(tmp) / "serial", serial_extra)
            t_jobs = _run(suite, Path(tmp) / "jobs", [*args.extra, "--jobs", str(args.jobs)])
            a = load_rows(Path(tmp) / "serial" / suite / ROWS_FILE).rows
            b = load_rows(Path(tmp) / "jobs" / suite / ROWS_FILE).rows
            differ, worst = compare(a, b)
            lines.append(
                f"| {suite} | {len(a)} | {t_serial:.1f} | {t_jobs:.1f} | "
                f"{t_serial / t_jobs:.2f} | {differ} | {worst:.3g} |"
            )
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "parallel_timing.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
