"""Post-run diagnostics per target family (decoded image grids, embeddings, ...).

A module here registers ``writer(out_dir, rows) -> list[Path]`` for a family with
``@DIAGNOSTICS.register("family")``; after every suite the harness calls the writer of each
family present in the rows. The harness itself names no family.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.registry import Registry

DiagnosticsWriter = Callable[[Path, list[dict[str, Any]]], list[Path]]
DIAGNOSTICS: Registry[DiagnosticsWriter] = Registry("diagnostics writer", "benchmarks.diagnostics")


def write_diagnostics(out_dir: Path, rows: list[dict[str, Any]]) -> list[Path]:
    """Run the writer of every family present in ``rows``; returns the files written."""
    families = dict.fromkeys(r.get("family") for r in rows if r.get("family"))
    written: list[Path] = []
    for family in families:
        if family in DIAGNOSTICS:
            written += DIAGNOSTICS.get(family)(out_dir, rows)
    return written
