"""Incremental long-format row store (JSON lines): a crash keeps every finished row.

Each row is written and fsync'ed as soon as its run ends. Reading checks every line and
never lets a doubtful row reach a table: a truncated last line (a write cut by a crash),
undecodable bytes, a line that is not a JSON object, a row missing a required field, a row
whose fields have the wrong type (:func:`row_type_problem`: e.g. a value that is a string, or
no value on a run marked ok and converged), and a second copy of a (configuration, metric)
key are set aside with a message. Identical
copies (same values; wall times may differ) keep the first; conflicting copies keep none
of the later ones and say so. :func:`repair` moves the original file aside
(``<name>.corrupt-<time>``) and rewrites the valid rows, so nothing is merged silently.
Every other file the harness writes goes through :func:`atomic_write_text` /
:func:`atomic_path`: a reader sees the old file or the new one, never half of one; a process
killed mid-write leaves its temporary file behind, which :func:`remove_stale_temporaries`
(called by the next run, under the folder's lock) deletes. :func:`append_rows` cut by a
full disk truncates the file back to where it started, so no half line is left.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
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


#: fields that must be strings when present (the row's identity and status)
STRING_FIELDS = ("suite", "target", "sampler", "config_key", "metric", "status", "init")
#: fields that must be integers when present (not booleans, not strings, not floats)
INT_FIELDS = ("rep", "seed", "n_particles", "n_steps", "n_reference")
#: fields that must be numbers or null when present
NUMBER_FIELDS = ("fit_seconds", "sample_seconds")


def file_slug(text: str) -> str:
    """``text`` as a file-name part: every run of characters other than letters, digits,
    ``_``, ``.`` and ``-`` becomes ``_`` (ends stripped; ``x`` for nothing left)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def row_type_problem(row: dict[str, Any]) -> str:
    """Why ``row`` cannot be a result row ('' when its fields have the right types):
    identity fields are strings, counts integers, wall times numbers or null, ``converged``
    a boolean, and ``value`` a number, finite on an ok and converged run (NaN where nothing
    was computed), or null only on a run whose status is not ok (the writer records NaN,
    never null, so a null on an ok run is damage)."""
    for k in STRING_FIELDS:
        if k in row and not isinstance(row[k], str):
            return f"{k} {row[k]!r} is not a string"
    for k in INT_FIELDS:
        if row.get(k) is not None and not (isinstance(row[k], int) and _is_number(row[k])):
            return f"{k} {row[k]!r} is not an integer"
    for k in NUMBER_FIELDS:
        if row.get(k) is not None and not _is_number(row[k]):
            return f"{k} {row[k]!r} is not a number"
    if "converged" in row and not isinstance(row["converged"], bool):
        return f"converged {row['converged']!r} is not true or false"
    if "value" not in row:
        return ""
    value = row["value"]
    if value is None:
        if row.get("status") == "ok":  # the writer records NaN, never null, for no value
            return "value null on a run marked ok"
        return ""
    if not _is_number(value):
        return f"value {value!r} is not a number"
    if not math.isfinite(value) and row.get("status") == "ok" and row.get("converged") is True:
        return f"value {value} on a run marked ok and converged"
    return ""


@dataclass
class LoadReport:
    """Valid rows and what was set aside: line numbers of unreadable lines, rows missing
    required fields, rows with wrongly typed fields (line -> reason), duplicate keys
    (identical or conflicting copies)."""

    rows: list[dict[str, Any]]
    bad_lines: list[int] = field(default_factory=list)
    truncated_tail: bool = False
    missing_fields: list[int] = field(default_factory=list)
    bad_types: dict[int, str] = field(default_factory=dict)
    duplicates: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.bad_lines
            or self.truncated_tail
            or self.missing_fields
            or self.bad_types
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
        if self.bad_types:
            shown = "; ".join(f"line {i}: {why}" for i, why in list(self.bad_types.items())[:5])
            what.append(f"rows with wrongly typed fields ({shown})")
        if self.duplicates:
            what.append(f"identical duplicate rows at lines {self.duplicates[:10]}")
        if self.conflicts:
            what.append(f"conflicting duplicate rows at lines {self.conflicts[:10]}")
        return what


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows as JSON lines and fsync, so they survive a crash or Ctrl-C. All or
    nothing: when the write fails (a full disk), the file is cut back to its old length,
    so it never ends in half a row, and the error is raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows).encode()
    if not data:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # truncating frees space: it works on a full disk
                os.ftruncate(fd, start)
                os.fsync(fd)
            raise
    finally:
        os.close(fd)


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
        if required and (why := row_type_problem(row)):
            report.bad_types[i] = why
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
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


#: name pattern of :func:`atomic_path`'s temporary files: ``.<name>.tmp-<pid><suffix>``
TEMP_MARK = ".tmp-"


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` that a killed process left in
    ``folder`` and its sub-folders (call with the folder's lock held, so no live writer
    owns them); returns the removed paths."""
    removed = []
    for tmp in Path(folder).rglob(f".*{TEMP_MARK}*"):
        if tmp.is_file():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


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
