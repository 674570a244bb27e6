"""Provenance of a suite folder: the command that produced its rows and how long it took.

``run.json`` in ``<out>/<suite>/`` records the ``run`` command line, its measured wall time
and when it finished. ``leaderboard`` and ``report`` rebuild tables from the rows but keep
this original command in the "Produced by" line, and
``python -m benchmarks.presentation.readme`` copies the measured wall time next to each
suite's command (never typed by hand).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
_PRODUCED = re.compile(r"^Produced by: `(.+?)`(?: at commit [^\n]*)?\s*$", re.M)


CODE_PATH_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "OPENBLAS_CORETYPE",
    "NPY_DISABLE_CPU_FEATURES",
)
"""Environment variables that choose a CPU code path (instruction set) of torch, MKL,
OpenBLAS or numpy. Set, they make the numerics round as on another CPU, so every command
line a result file names carries those that are set."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The environment variables a study's command line names when they are set."""


def _set(names: tuple[str, ...]) -> list[str]:
    return [f"{k}={shlex.quote(os.environ[k])}" for k in names if os.environ.get(k)]


def command_line(argv: list[str] | None = None) -> str:
    """The ``python -m benchmarks ...`` command of this process (``argv`` default
    ``sys.argv[1:]``), shell-quoted, after the code-path variables that are set
    (:data:`CODE_PATH_VARIABLES`): what a result file names as its producer."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(
        [*_set(CODE_PATH_VARIABLES), "python -m benchmarks", *(shlex.quote(a) for a in args)]
    )


def study_command(module: str, argv: list[str] | None = None) -> str:
    """``VAR=value ... python -m module args``: a study's command line as run, with the thread
    variables of :data:`THREAD_VARIABLES` and the code-path variables that are set
    (``argv`` default ``sys.argv[1:]``)."""
    env = _set(THREAD_VARIABLES + CODE_PATH_VARIABLES)
    args = sys.argv[1:] if argv is None else argv
    return " ".join([*env, "python", "-m", module, *(shlex.quote(a) for a in args)])


def produced_by(command: str, commit: str | None = None) -> str:
    """The first line a result file gives its origin: "Produced by: `command` at commit C",
    C = ``commit`` or HEAD's (``+dirty`` when code outside ``results/`` differs from it)."""
    from benchmarks.execution.environment import git_commit

    return f"Produced by: `{command}` at commit {commit or git_commit()}"


def record_run(
    out_dir: Path,
    command: str,
    wall_seconds: float,
    n_units: int,
    *,
    refresh: bool = False,
    continued: bool = False,
) -> Path:
    """Write ``run.json``: the command, its wall time (seconds), the units it executed and
    the finishing time (UTC). A ``continued`` run (``--resume``, ``--retry-failed``) adds its
    time and units to the recorded ones, keeps the recorded command and appends itself to
    ``refreshed``; a ``refresh`` (``run --rerun SAMPLERS``) keeps the recorded command and
    wall time (the run that made the other rows) and appends itself to ``refreshed``
    (command, wall time, units, finishing time)."""
    path = Path(out_dir) / RUN_FILE
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    this = {
        "command": command,
        "wall_seconds": round(wall_seconds, 1),
        "units": n_units,
        "finished_utc": now,
    }
    previous = read_run(out_dir) if refresh or continued else {}
    if refresh and previous.get("command"):
        record = dict(previous)  # the first run's time stays its own
    else:
        previous = previous if continued else {}
        record = {
            **this,
            "command": previous.get("command") or command,
            "wall_seconds": round(wall_seconds + float(previous.get("wall_seconds", 0.0)), 1),
            "units": n_units + int(previous.get("units", 0)),
        }
    if previous.get("command"):  # a continuation is named beside the first command
        record["refreshed"] = [*previous.get("refreshed", []), this]
    from benchmarks.execution.store import atomic_write_text

    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def read_run(out_dir: Path) -> dict[str, Any]:
    """The ``run.json`` record of a suite folder ({} when absent or unreadable)."""
    path = Path(out_dir) / RUN_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def refresh_commands(out_dir: Path) -> list[tuple[str, int]]:
    """The continuations (``--rerun``, ``--resume``, ``--retry-failed``) recorded in
    ``run.json``, oldest first, as (command, times): a command repeated back to back is
    named once with how many times it ran."""
    commands = [str(r.get("command")) for r in read_run(out_dir).get("refreshed", []) if r]
    return [(command, len(list(run))) for command, run in itertools.groupby(commands)]


def original_command(out_dir: Path) -> str | None:
    """The command that produced the rows of ``out_dir``: ``run.json``'s, else the
    "Produced by" line of an existing ``leaderboard.md``; None when neither says."""
    command = read_run(out_dir).get("command")
    if command:
        return str(command)
    board = Path(out_dir) / "leaderboard.md"
    if board.exists():
        m = _PRODUCED.search(board.read_text(encoding="utf-8"))
        if m:
            return m.group(1)
    return None
