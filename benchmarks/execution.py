"""Run a whole suite: plan units, skip finished ones on ``--resume``, execute, store rows
incrementally and write the leaderboard (also after Ctrl-C, with what finished).

Files in ``<out>/<suite>/``: ``runs.jsonl`` (rows), ``curves.jsonl`` (metric along the
trajectory, with ``--curve-every``), ``particles/*.npz`` (final particles, float32),
``environment.json``, ``leaderboard.md``/``.csv``. For each finished unit the parent writes
its particle files (atomically) and curve rows first and its rows last, so a recorded row
implies its side outputs exist; a unit cut short is simply run again by ``--resume``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks import options
from benchmarks.diagnostics import write_diagnostics
from benchmarks.environment import environment
from benchmarks.locking import folder_lock
from benchmarks.parallel import completed_units
from benchmarks.provenance import record_run
from benchmarks.runner import RunSpec, UnitOutput, plan
from benchmarks.store import (
    CURVES_FILE,
    ROWS_FILE,
    append_rows,
    atomic_path,
    atomic_write_text,
    load_rows,
    repair,
    set_aside,
    write_rows,
)
from benchmarks.suites import Suite
from benchmarks.verdict.leaderboard import SUITE_FILE, write_leaderboard
from common.progress import show
from samplers.base import available_samplers

#: default output root of ``run`` (git-ignored); ``--out results`` refreshes the committed
#: results deliberately
RUNS_ROOT = options.RUNS_ROOT  # one definition, importable without torch
#: statuses that ``--retry-failed`` runs again
RETRY_STATUSES = ("failed", "timeout")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_suite(
    suite: Suite,
    *,
    out_root: Path,
    samplers: list[str] | None = None,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    command: str = "",
    executor: Callable[[RunSpec], list[dict]] | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    imports: Sequence[str] = (),
    threads: int | None = None,
    timeout: float | None = None,
    curve_every: int = 0,
    save_particles: bool = True,
    retry_failed: bool = False,
) -> Path:
    """Execute ``suite`` and return the path of its leaderboard markdown file.

    ``jobs``: local worker processes (joblib/loky); ``scheduler``: address of a Dask
    scheduler (takes precedence); ``imports``: plug-in modules imported in every process;
    ``threads``: torch threads per worker (default 1 in workers); ``timeout``: wall-time
    limit of fit + sampling per run (status ``timeout``); ``curve_every``: record the first
    metric every K steps (``curves.jsonl``); ``retry_failed``: like ``resume``, but runs
    whose status is failed or timeout run again (their old rows are set aside);
    ``executor``: a custom serial unit function returning rows (tests). One run at a time
    per folder: a second one exits with :class:`FolderLocked` naming the holder."""
    names = samplers or list(suite.samplers or available_samplers())
    out_dir = out_root / suite.name
    rows_path = out_dir / ROWS_FILE
    out_dir.mkdir(parents=True, exist_ok=True)
    # provenance first: nothing in the folder has moved yet, so the commit's +dirty mark
    # says only whether tracked files differ from HEAD
    env = environment(device)
    with folder_lock(out_dir, command):
        return _run_locked(
            suite, names, out_dir, rows_path, env,
            device=device, resume=resume, retry_failed=retry_failed, progress=progress,
            command=command, executor=executor, jobs=jobs, scheduler=scheduler,
            imports=imports, threads=threads, timeout=timeout, curve_every=curve_every,
            save_particles=save_particles,
        )  # fmt: skip


def _run_locked(
    suite: Suite,
    names: list[str],
    out_dir: Path,
    rows_path: Path,
    env: dict,
    *,
    device: str,
    resume: bool,
    retry_failed: bool,
    progress: bool,
    command: str,
    executor: Callable[[RunSpec], list[dict]] | None,
    jobs: int,
    scheduler: str | None,
    imports: Sequence[str],
    threads: int | None,
    timeout: float | None,
    curve_every: int,
    save_particles: bool,
) -> Path:
    done: set[str] = set()
    if resume or retry_failed:
        report, msg = repair(rows_path)
        if msg:
            log(f"warning: {msg}")
        rows = report.rows
        if retry_failed:
            again = {r["config_key"] for r in rows if r.get("status") in RETRY_STATUSES}
            if again:
                kept = [r for r in rows if r["config_key"] not in again]
                aside = rows_path.with_name(f"runs.retried-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
                write_rows(aside, [r for r in rows if r["config_key"] in again])
                write_rows(rows_path, kept)
                log(
                    f"retry: {len(again)} failed or timed-out runs again (old rows in {aside.name})"
                )
                rows = kept
        done = {r["config_key"] for r in rows}
    else:
        for name in (ROWS_FILE, CURVES_FILE):
            moved = set_aside(out_dir / name, "previous")
            if moved is not None:
                log(f"previous {name} moved to {moved}")
    specs = plan(
        suite,
        names,
        device,
        timeout=timeout,
        curve_every=curve_every,
        save_particles=save_particles,
    )
    todo = [s for s in specs if not all(s.config_key(i) in done for i in s.inits)]
    if resume:
        log(f"resume: {len(specs) - len(todo)} of {len(specs)} units already recorded")
    atomic_write_text(out_dir / "environment.json", json.dumps(env, indent=2))
    atomic_write_text(out_dir / SUITE_FILE, json.dumps(asdict(suite), indent=2, default=str) + "\n")
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"suite {suite.name}", unit="run", disable=not show(progress))
    if executor is not None:
        units = ((spec, UnitOutput(executor(spec))) for spec in todo)
    else:
        units = completed_units(
            todo, jobs=jobs, scheduler=scheduler, imports=imports, threads=threads
        )
    serial = scheduler is None and (jobs <= 1 or executor is not None)
    try:
        if serial and todo:
            bar.set_postfix_str(f"running {unit_label(todo[0])}")
        for k, (spec, output) in enumerate(units, start=1):
            if serial:  # units run in plan order: name the one that starts now
                running = f"running {unit_label(todo[k])}" if k < len(todo) else "done"
                bar.set_postfix_str(running, refresh=False)
            else:  # several run at once: name the one that finished
                bar.set_postfix_str(f"finished {unit_label(spec)}", refresh=False)
            bar.update(1)
            save_unit(out_dir, output, done)
    except KeyboardInterrupt:
        log("interrupted: finished rows are saved; rerun with --resume to continue")
        raise
    finally:
        bar.close()
        try:
            units.close()  # stop workers / cancel futures of unfinished units now
        except Exception as exc:  # a backend failing to shut down must not lose the board
            log(f"warning: shutting down workers: {type(exc).__name__}: {exc}")
        rows = in_plan_order(load_rows(rows_path).rows, specs)
        path = write_leaderboard(rows, out_dir, suite.name, command, env, suite.headline_metric)
        try:
            write_diagnostics(out_dir, rows)
        except Exception as exc:  # diagnostics must not lose the leaderboard
            log(f"warning: diagnostics failed: {type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - t0
        if command:
            record_run(out_dir, command, seconds, len(todo))
        log(f"{len(rows)} rows in {rows_path}; leaderboard {path} ({seconds:.1f} s)")
    return path


def unit_label(spec: RunSpec) -> str:
    """Short name of one unit for the progress bar: target/sampler/seed."""
    return f"{spec.target}/{spec.sampler}/seed{spec.rep}"


def save_unit(out_dir: Path, output: UnitOutput, done: set[str] = frozenset()) -> None:
    """Write one unit's particle files, then its curve rows, then its rows (fsync'ed):
    rows are the commit record, so a recorded row implies its side outputs exist."""
    for rel, arrays in output.arrays.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    if output.curves:
        append_rows(out_dir / CURVES_FILE, output.curves)
    append_rows(out_dir / ROWS_FILE, [r for r in output.rows if r["config_key"] not in done])


def in_plan_order(rows: list[dict], specs: Sequence[RunSpec]) -> list[dict]:
    """Rows sorted by the planned order of their configuration (parallel backends write
    them in completion order); rows of other configurations keep their order at the end."""
    rank: dict[str, int] = {}
    for spec in specs:
        for init in spec.inits:
            rank.setdefault(spec.config_key(init), len(rank))
    return sorted(rows, key=lambda r: rank.get(r.get("config_key", ""), len(rank)))
