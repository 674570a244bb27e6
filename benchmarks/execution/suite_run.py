"""Run a whole suite: plan units, skip finished ones on ``--resume``, execute, store rows
incrementally and write the leaderboard (also after Ctrl-C, with what finished).

Files in ``<out>/<suite>/``: ``runs.jsonl`` (rows), ``curves.jsonl`` (metric along the
trajectory, with ``--curve-every``), ``particles/*.npz`` (final particles, float32),
``environment.json``, ``leaderboard.md``/``.csv``. For each finished unit the parent writes
its particle files (atomically) and curve rows first and its rows last, so a recorded row
implies its side outputs exist; a unit cut short is simply run again by ``--resume``.

Nothing in the folder moves before the run can start: the scheduler is reached
(``--scheduler``), the folder's lock taken and the folder checked writable first; a failure
there is one ``error:`` line (:class:`~benchmarks.options.CannotRun`, exit status 2). A
write that fails mid-run (a full disk) stops the run with the same kind of line after the
finished rows are safe. ``--resume`` works per (configuration, metric) row: a
configuration with some metric rows missing has them scored again from its saved particles,
or its unit rerun when there are none; the message names them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from benchmarks import options
from benchmarks.diagnostics import write_diagnostics
from benchmarks.execution.environment import (
    ENVIRONMENT_FILE,
    continued_environment,
    environment,
    read_environment,
)
from benchmarks.execution.locking import folder_lock
from benchmarks.execution.parallel import BackendUnavailable, completed_units, connect, with_threads
from benchmarks.execution.provenance import record_run
from benchmarks.execution.runner import RunSpec, UnitOutput, expected_metrics, plan, rescore
from benchmarks.execution.shared_runs import SHARED_FIELD, run_inits
from benchmarks.execution.store import (
    CURVES_FILE,
    ROWS_FILE,
    TEMP_MARK,
    append_rows,
    atomic_path,
    atomic_write_text,
    load_rows,
    remove_stale_temporaries,
    repair,
    set_aside,
    write_rows,
)
from benchmarks.options import CannotRun
from benchmarks.suites import Suite
from benchmarks.verdict.leaderboard import SUITE_FILE, coverage_section, write_leaderboard
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
    rerun: Sequence[str] = (),
) -> Path:
    """Execute ``suite`` and return the path of its leaderboard markdown file.

    ``samplers``: the samplers to run beside the ``exact`` row (None: the suite's, else
    every registered one; ``[]``: the exact row alone). ``jobs``: local worker processes
    (joblib/loky); ``scheduler``: address of a Dask
    scheduler (takes precedence); ``imports``: plug-in modules imported in every process;
    ``threads``: torch threads per worker (default 1 in workers); ``timeout``: wall-time
    limit of fit + sampling per run (status ``timeout``); ``curve_every``: record the first
    metric every K steps (``curves.jsonl``); ``retry_failed``: like ``resume``, but runs
    whose status is failed or timeout run again (their old rows are set aside); ``rerun``:
    like ``resume``, but every recorded run of these samplers runs again (their old rows are
    set aside: a refresh of the methods whose code changed, the others' rows kept);
    ``executor``: a custom serial unit function returning rows (tests). One run at a time
    per folder: a second one exits with :class:`FolderLocked` naming the holder."""
    names = list(samplers) if samplers is not None else list(suite.samplers or available_samplers())
    out_dir = out_root / suite.name
    rows_path = out_dir / ROWS_FILE
    # provenance first: nothing in the folder has moved yet, so the commit's +dirty mark
    # says only whether tracked files differ from HEAD
    env = environment(device)
    with contextlib.ExitStack() as stack:
        client = None
        if scheduler is not None and executor is None:
            try:
                client = stack.enter_context(connect(scheduler, imports, threads))
            except BackendUnavailable as exc:
                raise CannotRun(str(exc)) from None
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(folder_lock(out_dir, command))
            check_writable(out_dir)
        except OSError as exc:
            raise CannotRun(f"cannot write to {out_dir}: {_os_reason(exc)}") from None
        for tmp in remove_stale_temporaries(out_dir):
            log(f"removed {tmp.relative_to(out_dir)}, left by a run that was killed")
        return _run_locked(
            suite, names, out_dir, rows_path, env,
            device=device, resume=resume, retry_failed=retry_failed, rerun=tuple(rerun),
            progress=progress,
            command=command, executor=executor, jobs=jobs, client=client,
            imports=imports, threads=threads, timeout=timeout, curve_every=curve_every,
            save_particles=save_particles,
        )  # fmt: skip
    raise AssertionError("unreachable")  # pragma: no cover (ExitStack swallows nothing)


#: bytes written (and removed) to check a folder before a run: a full disk fails here
PROBE_BYTES = 4096


def check_writable(folder: Path) -> None:
    """Write, fsync and remove a small file in ``folder``: raises OSError where the run
    could not write (read-only file system, permissions, a full disk)."""
    probe = folder / f".write-probe{TEMP_MARK}{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * PROBE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _os_reason(exc: OSError) -> str:
    """'No space left on device (errno 28)': the OS's words, without the traceback."""
    if exc.strerror:
        return f"{exc.strerror} (errno {exc.errno})" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


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
    rerun: tuple[str, ...] = (),
    progress: bool,
    command: str,
    executor: Callable[[RunSpec], list[dict]] | None,
    jobs: int,
    client: Any,
    imports: Sequence[str],
    threads: int | None,
    timeout: float | None,
    curve_every: int,
    save_particles: bool,
) -> Path:
    t0 = time.perf_counter()  # the command's wall time: rescoring from particles included
    done: set[tuple[str, str]] = set()
    rows: list[dict] = []
    n_read, repaired = 0, False
    try:
        if resume or retry_failed or rerun:
            report, msg = repair(rows_path)
            if msg:
                log(f"warning: {msg}")
            rows = report.rows
            n_read, repaired = len(rows), bool(msg)
            if retry_failed:
                rows = _set_failed_aside(rows_path, rows)
            if rerun:
                rows = _set_sampler_rows_aside(rows_path, rows, rerun)
            done = {(r["config_key"], r["metric"]) for r in rows}
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
        if resume or retry_failed or rerun:
            rows = _set_superseded_aside(rows_path, rows, specs)
            done = {(r["config_key"], r["metric"]) for r in rows}
        resumed = resume_plan(specs, rows, out_dir)
        todo = list(resumed.todo)
        if resume or retry_failed or rerun:
            for line in resumed.messages(len(specs)):
                log(line)
            board = out_dir / "leaderboard.md"
            if not (todo or resumed.rescores or repaired or len(rows) != n_read) and board.exists():
                # idempotent: a continuation with nothing to do leaves the folder as it was,
                # but for a leaderboard whose tuning section tuned.json no longer gives
                if tuning_section_current(out_dir, board):
                    log("resume: nothing to run, score or set aside; the folder is left as it was")
                    return board
                log("resume: nothing to run; tuned.json changed since the leaderboard was "
                    "written (tune --continue): leaderboard rewritten")  # fmt: skip
                return write_leaderboard(
                    in_plan_order(rows, specs), out_dir, suite.name, None,
                    read_environment(out_dir), suite.headline_metric,
                )  # fmt: skip
        if resume or retry_failed or rerun:  # the kept rows' environment stays on record
            env = continued_environment(read_environment(out_dir), env)
        atomic_write_text(out_dir / ENVIRONMENT_FILE, json.dumps(env, indent=2))
        text = json.dumps(asdict(suite), indent=2, default=str) + "\n"
        atomic_write_text(out_dir / SUITE_FILE, text)
        for spec, row, missing in resumed.rescores:
            try:
                new = with_threads(
                    rescore, spec, row, _particles(out_dir, row), missing, threads=threads,
                    imports=imports,
                )  # fmt: skip
            except OSError:
                raise  # a full disk: the one-line error below
            except Exception as exc:  # damaged particle file, data that cannot be rebuilt
                log(f"resume: {unit_label(spec)}: {type(exc).__name__}: {exc}; unit rerun")
                todo.append(spec)
                continue
            append_rows(rows_path, new)
            done |= {(r["config_key"], r["metric"]) for r in new}
    except OSError as exc:
        raise CannotRun(f"writing to {out_dir} failed: {_os_reason(exc)}") from None
    bar = tqdm(total=len(todo), desc=f"suite {suite.name}", unit="run", disable=not show(progress))
    if executor is not None:
        units = ((spec, UnitOutput(executor(spec))) for spec in todo)
    else:
        units = completed_units(todo, jobs=jobs, client=client, imports=imports, threads=threads)
    serial = client is None and (jobs <= 1 or executor is not None)
    finished = 0
    write_error: OSError | None = None
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
            try:
                save_unit(out_dir, output, done)
            except OSError as exc:  # a full disk: the rows file holds whole rows only
                write_error = exc
                break
            finished += 1
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
        path = out_dir / "leaderboard.md"
        seconds = time.perf_counter() - t0
        try:
            continued = resume or retry_failed or bool(rerun)
            if command and continued:  # keeps the original command, adds this continuation
                record_run(out_dir, command, seconds, finished, refresh=bool(rerun), continued=True)
                board_command = None  # the leaderboard names the recorded first command
            else:
                board_command = command
            path = write_leaderboard(
                rows, out_dir, suite.name, board_command, env, suite.headline_metric
            )
            try:
                write_diagnostics(out_dir, rows)
            except OSError:
                raise
            except Exception as exc:  # diagnostics must not lose the leaderboard
                log(f"warning: diagnostics failed: {type(exc).__name__}: {exc}")
            if command and not continued:
                record_run(out_dir, command, seconds, finished)
            log(f"{len(rows)} rows in {rows_path}; leaderboard {path} ({seconds:.1f} s)")
        except OSError as exc:  # a full disk: say so in one line, not a traceback
            write_error = write_error or exc
    if write_error is not None:
        raise CannotRun(
            f"writing to {out_dir} failed: {_os_reason(write_error)}; {finished} of {len(todo)} "
            "units saved (whole rows only); free space and rerun with --resume"
        )
    return path


@dataclass
class ResumePlan:
    """What a resumed run does: ``todo`` units to run (in plan order), ``rescores``
    (spec, an ok row of the configuration, missing metrics) to score again from saved
    particles, and ``partial``: one line per configuration with missing metric rows."""

    todo: list[RunSpec]
    rescores: list[tuple[RunSpec, dict, list[str]]]
    partial: list[str]

    def messages(self, n_units: int) -> list[str]:
        lines = [f"resume: {n_units - len(self.todo)} of {n_units} units already recorded"]
        if self.todo:
            names = ", ".join(unit_label(s) for s in self.todo[:5])
            more = f" and {len(self.todo) - 5} more" if len(self.todo) > 5 else ""
            lines[0] += f"; {len(self.todo)} to run: {names}{more}"
        lines += [f"resume: {p}" for p in self.partial]
        return lines


def resume_plan(specs: Sequence[RunSpec], rows: list[dict], out_dir: Path) -> ResumePlan:
    """Per (configuration, metric) row: a unit runs when one of its configurations has no
    row; a configuration that lacks some metric rows (a rows file cut by a full disk or a
    crash) has them scored from its saved particles, or its unit rerun when none are saved
    (only the missing rows are then written)."""
    by_key: dict[str, list[dict]] = {}
    for r in rows:
        by_key.setdefault(r["config_key"], []).append(r)
    plan_ = ResumePlan([], [], [])
    for spec in specs:
        partial = []
        for init in spec.inits:
            have = by_key.get(spec.config_key(init), [])
            recorded = {r["metric"] for r in have}
            missing = [m for m in expected_metrics(have, spec) if m not in recorded]
            if have and missing:
                partial.append((init, have, missing))
        if not all(by_key.get(spec.config_key(i)) for i in spec.inits):
            plan_.todo.append(spec)
            for init, _, missing in partial:
                plan_.partial.append(f"{unit_label(spec)} {init}: missing {missing}: unit rerun")
            continue
        rerun = False
        for init, have, missing in partial:
            saved = next((r for r in have if _particles_path(out_dir, r) is not None), None)
            if saved is not None:
                plan_.rescores.append((spec, saved, missing))
                how = f"scored again from {saved['particles_file']}"
            else:
                rerun = True
                how = "unit rerun (no saved particles)"
            plan_.partial.append(f"{unit_label(spec)} {init}: missing {missing}: {how}")
        if rerun:
            plan_.rescores = [x for x in plan_.rescores if x[0] is not spec]
            plan_.todo.append(spec)
    return plan_


def _particles_path(out_dir: Path, row: dict) -> Path | None:
    rel = row.get("particles_file")
    if not isinstance(rel, str) or not rel:
        return None
    path = out_dir / rel
    return path if path.is_file() else None


def _particles(out_dir: Path, row: dict) -> np.ndarray:
    path = _particles_path(out_dir, row)
    assert path is not None
    with np.load(path) as z:
        return z["particles"]


def _set_aside(
    rows_path: Path, rows: list[dict], again: set[str], label: str
) -> tuple[list[dict], Path]:
    """Move the rows of the configurations ``again`` to ``runs.<label>-<time>.jsonl`` and
    their particle files to ``particles.<label>-<time>/`` (both git-ignored), rewrite the rows
    file without them; (rows kept, the set-aside file). A rerun whose settings changed
    writes its particles under another name, so none of the old files is left behind
    unreferenced. A file a kept row still names stays: a sampler that ignores x0 runs once
    for all inits and its rows share one file, and a tuned setting may change for one init
    only."""
    kept = [r for r in rows if r["config_key"] not in again]
    stamp = f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    aside = rows_path.with_name(f"runs.{stamp}.jsonl")
    moved = [r for r in rows if r["config_key"] in again]
    write_rows(aside, moved)
    write_rows(rows_path, kept)
    folder = rows_path.parent
    still_named = {r.get("particles_file") for r in kept}
    for name in sorted({r["particles_file"] for r in moved if r.get("particles_file")}):
        if name in still_named:
            continue
        source = folder / name
        if source.is_file():
            target = folder / f"particles.{stamp}" / Path(name).name
            target.parent.mkdir(exist_ok=True)
            source.replace(target)
    return kept, aside


def _set_sampler_rows_aside(
    rows_path: Path, rows: list[dict], samplers: Sequence[str]
) -> list[dict]:
    """``--rerun``: set every row of ``samplers`` aside (``runs.rerun-<time>.jsonl``) and
    return the rows kept."""
    chosen = set(samplers)
    again = {r["config_key"] for r in rows if r.get("sampler") in chosen}
    if not again:
        return rows
    kept, aside = _set_aside(rows_path, rows, again, "rerun")
    log(f"rerun: {len(again)} runs of {', '.join(sorted(chosen))} again (old rows in {aside.name})")
    return kept


def superseded_configs(rows: list[dict], specs: Sequence[RunSpec]) -> set[str]:
    """The configurations of ``rows`` that the plan ``specs`` now runs differently: same
    (sampler, target, repetition, init), another configuration key (a tuned setting that
    changed, a suite option that changed), or rows copied from another init's run
    (``x0_shared_from``, a sampler that ignores x0) that the plan no longer runs together
    with theirs (a setting changed for that other init only): kept, they would name a run
    of another setting as theirs. A fresh run of the plan makes the same rows."""
    planned: dict[tuple, tuple[str, str | None]] = {}
    for spec in specs:
        ran = run_inits(spec.sampler, spec.inits)
        for init in spec.inits:
            shared = None if init in ran else ran[0]
            planned[(spec.sampler, spec.target, spec.rep, init)] = (spec.config_key(init), shared)
    out = set()
    for r in rows:
        plan_of = planned.get((r.get("sampler"), r.get("target"), r.get("rep"), r.get("init")))
        if plan_of is None:
            continue
        key, shared = plan_of
        copied_from = r.get(SHARED_FIELD)
        if r["config_key"] != key or (copied_from is not None and copied_from != shared):
            out.add(r["config_key"])
    return out


def tuning_section_current(out_dir: Path, board: Path) -> bool:
    """True when ``board`` (a leaderboard.md) holds the tuning-coverage section that the
    folder's tuned settings give now (:func:`~benchmarks.verdict.leaderboard.coverage_section`;
    a folder without one has nothing to hold)."""
    section = "\n".join(coverage_section(out_dir))
    return not section or section in board.read_text(encoding="utf-8")


def _set_superseded_aside(
    rows_path: Path, rows: list[dict], specs: Sequence[RunSpec]
) -> list[dict]:
    """``--resume`` (and ``--retry-failed``, ``--rerun``): set the rows of superseded
    configurations (:func:`superseded_configs`) aside (``runs.superseded-<time>.jsonl``) and
    return the rows kept; their units run again with the plan's configuration."""
    again = superseded_configs(rows, specs)
    if not again:
        return rows
    kept, aside = _set_aside(rows_path, rows, again, "superseded")
    log(
        f"resume: {len(again)} recorded runs are made differently now (settings changed); "
        f"they run again (old rows in {aside.name})"
    )
    return kept


def _set_failed_aside(rows_path: Path, rows: list[dict]) -> list[dict]:
    """``--retry-failed``: set the rows of failed and timed-out configurations aside
    (``runs.retried-<time>.jsonl``) and return the rows kept."""
    again = {r["config_key"] for r in rows if r.get("status") in RETRY_STATUSES}
    if not again:
        return rows
    kept, aside = _set_aside(rows_path, rows, again, "retried")
    log(f"retry: {len(again)} failed or timed-out runs again (old rows in {aside.name})")
    return kept


def unit_label(spec: RunSpec) -> str:
    """Short name of one unit for the progress bar: target/sampler/seed."""
    return f"{spec.target}/{spec.sampler}/seed{spec.rep}"


def save_unit(out_dir: Path, output: UnitOutput, done: set[tuple[str, str]] = frozenset()) -> None:
    """Write one unit's particle files, then its curve rows, then its rows (fsync'ed):
    rows are the commit record, so a recorded row implies its side outputs exist. Rows
    whose (configuration, metric) is in ``done`` are not written again."""
    for rel, arrays in output.arrays.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    if output.curves:
        append_rows(out_dir / CURVES_FILE, output.curves)
    new = [r for r in output.rows if (r["config_key"], r["metric"]) not in done]
    append_rows(out_dir / ROWS_FILE, new)


def in_plan_order(rows: list[dict], specs: Sequence[RunSpec]) -> list[dict]:
    """Rows sorted by the planned order of their configuration (parallel backends write
    them in completion order); rows of other configurations keep their order at the end."""
    rank: dict[str, int] = {}
    for spec in specs:
        for init in spec.inits:
            rank.setdefault(spec.config_key(init), len(rank))
    return sorted(rows, key=lambda r: rank.get(r.get("config_key", ""), len(rank)))
