"""Markdown pipe tables for leaderboards and study results (no tabulate dependency)."""

from __future__ import annotations

import pandas as pd


def markdown_table(df: pd.DataFrame, *, floats: str = "{:.3g}", index: str | None = None) -> str:
    """A GitHub pipe table of ``df`` ending in a newline; floats formatted with ``floats``;
    ``index``: label of a first column holding the frame's index (omitted when None)."""
    if df.empty:
        return "_no rows_\n"
    cols = ([index] if index is not None else []) + [str(c) for c in df.columns]

    def cell(v: object) -> str:
        return floats.format(v) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for label, row in zip(df.index, df.itertuples(index=False), strict=True):
        cells = ([str(label)] if index is not None else []) + [cell(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
