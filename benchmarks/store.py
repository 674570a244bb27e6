"""Incremental long-format row store (JSON lines): a crash keeps every finished row.

Each row is written and fsync'ed as soon as its run ends. Reading detects a truncated last
line (a write cut by a crash) or corrupted lines; :func:`repair` quarantines the original
file and keeps the valid rows, with a message, so nothing is merged silently.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROWS_FILE = "runs.jsonl"
#: metric along the trajectory (``--curve-every``): one row per (run, recorded step)
CURVES_FILE = "curves.jsonl"


@dataclass
class LoadReport:
    rows: list[dict[str, Any]]
    bad_lines: list[int] = field(default_factory=list)
    truncated_tail: bool = False

    @property
    def clean(self) -> bool:
        return not self.bad_lines and not self.truncated_tail


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows as JSON lines and fsync, so they survive a crash or Ctrl-C."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def load_rows(path: Path) -> LoadReport:
    """Read every valid row; record bad line numbers and a truncated (newline-less) tail."""
    if not path.exists():
        return LoadReport(rows=[])
    raw = path.read_text(encoding="utf-8")
    lines = raw.split("\n")
    truncated = bool(raw) and not raw.endswith("\n")
    report = LoadReport(rows=[], truncated_tail=False)
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("row is not an object")
            report.rows.append(row)
        except ValueError:
            if truncated and i == len(lines):
                report.truncated_tail = True
            else:
                report.bad_lines.append(i)
    return report


def repair(path: Path) -> tuple[LoadReport, str]:
    """Load ``path``; if damaged, move it aside as ``<name>.corrupt-<time>`` and rewrite the
    valid rows. Returns the report and a human message ('' when the file was clean)."""
    report = load_rows(path)
    if report.clean:
        return report, ""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    quarantine = path.with_name(f"{path.name}.corrupt-{stamp}")
    shutil.copy2(path, quarantine)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in report.rows),
        encoding="utf-8",
    )
    os.replace(tmp, path)
    what = []
    if report.truncated_tail:
        what.append("a truncated last line (interrupted write)")
    if report.bad_lines:
        what.append(f"unreadable lines {report.bad_lines[:10]}")
    msg = (
        f"{path}: found {' and '.join(what)}; kept {len(report.rows)} valid rows, "
        f"original saved as {quarantine.name}"
    )
    return report, msg


def load_curves(path: Path) -> list[dict[str, Any]]:
    """Curve rows (``curves.jsonl``) with duplicates removed: a unit that was cut short and
    re-run by ``--resume`` may have written its curve rows twice; the last copy of each
    (configuration, metric, step) is kept. Damaged lines are ignored (the file is a side
    output; the rows file is the record)."""
    keyed: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in load_rows(path).rows:
        keyed[(row.get("config_key", ""), row.get("metric", ""), row.get("step", -1))] = row
    return list(keyed.values())
