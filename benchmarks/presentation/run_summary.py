"""What ``python -m benchmarks run`` says before and after a run: the worker count and an
estimate from the suite's committed ``run.json``; at the end, where the files are, the top
of the headline table, the run counts per status (stdout) and every data set skipped for
missing data with its fix (stderr).

Works from the rows' ``status`` and ``message`` fields only: nothing here names a target,
sampler or metric. Imports neither torch nor pandas.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.execution.provenance import read_run

#: how the runner words the message of a unit skipped because its data are not on disk
#: (``benchmarks.execution.runner.execute_unit``: ``data missing: DataMissingError: <what to do>``)
MISSING_DATA_PREFIX = "data missing:"
#: rows of the headline table shown at the end of a run
TOP_ROWS = 6


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where the
    platform has no affinity call)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_jobs(n_units: int) -> int:
    """Worker processes when ``--jobs`` is not given: one per usable core (every run is
    pinned to one torch/BLAS thread), never more than there are units."""
    return max(1, min(usable_cores(), n_units))


def _jobs_of(command: str) -> int:
    """The ``--jobs N`` of a recorded command (1 when absent: runs were serial by default
    before commands recorded their worker count)."""
    m = re.search(r"--jobs[= ](\d+)", command)
    return int(m.group(1)) if m else 1


def estimate(reference_dir: Path, n_units: int, jobs: int) -> str | None:
    """'about M min ...': the wall time of ``n_units`` units on ``jobs`` workers, scaled
    from a recorded run of the same suite (``run.json`` in ``reference_dir``: its seconds x
    its workers / its units = core-seconds per unit); None without such a record."""
    rec = read_run(reference_dir)
    try:
        seconds, units = float(rec["wall_seconds"]), int(rec["units"])
        command = str(rec["command"])
    except (KeyError, TypeError, ValueError):
        return None
    if units < 1 or seconds <= 0:
        return None
    past_jobs = _jobs_of(command)
    per_unit = seconds * past_jobs / units
    workers = max(1, min(jobs, n_units))
    seconds_now = per_unit * n_units / workers
    when = f"{seconds_now / 60:.0f} min" if seconds_now >= 90 else f"{seconds_now:.0f} s"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"estimate: about {when} for {n_units} units on {workers} worker(s), "
        f"scaled from {reference_dir / 'run.json'} ({seconds:.0f} s for {units} units with "
        f"--jobs {past_jobs}); longer if the {usable_cores()} core(s) are busy "
        f"(load average now {load:.1f}) or the units are heavier than that run's average"
    )


def _runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run: the rows of the first metric recorded (each run scores every
    metric; a run skipped or failed before scoring has one row per metric too)."""
    first = next((r.get("metric") for r in rows), None)
    return [r for r in rows if r.get("metric") == first]


def status_counts(rows: list[dict[str, Any]]) -> Counter:
    """Runs per status (``ok``, ``failed``, ``skipped``, ...)."""
    return Counter(str(r.get("status", "?")) for r in _runs(rows))


def missing_data(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, str]]:
    """target -> (runs skipped for missing data, runs, the message saying what to do), for
    every target with at least one such run."""
    runs = _runs(rows)
    totals = Counter(str(r.get("target")) for r in runs)
    out: dict[str, tuple[int, int, str]] = {}
    for r in runs:
        message = str(r.get("message") or "")
        if r.get("status") == "skipped" and message.startswith(MISSING_DATA_PREFIX):
            target = str(r.get("target"))
            n, total, first = out.get(target, (0, totals[target], message))
            out[target] = (n + 1, total, first)
    return out


def fully_missing(rows: list[dict[str, Any]], targets: list[str]) -> list[str]:
    """The ``targets`` every run of which was skipped for missing data."""
    missing = missing_data(rows)
    return [t for t in targets if t in missing and missing[t][0] == missing[t][1]]


def missing_data_report(rows: list[dict[str, Any]]) -> list[str]:
    """Lines for stderr: each target skipped for missing data, how many of its runs, and
    the fix (files, package, ``--data-root``) from the runner's message; [] when none."""
    missing = missing_data(rows)
    if not missing:
        return []
    lines = [f"missing data: {len(missing)} data set(s) not on disk, their runs were skipped:"]
    for target, (n, total, message) in sorted(missing.items()):
        fix = message[len(MISSING_DATA_PREFIX) :].strip()
        fix = re.sub(r"^\w+Error:\s*", "", fix)
        lines.append(f"  {target}: {n} of {total} runs skipped. {fix}")
    return lines


def headline_top(leaderboard_md: str, n: int = TOP_ROWS) -> list[str]:
    """The header and first ``n`` rows of the first table of a leaderboard, reduced to the
    row label and the table's last three columns (its per-target columns are in the file)."""
    table = []
    for line in leaderboard_md.splitlines():
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    if len(table) < 3:
        return []
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in table]
    keep = [0] + list(range(max(1, len(cells[0]) - 3), len(cells[0])))
    shown = [cells[0]] + cells[2 : 2 + n]
    widths = [max(len(row[k]) for row in shown) for k in keep]
    lines = [
        ("  " + "  ".join(row[k].ljust(w) for k, w in zip(keep, widths, strict=True))).rstrip()
        for row in shown
    ]
    more = len(cells) - 2 - n
    return lines + ([f"  ... {more} more row(s)"] if more > 0 else [])


def end_summary(board: Path, rows: list[dict[str, Any]], out_root: Path) -> list[str]:
    """Lines for stdout at the end of a run: files, the top of the headline table, counts."""
    counts = status_counts(rows)
    text = board.read_text(encoding="utf-8") if board.exists() else ""
    folder = board.parent
    lines = [
        f"runs: {sum(counts.values())} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + ")",
        f"leaderboard: {board} (also .csv); rows: {folder / 'runs.jsonl'}",
        f"figures and HTML: python -m benchmarks report --out {out_root}",
    ]
    top = headline_top(text)
    if top:
        lines += ["top of the headline table (every column in the leaderboard file):", *top]
    return lines
