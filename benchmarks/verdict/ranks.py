"""Ranks of samplers per column and over columns (Demšar 2006), with one declared rule for
cells that did not simply finish:

* the ranked columns are those in which no cell is a start-outside-support stress test
  (``cells.OUTSIDE``) and some sampler ran (a column every sampler skipped, e.g. a data set
  without its files, is left out); the ranked samplers are those with a state other than
  ``skipped`` in every ranked column (average ranks are comparable only over the same
  columns; a sampler skipped somewhere, e.g. MALA where the target has no density, is
  listed apart with the reason);
* within a column, cells are ranked in three groups: clean cells by their mean, then cells
  flagged as copying (fidelity bought by reproducing the training split is not ranked above
  a method that generates), then failed cells (a diverged, failed, timed-out or unconverged
  run), tied last;
* ``exact`` is the yardstick, never ranked.

* the units of the average and of the critical difference are the independent ones: the
  columns of one target (its init schemes) share the training split and the reference, and
  a sampler that ignores x0 repeats one value in each, so a target's column ranks are
  averaged first and the Nemenyi CD counts targets, not columns (counting columns made the
  CD sqrt(inits) too small: 8 columns of the manifolds suite are 4 independent targets).

The table's ``avg rank`` column and the critical-difference figure both come from
:func:`rank_table`, so they show the same samplers over the same columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.suites import EXACT
from benchmarks.verdict.cells import FAILED, OUTSIDE, SKIPPED

ALPHA = 0.05


@dataclass(frozen=True)
class RankTable:
    """ranks: sampler x column ranks over the ranked samplers and columns (1 = best);
    average: average rank per ranked sampler (ascending); columns: the ranked columns;
    unranked: sampler -> why it is not ranked; dropped_columns: column -> why not ranked;
    cd: Nemenyi critical difference for these samplers over ``n_units`` independent units
    (NaN below 2 x 1); n_units: the independent units (targets) the ranked columns form."""

    ranks: pd.DataFrame
    average: pd.Series
    columns: list[str]
    unranked: dict[str, str] = field(default_factory=dict)
    dropped_columns: dict[str, str] = field(default_factory=dict)
    cd: float = float("nan")
    n_units: int = 0


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of average ranks of k methods over n data sets:
    CD = q_alpha sqrt(k (k + 1) / (6 n)), q_alpha = the studentized range quantile
    (1 - alpha, k groups, infinite df) / sqrt(2) (Demšar 2006, Table 5: 1.960 at k = 2,
    2.343 at k = 3, 3.164 at k = 10)."""
    if k < 2 or n < 1:
        return float("nan")
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def rank_column(
    means: pd.Series, states: pd.Series, copying: pd.Series, lower_is_better: bool
) -> pd.Series:
    """Ranks (1 = best, ties averaged) of one column's cells: clean cells by mean, then
    copying cells by mean, then failed cells tied last (see module)."""
    sign = 1.0 if lower_is_better else -1.0
    failed = states == FAILED
    copy = copying.reindex(means.index).fillna(False).astype(bool) & ~failed
    clean = ~failed & ~copy
    out = pd.Series(np.nan, index=means.index, dtype=float)
    offset = 0
    for group in (clean, copy):
        r = (sign * means[group]).rank(method="average")
        out[group] = r + offset
        offset += int(group.sum())
    n_failed = int(failed.sum())
    if n_failed:
        out[failed] = offset + (n_failed + 1) / 2
    return out


def rank_table(
    means: pd.DataFrame,
    states: pd.DataFrame,
    copying: pd.DataFrame,
    lower_is_better: bool,
    *,
    exclude: tuple[str, ...] = (EXACT,),
    units: dict[str, str] | None = None,
) -> RankTable:
    """The declared ranking (module docstring) of sampler x column ``means`` with the cell
    ``states`` (``cells.cell_states``) and ``copying`` (bool, True where the cell is flagged
    as copying) of the same shape; ``units``: column -> its independent unit (its target;
    default: every column its own unit)."""
    samplers = [s for s in states.index if s not in exclude]
    columns = list(states.columns)
    dropped = {
        c: "a start outside the support (stress test)"
        for c in columns
        if (states.loc[samplers, c] == OUTSIDE).any()
    }
    for c in columns:  # e.g. a data set without its files: nobody ran, nothing to rank
        if c not in dropped and states.loc[samplers, c].isin([SKIPPED]).all():
            dropped[c] = "every sampler skipped"
    ranked_cols = [c for c in columns if c not in dropped]
    unranked: dict[str, str] = {}
    for s in samplers:
        skipped = [
            c for c in ranked_cols if states.at[s, c] in (SKIPPED, None) or pd.isna(states.at[s, c])
        ]
        if skipped:
            unranked[s] = f"skipped in {len(skipped)}/{len(ranked_cols)} ranked columns"
    ranked = [s for s in samplers if s not in unranked]
    if not ranked or not ranked_cols:
        return RankTable(pd.DataFrame(), pd.Series(dtype=float), ranked_cols, unranked, dropped)
    cop = copying.reindex(index=ranked, columns=ranked_cols).fillna(False)
    ranks = pd.DataFrame(
        {
            c: rank_column(means.loc[ranked, c], states.loc[ranked, c], cop[c], lower_is_better)
            for c in ranked_cols
        }
    )
    unit_of = {c: (units or {}).get(c, c) for c in ranked_cols}
    unit_ranks = ranks.T.groupby(lambda c: unit_of[c], sort=False).mean().T  # sampler x unit
    average = unit_ranks.mean(axis=1)
    average = average[sorted(average.index, key=lambda s: (average[s], str(s)))]
    n_units = unit_ranks.shape[1]
    cd = nemenyi_cd(len(ranked), n_units)
    return RankTable(ranks, average, ranked_cols, unranked, dropped, cd, n_units)
