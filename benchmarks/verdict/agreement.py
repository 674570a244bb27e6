"""Does a leaderboard's verdict survive when some of its rows are made again?

Rows made on another machine (another CPU's code path rounds differently) or at another
commit may differ while the leaderboard reads the same. :func:`compare_verdicts` reads the
verdict of one suite folder twice, from the committed rows and from the committed rows with
the re-run rows put in their place (same configuration and metric), and names what moved:

- each (sampler, column) cell's verdict against ``exact`` (better, indistinguishable,
  worse, copying, failed; :func:`benchmarks.verdict.leaderboard.verdicts`), with the
  headline paired t test's p-value on each side;
- each pair's verdict of the Holm-corrected paired test ('a better', 'no difference';
  :func:`benchmarks.verdict.paired.pairwise_table`), with its Holm p-value on each side;
- apart from the verdicts: each cell's flag marks ('copying 1/5',
  :func:`benchmarks.verdict.leaderboard.flag_marks`), counts of the runs whose value
  crossed a metric's threshold. A run whose value moves across a threshold moves its
  count; the cell's call (copying only for a strict majority) is in its verdict;
- the order of the ranked samplers by average rank (best first; ties by name), with the
  largest shift of an average rank and the Nemenyi critical difference: an order that moves
  by less than the critical difference is not a claim the table makes.

What a reader cites (the marks, the paired calls) is compared as text; the means,
intervals and p-values behind them move with the rows and are compared by ``verify``'s
row rule. A call whose p-value sits near the level (0.05) can flip when the values move,
as it can with another seed; the p-values say how near it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.verdict.leaderboard import (
    flag_marks,
    headline_of,
    metric_spec,
    metric_values,
    rank_summary,
    rows_frame,
    suite_meta,
    verdicts,
)
from benchmarks.verdict.paired import paired_t_p, pairwise_table
from benchmarks.verdict.yardstick import exact_differences, per_seed_table

Cell = tuple[str, str]  # (sampler, column)


@dataclass
class VerdictComparison:
    """The headline ``metric``'s verdict of a folder, committed vs with the re-run rows."""

    metric: str
    #: cells with a verdict in either reading
    cells: int = 0
    #: (sampler, column, committed verdict, re-run verdict) of every cell whose call moved
    changed: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: (sampler, column) -> the headline paired t test's p against exact: committed, re-run
    cell_p: dict[Cell, tuple[float, float]] = field(default_factory=dict)
    #: (sampler, column, committed flag marks, re-run flag marks) where the marks moved
    flags_changed: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: sampler pairs with a paired-test verdict in either reading
    pairs: int = 0
    #: (a, b, committed verdict, re-run verdict) of every pair whose call moved
    pairs_changed: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: (a, b) -> Holm-corrected p of a moved pair: committed, re-run
    pair_p: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    #: ranked samplers, best first: committed, then with the re-run rows
    order: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    #: largest |change| of a ranked sampler's average rank, and the critical difference
    rank_shift: float = 0.0
    critical_difference: float = float("nan")

    @property
    def same(self) -> bool:
        """Every cell's verdict and every paired call read the same (flag counts may move:
        they count runs across a threshold, and a majority of them is the copying verdict;
        the order of samplers within the critical difference is not a call either)."""
        return not self.changed and not self.pairs_changed


def cell_readings(df: pd.DataFrame, metric: str) -> dict[Cell, str]:
    """(sampler, column) -> the verdict against exact ('worse', '≈ exact', 'copying', ...)
    as the leaderboard marks it; {} for an unranked metric or without an exact row."""
    out: dict[Cell, str] = {}
    calls = verdicts(df, metric) if metric_spec(metric).ranked else pd.DataFrame()
    for sampler in calls.index:
        for column in calls.columns:
            call = calls.at[sampler, column]
            if pd.notna(call):
                out[(str(sampler), str(column))] = str(call)
    return out


def exact_ps(df: pd.DataFrame, metric: str, cells: list[Cell]) -> list[float]:
    """Per cell, the two-sided p-value of the paired t test against exact on ``metric``
    (the test behind its headline call; NaN below two shared seeds), from one
    :func:`per_seed_table` of the frame."""
    sign = 1.0 if metric_spec(metric).lower_is_better else -1.0
    table = per_seed_table(df[df["metric"] == metric])
    return [paired_t_p(exact_differences(table, metric, s, c, sign)) for s, c in cells]


def paired_calls(df: pd.DataFrame, metric: str) -> dict[tuple[str, str], tuple[str, float]]:
    """(a, b) -> (the paired test's verdict, its Holm-corrected p), as the leaderboard's
    comparison section has them."""
    spec = metric_spec(metric)
    values = metric_values(df, metric)
    if not spec.ranked or values["sampler"].nunique() < 2:
        return {}
    table = pairwise_table(values, spec.lower_is_better)
    return {(str(r.a), str(r.b)): (str(r.verdict), float(r.p_holm)) for r in table.itertuples()}


def average_ranks(df: pd.DataFrame, metric: str) -> tuple[pd.Series, float]:
    """Average rank per ranked sampler, best first (ties by name), and the critical
    difference; empty and NaN for an unranked metric."""
    if not metric_spec(metric).ranked:
        return pd.Series(dtype=float), float("nan")
    ranking = rank_summary(df, metric)
    average = ranking.average
    order = sorted(average.index, key=lambda s: (float(average[s]), str(s)))
    return average.reindex(order), float(ranking.cd)


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["config_key"], row["metric"])


def compare_verdicts(
    folder: Path, committed: Iterable[dict[str, Any]], rerun: Iterable[dict[str, Any]]
) -> VerdictComparison:
    """The verdict of the folder's committed rows against the verdict of the same rows with
    every re-run row in place of the committed row of its key (re-run rows of keys the
    folder lacks are added). ``folder``: where ``suite.json`` names the headline metric and
    the column order."""
    committed = list(committed)
    merged = {_key(r): r for r in committed}
    merged.update({_key(r): r for r in rerun})
    metric = headline_of(Path(folder), committed)
    if metric is None:
        return VerdictComparison(metric="")
    suite = suite_meta(Path(folder))
    before = rows_frame(committed, suite)
    after = rows_frame(list(merged.values()), suite)
    old, new = cell_readings(before, metric), cell_readings(after, metric)
    cells = sorted(set(old) | set(new))
    changed = [(s, c, old.get((s, c), "-"), new.get((s, c), "-")) for s, c in cells]
    changed = [x for x in changed if x[2] != x[3]]
    moved_cells = [(s, c) for s, c, _, _ in changed]
    p_old = exact_ps(before, metric, moved_cells) if moved_cells else []
    p_new = exact_ps(after, metric, moved_cells) if moved_cells else []
    cell_p = {cell: (p_old[i], p_new[i]) for i, cell in enumerate(moved_cells)}
    flags_old, flags_new = flag_marks(before), flag_marks(after)
    flagged = sorted(set(flags_old) | set(flags_new))
    flags = [(s, c, flags_old.get((s, c), ""), flags_new.get((s, c), "")) for s, c in flagged]
    calls_old, calls_new = paired_calls(before, metric), paired_calls(after, metric)
    pairs = sorted(set(calls_old) | set(calls_new))
    none = ("-", float("nan"))
    moved = [
        (a, b, calls_old.get((a, b), none)[0], calls_new.get((a, b), none)[0]) for a, b in pairs
    ]
    moved = [x for x in moved if x[2] != x[3]]
    (rank_old, cd), (rank_new, _) = average_ranks(before, metric), average_ranks(after, metric)
    shift = (rank_new - rank_old.reindex(rank_new.index)).abs().max()
    return VerdictComparison(
        metric=metric,
        cells=len(cells),
        changed=changed,
        cell_p=cell_p,
        flags_changed=[x for x in flags if x[2] != x[3]],
        pairs=len(pairs),
        pairs_changed=moved,
        pair_p={
            (a, b): (calls_old.get((a, b), none)[1], calls_new.get((a, b), none)[1])
            for a, b, _, _ in moved
        },
        order=(tuple(rank_old.index), tuple(rank_new.index)),
        rank_shift=float(shift) if pd.notna(shift) else 0.0,
        critical_difference=cd,
    )
