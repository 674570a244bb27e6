"""Incremental long-format row store (JSON lines): a crash keeps every finished row.

Each row is written and fsync'ed as soon as its run ends. Reading checks every line and
never lets a doubtful row reach a table: a truncated last line (a write cut by a crash),
undecodable bytes, a line that is not a JSON object, a row missing a required field, and a
second copy of a (configuration, metric) key are set aside with a message. Identical
copies (same values; wall times may differ) keep the first; conflicting copies keep none
of the later ones and say so. :func:`repair` moves the original file aside
(``<name>.corrupt-<time>``) and rewrites the valid rows, so nothing is merged silently.
Every other file the harness writes goes through :func:`atomic_write_text` /
:func:`atomic_path`: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROWS_FILE = "runs.jsonl"
#: metric along the trajectory (``--curve-every``): one row per (run, recorded step)
CURVES_FILE = "curves.jsonl"
#: fields every result row must have to be counted
REQUIRED_FIELDS = ("suite", "target", "sampler", "config_key", "metric", "status", "value")
#: fields that may differ between two executions of one configuration (wall times, BLAS)
VOLATILE_FIELDS = ("fit_seconds", "sample_seconds", "blas", "commit", "sampler_info")


@dataclass
class LoadReport:
    """Valid rows and what was set aside: line numbers of unreadable lines, rows missing
    required fields, duplicate keys (identical or conflicting copies)."""

    rows: list[dict[str, Any]]
    bad_lines: list[int] = field(default_factory=list)
    truncated_tail: bool = False
    missing_fields: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.bad_lines
            or self.truncated_tail
            or self.missing_fields
            or self.duplicates
            or self.conflicts
        )

    def problems(self) -> list[str]:
        """Human descriptions of what was set aside (empty when clean)."""
        what = []
        if self.truncated_tail:
            what.append("a truncated last line (interrupted write)")
        if self.bad_lines:
            what.append(f"unreadable lines {self.bad_lines[:10]}")
        if self.missing_fields:
            what.append(f"rows missing required fields at lines {self.missing_fields[:10]}")
        if self.duplicates:
            what.append(f"identical duplicate rows at lines {self.duplicates[:10]}")
        if self.conflicts:
            what.append(f"conflicting duplicate rows at lines {self.conflicts[:10]}")
        return what


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows as JSON lines and fsync, so they survive a crash or Ctrl-C."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = (set(a) | set(b)) - set(VOLATILE_FIELDS)
    return all(json.dumps(a.get(k), default=str) == json.dumps(b.get(k), default=str) for k in keys)


def load_rows(path: Path, *, required: tuple[str, ...] = REQUIRED_FIELDS) -> LoadReport:
    """Read every valid row (see the module docstring for what is set aside). ``required``:
    fields a row must have (empty for side files such as curves)."""
    if not path.exists():
        return LoadReport(rows=[])
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    truncated = bool(raw) and not raw.endswith(b"\n")
    report = LoadReport(rows=[])
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError("row is not an object")
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            if truncated and i == len(lines):
                report.truncated_tail = True
            else:
                report.bad_lines.append(i)
            continue
        if any(k not in row for k in required):
            report.missing_fields.append(i)
            continue
        if required:
            key = (str(row["config_key"]), str(row["metric"]))
            if key in seen:
                (report.duplicates if _same_values(seen[key], row) else report.conflicts).append(i)
                continue
            seen[key] = row
        report.rows.append(row)
    return report


def repair(path: Path) -> tuple[LoadReport, str]:
    """Load ``path``; if anything was set aside, move the file to ``<name>.corrupt-<time>``
    and rewrite the valid rows. Returns the report and a message ('' when clean)."""
    report = load_rows(path)
    if report.clean:
        return report, ""
    quarantine = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.copy2(path, quarantine)
    write_rows(path, report.rows)
    msg = (
        f"{path}: found {' and '.join(report.problems())}; kept {len(report.rows)} valid rows, "
        f"original saved as {quarantine.name}"
    )
    return report, msg


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` by ``rows`` atomically (fsync'ed)."""
    atomic_write_text(
        path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
    )


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsync'ed and renamed over
    ``path``; on failure it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def set_aside(path: Path, label: str) -> Path | None:
    """Move ``path`` to ``<stem>.<label>-<time><suffix>`` (never overwriting an earlier
    one); returns the new path, or None when ``path`` does not exist."""
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        extra = f"-{n}" if n else ""
        target = path.with_name(f"{path.stem}.{label}-{stamp}{extra}{path.suffix}")
        if not target.exists():
            path.replace(target)
            return target
    raise FileExistsError(f"cannot set {path} aside: too many copies")


def load_curves(path: Path) -> list[dict[str, Any]]:
    """Curve rows (``curves.jsonl``) with duplicates removed: a unit that was cut short and
    re-run by ``--resume`` may have written its curve rows twice; the last copy of each
    (configuration, metric, step) is kept. Damaged lines are ignored (the file is a side
    output; the rows file is the record)."""
    keyed: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in load_rows(path, required=()).rows:
        keyed[(row.get("config_key", ""), row.get("metric", ""), row.get("step", -1))] = row
    return list(keyed.values())
