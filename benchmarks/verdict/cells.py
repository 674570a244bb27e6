"""The state of each leaderboard cell (one sampler in one column, all its seeds), read from
the rows of one metric: what the ranks, the marks and the cell text are built on.

A cell is
* ``skipped``: every run was skipped for an unmet need (a log density the target lacks, a
  budget the method cannot meet such as m > N for a copying baseline, missing data): shown
  apart, never ranked;
* ``outside``: the start lay outside the target's support (a labelled stress test of the
  bounded suite, not the sampler's doing): shown, its column not ranked;
* ``failed``: at least one run failed, diverged, timed out or did not converge: ranked last
  in its column (the mean of the runs that finished is not the method's score);
* ``ok``: every run gave a usable value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SKIPPED, OUTSIDE, FAILED, OK = "skipped", "outside", "failed", "ok"


def usable_mask(g: pd.DataFrame) -> pd.Series:
    """Per run of ``g``: True when its value is usable (status ok, converged, finite)."""
    values = pd.to_numeric(g["value"], errors="coerce")
    return (g["status"] == "ok") & g["converged"].astype(bool) & np.isfinite(values)


def usable(g: pd.DataFrame) -> pd.DataFrame:
    """The runs of ``g`` with a usable value (status ok, converged, finite)."""
    return g[usable_mask(g)]


def cell_state(g: pd.DataFrame) -> str:
    """The state of the runs ``g`` of one (sampler, column) for one metric (see module)."""
    statuses = set(g["status"])
    if statuses and statuses <= {"skipped"}:
        return SKIPPED
    if any("outside_support" in str(s) for s in statuses):
        return OUTSIDE
    if len(usable(g)) < len(g):
        return FAILED
    return OK


def cell_states(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """sampler x column frame of :func:`cell_state` for ``metric`` (rows of ``df`` as made
    by ``rows_frame``: columns sampler, column, metric, status, converged, value)."""
    d = df[df["metric"] == metric]
    states = {key: cell_state(g) for key, g in d.groupby(["sampler", "column"], sort=False)}
    out = pd.Series(states, dtype=object)
    if out.empty:
        return pd.DataFrame()
    out.index = pd.MultiIndex.from_tuples(out.index, names=["sampler", "column"])
    return out.unstack("column")
