"""Wall time of one small suite run serially, with ``--jobs 2`` and on local Dask clusters
of two workers, side by side in one script, with the load average of the machine.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        python -m benchmarks.studies.dask_timing

Every mode runs the same ``python -m benchmarks run`` command line in a fresh temporary
folder (one torch and one BLAS thread per run, the harness's default): serially, with
``--jobs 2`` (loky processes) and with ``--scheduler`` pointing at a
``distributed.LocalCluster`` of two workers started by this script, once with
``processes=True, threads_per_worker=1`` (the recommended set-up: one process per worker)
and once with ``processes=False`` (two worker threads in one process, sharing its GIL).
The cluster's start-up is timed separately from the run. The table gives the wall time of
each command, its ratio to ``--jobs 2``, the sum over runs of fit + sampling seconds as
the rows record them (where the time goes inside the units), the slowest unit, whether
the rows equal the serial rows beyond wall times, and the 1-minute load average before
each mode.

A second table shows where Dask's time went before ``benchmarks.execution.dask_plugin``: one
sinkhorn_generator unit (its fit is a training loop of many small torch allocations) timed
in a fresh process with the environment Dask's nanny gives its workers
(``MALLOC_TRIM_THRESHOLD_=65536``, which freezes glibc's mmap threshold at 128 KiB), without
it, and with it plus the plugin's :func:`~benchmarks.execution.dask_plugin.relax_malloc_trimming`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.execution.environment import REPO_ROOT, environment
from benchmarks.execution.provenance import produced_by, study_command
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.studies.parallel_timing import compare

#: the subset timed (defaults): one manifold target, two seeds, one init, samplers with a
#: Python-heavy training loop (sinkhorn_generator, shortened to 60 iterations so that no
#: single unit dominates the wall time), a linear-algebra fit (edmd_kswgd, dmps) and
#: particle updates (svgd, ula); small enough that the four modes take a few minutes
SUITE = "manifolds"
TARGETS = "circle"
SAMPLERS = "sinkhorn_generator,edmd_kswgd,dmps,svgd,ula"
SUBSET = (
    "--particles",
    "100",
    "--steps",
    "50",
    "--seeds",
    "0,1",
    "--inits",
    "gaussian",
    "--param",
    "sinkhorn_generator.iterations=60",
    "--no-particles",
)


def _load() -> float:
    return os.getloadavg()[0]


@contextlib.contextmanager
def _cluster(processes: bool) -> Iterator[tuple[str, float]]:
    """A local Dask cluster of two one-thread workers: (address, start-up seconds)."""
    from distributed import LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=processes,
        protocol="tcp",  # reachable from the run's own process (not inproc://)
        dashboard_address=None,
        silence_logs=40,
    ) as cluster:
        yield cluster.scheduler_address, time.perf_counter() - t0


def _run(out: Path, argv: list[str]) -> float:
    cmd = [sys.executable, "-m", "benchmarks", "run", "--out", str(out), "--no-progress", *argv]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _unit_seconds(rows: list[dict]) -> tuple[float, str]:
    """(sum over configurations of fit + sampling seconds, 'sampler 12.3 s' of the slowest)."""
    per = {}
    for r in rows:
        per[r["config_key"]] = (r["sampler"], (r["fit_seconds"] or 0) + (r["sample_seconds"] or 0))
    slowest = max(per.values(), key=lambda v: v[1])
    return sum(v for _, v in per.values()), f"{slowest[0]} {slowest[1]:.1f} s"


#: the unit of the allocator table: the subset's sinkhorn_generator fit, run twice in one
#: process (the first run warms imports and caches up; the second is timed)
PROBE_ITERATIONS = 60


def _probe_unit(relax: bool) -> None:
    """In this process: (optionally relax glibc's trimming, then) run one sinkhorn_generator
    unit twice and print the second fit's seconds."""
    from benchmarks.execution.dask_plugin import relax_malloc_trimming
    from benchmarks.execution.parallel import with_threads
    from benchmarks.execution.runner import RunSpec, execute_unit

    if relax:
        relax_malloc_trimming()
    spec = RunSpec(
        suite=SUITE,
        target=TARGETS.split(",")[0],
        sampler="sinkhorn_generator",
        rep=0,
        n_particles=100,
        n_steps=50,
        n_train=1000,
        n_reference=1000,
        inits=("gaussian",),
        metrics=("sinkhorn",),
        suite_seed=0,
        params={"iterations": PROBE_ITERATIONS},
    )
    for _ in range(2):
        row = with_threads(execute_unit, spec).rows[0]
    print(f"{row['fit_seconds']:.3f}")


def _allocator_rows() -> list[str]:
    """Markdown rows: the probe unit's fit seconds in three process set-ups."""
    nanny = {"MALLOC_TRIM_THRESHOLD_": "65536"}
    cases = (
        ("default glibc settings (loky workers, serial runs)", {}, False),
        ("`MALLOC_TRIM_THRESHOLD_=65536` (Dask nanny's workers)", nanny, False),
        ("`MALLOC_TRIM_THRESHOLD_=65536` + `relax_malloc_trimming()` (the plugin)", nanny, True),
    )
    rows = []
    for label, extra, relax in cases:
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        load = _load()
        cmd = [sys.executable, "-m", "benchmarks.studies.dask_timing", "--probe-unit"]
        cmd += ["relax" if relax else "plain"]
        out = subprocess.run(
            cmd, cwd=REPO_ROOT, env={**env, **extra}, check=True, capture_output=True, text=True
        )
        fit = float(out.stdout.strip().splitlines()[-1])
        rows.append(f"| {label} | {fit:.1f} | {load:.2f} |")
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.studies.dask_timing", description=__doc__
    )
    p.add_argument("--targets", default=TARGETS)
    p.add_argument("--samplers", default=SAMPLERS)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "harness")
    p.add_argument(
        "--modes",
        default="serial,jobs,dask_processes,dask_threads",
        help="comma-separated subset of serial,jobs,dask_processes,dask_threads",
    )
    p.add_argument("--probe-unit", choices=["plain", "relax"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe_unit:
        _probe_unit(args.probe_unit == "relax")
        return 0
    base = ["--suite", SUITE, "--targets", args.targets, "--samplers", args.samplers, *SUBSET]
    command = study_command("benchmarks.studies.dask_timing", argv)
    env = environment()
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            load = _load()
            out = Path(tmp) / mode
            startup = None
            if mode == "serial":
                wall = _run(out, [*base, "--jobs", "1"])  # run's default: a worker per core
            elif mode == "jobs":
                wall = _run(out, [*base, "--jobs", "2"])
            elif mode in ("dask_processes", "dask_threads"):
                with _cluster(processes=mode == "dask_processes") as (address, startup):
                    wall = _run(out, [*base, "--scheduler", address])
            else:
                raise SystemExit(f"unknown mode {mode!r}")
            rows = load_rows(out / SUITE / ROWS_FILE).rows
            results.append((mode, wall, startup, load, rows))
            print(f"{mode}: {wall:.1f} s (load {load:.2f})", flush=True)
    allocator = _allocator_rows()
    jobs_wall = next((w for m, w, *_ in results if m == "jobs"), None)
    serial_rows = next((r for m, *_, r in results if m == "serial"), None)
    lines = [
        "# Dask vs serial vs `--jobs 2` on the same cores",
        "",
        produced_by(command.strip()),
        "",
        f"Machine: {env['machine']}, commit {env['commit']}, OMP_NUM_THREADS="
        f"{threads['OMP_NUM_THREADS']}, MKL_NUM_THREADS={threads['MKL_NUM_THREADS']}; one torch "
        "and one BLAS thread per run (the harness's default). Command of every mode: "
        f"`python -m benchmarks run {' '.join(base)}` plus the mode's option; wall time of the "
        "whole command (imports included), cluster start-up excluded and shown apart. "
        "`unit s` = sum of fit + sampling seconds recorded in the rows; `load` = 1-minute "
        "load average before the mode started (other processes share these cores).",
        "",
        "| mode | wall s | / --jobs 2 | cluster start s | unit s | slowest unit | rows | "
        "rows differing from serial | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "serial": "serial",
        "jobs": "--jobs 2 (loky processes)",
        "dask_processes": "Dask, 2 worker processes x 1 thread",
        "dask_threads": "Dask, 2 worker threads in 1 process",
    }
    for mode, wall, startup, load, rows in results:
        unit, slowest = _unit_seconds(rows)
        ratio = f"{wall / jobs_wall:.2f}" if jobs_wall else "-"
        differ = "-" if serial_rows is None else str(compare(rows, serial_rows)[0])
        start = "-" if startup is None else f"{startup:.1f}"
        lines.append(
            f"| {labels[mode]} | {wall:.1f} | {ratio} | {start} | {unit:.1f} | {slowest} | "
            f"{len(rows)} | {differ} | {load:.2f} |"
        )
    lines += [
        "",
        "## Where Dask's time went",
        "",
        "Fit seconds of one sinkhorn_generator unit "
        f"({PROBE_ITERATIONS} training iterations, the subset's settings), the second of two "
        "runs in a fresh process, one thread; `load` as above. Dask's nanny starts its "
        "workers with `MALLOC_TRIM_THRESHOLD_=65536`; setting it also stops glibc from "
        "raising its mmap threshold above 128 KiB, so every larger tensor is mapped and "
        "unmapped again (page faults on each allocation). Threads, the GIL and torch's "
        "thread count are the same in every row.",
        "",
        "| process set-up | fit s | load |",
        "|---|---|---|",
        *allocator,
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "dask_timing.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
