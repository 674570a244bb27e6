"""Uncertainty and paired comparisons of leaderboard values (pure functions).

Runs of one suite share the data and x0 per (target, seed), so two samplers' values on the
same (column, seed) are paired observations. The functions here:

* :func:`bootstrap_interval`: percentile bootstrap interval of a cell's mean over seeds;
* :func:`wilcoxon_p`: two-sided Wilcoxon signed-rank p-value of paired differences;
* :func:`holm`: Holm's step-down adjustment of a family of p-values;
* :func:`pairwise_table`: win / tie / loss per column and one paired test per sampler pair
  over all (column, seed) units, Holm-corrected across pairs;
* :func:`average_ranks` and :func:`nemenyi_cd`: the average ranks over columns and the
  Nemenyi critical difference of Demšar (2006, "Statistical comparisons of classifiers over
  multiple data sets"), drawn by ``benchmarks.plots.critical_difference_figure``.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
N_BOOT = 2000


def bootstrap_interval(
    values: np.ndarray, *, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (n,): resample the n values
    with replacement ``n_boot`` times (``numpy.random.default_rng(seed)``), take the
    (1 - level)/2 and (1 + level)/2 quantiles of the resampled means. n = 1 gives the value
    twice; n = 0 gives NaNs. With few seeds the interval is narrow by construction (n = 3
    has only 10 distinct resample means): read it as the spread the seeds show, not more."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (n,) (scipy; exact
    distribution for small n without ties, zero differences dropped). All zero -> 1."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(pvalues: list[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values: sort p_(1) <= ... <= p_(m), adjusted
    p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)), returned in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return out


def average_ranks(means: pd.DataFrame, lower_is_better: bool) -> pd.Series:
    """Average rank of each row (sampler) over the columns (targets) of ``means``, rank 1 =
    best in a column, ties averaged; columns with a missing value are dropped (every sampler
    must be ranked on the same columns)."""
    m = means.dropna(axis=1, how="any")
    sign = 1.0 if lower_is_better else -1.0
    return (sign * m).rank(axis=0, method="average").mean(axis=1).sort_values()


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of average ranks of k methods over n data sets:
    CD = q_alpha sqrt(k (k + 1) / (6 n)), q_alpha = the studentized range quantile
    (1 - alpha, k groups, infinite df) / sqrt(2) (Demšar 2006, Table 5: 1.960 at k = 2,
    2.343 at k = 3, 3.164 at k = 10)."""
    if k < 2 or n < 1:
        return float("nan")
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def pairwise_table(
    values: pd.DataFrame, lower_is_better: bool, *, alpha: float = ALPHA, seed: int = 0
) -> pd.DataFrame:
    """Paired comparison of every pair of samplers.

    values: long frame with columns sampler, column, rep, value (finite values of one
    metric). For a pair (A, B), the units are the (column, rep) both have a value for;
    d = v_A - v_B, signed so that d < 0 means A is better.

    * per column: A wins (loses) when the 95 % paired bootstrap interval of the mean of d
      over seeds lies below (above) 0, else a tie;
    * one test over all units: Wilcoxon signed-rank on d / s_c, where s_c is the mean |value|
      of column c over all samplers (columns have different scales; the signed-rank test
      compares magnitudes across units, so each unit is put on its column's scale);
    * p-values Holm-corrected across all pairs; verdict "A better" / "B better" when the
      adjusted p < alpha (direction from the median scaled difference), else "no difference".

    Returns one row per pair: a, b, wins, ties, losses, units, median_scaled_diff, p,
    p_holm, verdict."""
    sign = 1.0 if lower_is_better else -1.0
    scale = values.groupby("column")["value"].apply(lambda v: float(np.mean(np.abs(v))))
    wide = values.pivot_table(index=["column", "rep"], columns="sampler", values="value")
    samplers = list(dict.fromkeys(values["sampler"]))
    rows = []
    for a, b in combinations(samplers, 2):
        pair = wide[[a, b]].dropna()
        if pair.empty:
            continue
        d = sign * (pair[a] - pair[b])
        wins = ties = losses = 0
        for i, (_column, dc) in enumerate(d.groupby(level="column", sort=False)):
            lo, hi = bootstrap_interval(dc.to_numpy(), seed=seed + i)
            if hi < 0:
                wins += 1
            elif lo > 0:
                losses += 1
            else:
                ties += 1
        s = d.index.get_level_values("column").map(scale).to_numpy(dtype=float)
        scaled = d.to_numpy() / np.where(s > 0, s, 1.0)
        rows.append(
            {
                "a": a,
                "b": b,
                "wins": wins,
                "ties": ties,
                "losses": losses,
                "units": int(len(d)),
                "median_scaled_diff": float(np.median(scaled)),
                "p": wilcoxon_p(scaled),
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = holm(out["p"].to_numpy())
    out["verdict"] = [
        "no difference"
        if ph >= alpha
        else (f"{r.a} better" if r.median_scaled_diff < 0 else f"{r.b} better")
        for ph, r in zip(out["p_holm"], out.itertuples(), strict=True)
    ]
    return out
