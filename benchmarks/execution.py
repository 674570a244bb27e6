"""Run a whole suite: plan units, skip finished ones on ``--resume``, execute, store rows
incrementally and write the leaderboard (also after Ctrl-C, with what finished)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks.environment import environment
from benchmarks.leaderboard import write_leaderboard
from benchmarks.runner import RunSpec, execute, plan
from benchmarks.store import ROWS_FILE, append_rows, load_rows, repair
from benchmarks.suites import Suite
from samplers.base import available_samplers


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
    executor: Callable[[RunSpec], list[dict]] = execute,
) -> Path:
    """Execute ``suite`` and return the path of its leaderboard markdown file."""
    names = samplers or list(suite.samplers or available_samplers())
    out_dir = out_root / suite.name
    rows_path = out_dir / ROWS_FILE
    out_dir.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    if resume:
        report, msg = repair(rows_path)
        if msg:
            log(f"warning: {msg}")
        done = {r["config_key"] for r in report.rows if "config_key" in r}
    elif rows_path.exists():
        previous = rows_path.with_name("runs.previous.jsonl")
        rows_path.replace(previous)
        log(f"previous rows moved to {previous}")
    specs = plan(suite, names, device)
    todo = [s for s in specs if not all(s.config_key(i) in done for i in s.inits)]
    if resume:
        log(f"resume: {len(specs) - len(todo)} of {len(specs)} units already recorded")
    env = environment(device)
    (out_dir / "environment.json").write_text(json.dumps(env, indent=2), encoding="utf-8")
    t0 = time.perf_counter()
    bar = tqdm(todo, desc=f"suite {suite.name}", unit="run", disable=not progress)
    try:
        for spec in bar:
            bar.set_postfix_str(f"{spec.target}/{spec.sampler}/seed{spec.rep}")
            rows = [r for r in executor(spec) if r["config_key"] not in done]
            append_rows(rows_path, rows)
    except KeyboardInterrupt:
        log("interrupted: finished rows are saved; rerun with --resume to continue")
        raise
    finally:
        bar.close()
        rows = load_rows(rows_path).rows
        path = write_leaderboard(rows, out_dir, suite.name, command, env)
        log(
            f"{len(rows)} rows in {rows_path}; leaderboard {path} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    return path
