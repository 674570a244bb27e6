"""Every cell against ``exact``: fresh i.i.d. target samples of the same size, scored
against the same reference per seed. That is what a perfect sampler achieves, so it is the
yardstick a method is read against (the trivial baselines are context: what copying or
quantising the training split achieves).

For a cell (sampler, column) the paired differences over seeds are
d_s = sign * (v_s - exact_s) (sign = +1 when lower is better), and the call is Student's
paired t test at ``ALPHA`` (:func:`benchmarks.verdict.paired.paired_call`): ``better``
than exact, ``tie`` (indistinguishable with these seeds), or ``worse``.

Fidelity and novelty are read together by one declared rule, the cell's **verdict**:

1. ``copying`` when a flag metric (``Metric.flag_below``, e.g. the data-copying test)
   flags a majority of the cell's runs: what it scores is the training split's, not a
   sample's;
2. ``failed`` when a run failed, diverged, timed out or did not converge;
3. ``worse`` when the headline is worse than exact, or a guard metric
   (``Metric.guards_verdict``, e.g. the support error where the support is known) exceeds
   exact's by more than its declared tolerance (paired t on v - exact - tolerance);
4. ``better`` or ``≈ exact`` from the headline's call;
5. ``-`` where fewer than 2 seeds pair with exact (no call can be made).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.suites import EXACT
from benchmarks.verdict.cells import FAILED, OK, usable
from benchmarks.verdict.paired import ALPHA, paired_call

#: what each verdict is shown as in a leaderboard cell, and its caption
VERDICT_MARKS = {
    "better": " ▲",
    "≈ exact": " ≈",
    "worse": " ▼",
    "copying": "",
    "failed": "",
    "-": "",
}


def per_seed(df: pd.DataFrame, metric: str, sampler: str, column: str) -> pd.Series:
    """Usable values of ``metric`` for (sampler, column), indexed by rep."""
    g = df[(df["metric"] == metric) & (df["sampler"] == sampler) & (df["column"] == column)]
    g = usable(g)
    return pd.to_numeric(g["value"]).groupby(g["rep"]).mean()


SeedTable = dict[tuple[str, str, str], pd.Series]
"""(metric, sampler, column) -> :func:`per_seed` of that cell."""


def per_seed_table(df: pd.DataFrame) -> SeedTable:
    """:func:`per_seed` of every (metric, sampler, column) of ``df`` in one pass (a
    leaderboard reads hundreds of cells; filtering the frame per cell dominated its time)."""
    g = usable(df)
    values = pd.to_numeric(g["value"])
    keys = [g["metric"].astype(str), g["sampler"].astype(str), g["column"].astype(str)]
    means = values.groupby([*keys, g["rep"]], sort=True).mean()
    return {
        (str(m), str(s), str(c)): cell.droplevel([0, 1, 2]).rename_axis("rep")
        for (m, s, c), cell in means.groupby(level=[0, 1, 2], sort=False)
    }


def exact_differences(
    table: SeedTable,
    metric: str,
    sampler: str,
    column: str,
    sign: float,
    *,
    tolerance: float = 0.0,
) -> np.ndarray:
    """d = sign * (v - exact) - tolerance (n,) over the seeds both (sampler, column) and the
    exact row of the same column have on ``metric``, read from :func:`per_seed_table`."""
    empty = pd.Series(dtype=float)
    v = table.get((metric, sampler, column), empty)
    e = table.get((metric, EXACT, column), empty)
    both = v.index.intersection(e.index)
    return (sign * (v[both] - e[both]) - tolerance).to_numpy(dtype=float)


def versus_exact(
    table: SeedTable,
    metric: str,
    sampler: str,
    column: str,
    sign: float,
    *,
    tolerance: float = 0.0,
    alpha: float = ALPHA,
) -> str:
    """The paired call of (sampler, column) against the exact row of the same column on
    ``metric`` (:func:`exact_differences`; "n/a" for fewer than 2 shared seeds)."""
    d = exact_differences(table, metric, sampler, column, sign, tolerance=tolerance)
    return paired_call(d, alpha=alpha) if len(d) >= 2 else "n/a"


def cell_verdict(*, state: str, copying: bool, headline_call: str, guard_calls: list[str]) -> str:
    """The declared rule of the module docstring, from a cell's state, copying flag, the
    headline's call against exact and the guard metrics' calls."""
    if copying:
        return "copying"
    if state == FAILED:
        return "failed"
    if state != OK:
        return "-"
    if headline_call == "worse" or "worse" in guard_calls:
        return "worse"
    if headline_call == "better":
        return "better"
    if headline_call == "tie":
        return "≈ exact"
    return "-"
