"""Redraw a suite's figures only when what they are drawn from changed.

A suite's figures are a pure function of its rows, curves, recorded files (``suite.json``,
``tuned.json``, ...), the particle files its rows name, the plotting libraries' versions and
this repository's code. :func:`inputs_digest` hashes all of these (the code as every file of
the repository's packages: more than the figures need, so a code change redraws rather than
risking a stale figure), and :func:`draw_suite_figures` skips the drawing
when ``figures/.drawn.json`` (git-ignored) names the same digest and every file it lists
exists. A second ``python -m benchmarks report`` on unchanged results then takes seconds
instead of minutes; its files are the same either way (drawing is deterministic).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from benchmarks.execution.environment import REPO_ROOT
from benchmarks.execution.store import atomic_write_text

#: the record of the last drawing, inside the figures folder (git-ignored)
DRAWN_FILE = ".drawn.json"


#: the repository's packages whose code the digest covers
CODE_PACKAGES = ("benchmarks", "samplers", "metrics", "datasets", "common")


def _repo_sources() -> list[Path]:
    """Every Python file of the repository's packages (:data:`CODE_PACKAGES`): a fixed set,
    so the digest does not depend on which modules a process happened to import."""
    return sorted(p for pkg in CODE_PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py"))


def inputs_digest(suite_dir: Path, rows: list[dict[str, Any]], curves: list[dict[str, Any]]) -> str:
    """SHA-256 of everything a suite's figures are drawn from (module docstring)."""
    import matplotlib
    import numpy
    import pandas
    import seaborn

    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)

    versions = [matplotlib.__version__, seaborn.__version__, pandas.__version__]
    add("versions", json.dumps([*versions, numpy.__version__]).encode())
    for src in _repo_sources():
        add(f"code:{src.relative_to(REPO_ROOT).as_posix()}", src.read_bytes())
    add("rows", json.dumps(rows, sort_keys=True, default=str).encode())
    add("curves", json.dumps(curves, sort_keys=True, default=str).encode())
    for path in sorted(Path(suite_dir).glob("*.json")):
        add(f"file:{path.name}", path.read_bytes())
    for name in sorted({str(r["particles_file"]) for r in rows if r.get("particles_file")}):
        path = Path(suite_dir) / name
        add(f"particles:{name}", path.read_bytes() if path.is_file() else b"<absent>")
    return h.hexdigest()


def _drawn(figures: Path) -> dict[str, Any]:
    try:
        record = json.loads((figures / DRAWN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def draw_suite_figures(
    suite_dir: Path, rows: list[dict[str, Any]], curves: list[dict[str, Any]]
) -> tuple[list[Path], bool]:
    """(the suite's figure files, whether they were drawn now): drawn by
    :func:`benchmarks.presentation.plots.suite_figures` unless the last drawing had the same
    inputs and left every file it lists in place."""
    from benchmarks.presentation.plots import FIG_DIR, suite_figures

    figures = Path(suite_dir) / FIG_DIR
    digest = inputs_digest(suite_dir, rows, curves)
    last = _drawn(figures)
    files = [figures / str(name) for name in last.get("files", [])]
    if last.get("digest") == digest and all(f.is_file() for f in files):
        return files, False
    written = suite_figures(suite_dir, rows, curves)
    if written:
        record = {"digest": digest, "files": sorted(p.name for p in written)}
        figures.mkdir(parents=True, exist_ok=True)
        atomic_write_text(figures / DRAWN_FILE, json.dumps(record, indent=1) + "\n")
    return written, True
