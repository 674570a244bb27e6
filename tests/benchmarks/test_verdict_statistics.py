"""benchmarks.verdict statistics against scipy, hand-computed values, Demšar's table, and
their stated levels by simulation (intervals that cover, calls that hold alpha)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmarks.verdict.cells import FAILED, OK
from benchmarks.verdict.intervals import t_interval
from benchmarks.verdict.paired import (
    holm,
    independent_units,
    paired_call,
    paired_t_p,
    pairwise_table,
    wilcoxon_p,
)
from benchmarks.verdict.ranks import nemenyi_cd, rank_column, rank_table
from benchmarks.verdict.yardstick import cell_verdict

N_SIM = 4000


def test_t_interval_matches_scipy_and_edge_cases() -> None:
    v = np.array([0.21, 0.25, 0.19, 0.3, 0.22])
    want = stats.t.interval(0.95, 4, loc=v.mean(), scale=stats.sem(v))
    assert t_interval(v) == pytest.approx(want, rel=1e-12)
    assert all(np.isnan(t_interval(np.array([2.5]))))
    assert t_interval(np.array([1.0, 1.0, 1.0])) == (1.0, 1.0)


def _coverage(draw, mean: float, n: int = 5) -> float:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(N_SIM):
        lo, hi = t_interval(draw(rng, n))
        hits += lo <= mean <= hi
    return hits / N_SIM


def test_t_interval_holds_its_level_at_five_seeds_by_simulation() -> None:
    """95 % intervals from 5 seeds: normal values must cover >= 93 % (issue 23's bar; the t
    interval is exact there, 95 %); the skewed values a divergence takes (gamma(4),
    lognormal(0, 0.5)) must cover >= 90 % (measured 93-94 %). With 4,000 sets the
    simulation's standard error is 0.34 percentage points. The percentile bootstrap it
    replaced covered 85 / 80 / 80 %."""
    normal = _coverage(lambda r, n: r.normal(1.0, 0.3, n), 1.0)
    gamma = _coverage(lambda r, n: r.gamma(4.0, 1.0, n), 4.0)
    lognormal = _coverage(lambda r, n: r.lognormal(0.0, 0.5, n), float(np.exp(0.125)))
    assert 0.93 <= normal <= 0.97
    assert gamma >= 0.90 and lognormal >= 0.90


def test_paired_t_matches_scipy() -> None:
    a = np.array([0.3, 0.25, 0.41, 0.33, 0.29])
    b = np.array([0.28, 0.27, 0.35, 0.30, 0.22])
    assert paired_t_p(a - b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert np.isnan(paired_t_p(np.array([0.1])))
    assert paired_t_p(np.zeros(4)) == 1.0 and paired_t_p(np.full(4, 0.2)) == 0.0


@pytest.mark.parametrize("n_seeds", [5, 10])
def test_per_column_calls_hold_alpha_under_the_null_by_simulation(n_seeds: int) -> None:
    """Zero-mean normal paired differences: the paired t test calls a win or a loss in at
    most 5 % of columns (exact for normal data). Bound: 5 % + 2.5 standard errors of the
    simulated rate (0.34 points at 4,000 columns) = 5.9 %; the bootstrap call it replaced
    measured 15.7 %. Power against a difference of one sd matches the noncentral-t power
    (0.40 at 5 seeds, 0.80 at 10) to within 3 simulation standard errors."""
    rng = np.random.default_rng(1)
    calls = [paired_call(rng.normal(0, 1, n_seeds)) for _ in range(N_SIM)]
    false_rate = np.mean([c in ("better", "worse") for c in calls])
    assert false_rate <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / N_SIM)
    assert false_rate >= 0.05 - 2.5 * np.sqrt(0.05 * 0.95 / N_SIM)  # not over-conservative
    power = np.mean([paired_call(rng.normal(-1, 1, n_seeds)) == "better" for _ in range(1000)])
    crit = stats.t.ppf(0.975, n_seeds - 1)
    expected = float(stats.nct.sf(crit, n_seeds - 1, np.sqrt(n_seeds)))
    assert abs(power - expected) < 3 * np.sqrt(expected * (1 - expected) / 1000)


def test_holm_hand_computed() -> None:
    # sorted 0.01, 0.02, 0.04, 0.5 with m = 4: 0.04, 0.06, 0.08, 0.5 (monotone already)
    np.testing.assert_allclose(holm([0.04, 0.5, 0.01, 0.02]), [0.08, 0.5, 0.04, 0.06])
    np.testing.assert_allclose(holm([0.02, 0.03, 0.9]), [0.06, 0.06, 0.9])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])


def test_wilcoxon_matches_scipy_and_zero_differences() -> None:
    d = np.array([0.3, -0.1, 0.5, 0.7, 0.2, 0.9, -0.05, 0.4])
    assert wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d).pvalue)
    assert wilcoxon_p(np.abs(d)) == pytest.approx(2 / 256)  # n = 8 all positive: 2 / 2^8
    assert wilcoxon_p(np.zeros(5)) == 1.0


def test_nemenyi_cd_matches_demsar_table() -> None:
    for k, q in [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)]:
        n = 12
        assert nemenyi_cd(k, n) == pytest.approx(q * np.sqrt(k * (k + 1) / (6 * n)), abs=2e-3)


def _nemenyi_false_rate(units: bool, n_sim: int) -> float:
    """Share of null tables (5 exchangeable samplers, 4 targets x 2 init columns holding the
    same value, as for a sampler that ignores x0) where the best and worst average ranks
    differ by more than the CD: the Nemenyi family-wise error over all pairs."""
    rng = np.random.default_rng(3)
    samplers = [f"s{i}" for i in range(5)]
    columns = [f"t{t} / i{j}" for t in range(4) for j in range(2)]
    unit = {c: c.split(" / ")[0] for c in columns} if units else None
    states = pd.DataFrame(OK, index=samplers, columns=columns)
    copying = pd.DataFrame(False, index=samplers, columns=columns)
    hits = 0
    for _ in range(n_sim):
        values = np.repeat(rng.normal(size=(5, 4)), 2, axis=1)
        means = pd.DataFrame(values, index=samplers, columns=columns)
        table = rank_table(means, states, copying, True, exclude=(), units=unit)
        hits += float(table.average.max() - table.average.min()) > table.cd
    return hits / n_sim


def test_critical_difference_counts_targets_and_holds_its_level_by_simulation() -> None:
    """The CD over independent units (targets) holds 5 %: bound 5 % + 2.5 simulation standard
    errors (0.89 points at 600 tables) = 7.2 %; measured 1.8 % at 4,000 tables (Nemenyi is
    conservative at 4 units). Counting the 8 columns as units, as the leaderboard did,
    rejected in 32 % (4,000 tables)."""
    assert _nemenyi_false_rate(units=True, n_sim=600) <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 600)
    assert _nemenyi_false_rate(units=False, n_sim=150) > 0.2  # the test sees the old rule


def test_rank_average_weights_targets_not_columns() -> None:
    """Target a has two init columns, b one: a's column ranks are averaged first, so each
    target weighs the same; the CD is Nemenyi's for 2 samplers over 2 units."""
    columns = ["a / g", "a / c", "b / g"]
    means = pd.DataFrame([[1.0, 1.0, 2.0], [2.0, 2.0, 1.0]], index=["x", "y"], columns=columns)
    states = pd.DataFrame(OK, index=means.index, columns=columns)
    copying = pd.DataFrame(False, index=means.index, columns=columns)
    units = {"a / g": "a", "a / c": "a", "b / g": "b"}
    table = rank_table(means, states, copying, True, exclude=(), units=units)
    assert table.average.to_dict() == {"x": 1.5, "y": 1.5}  # by columns: x 4/3, y 5/3
    assert table.n_units == 2 and table.cd == nemenyi_cd(2, 2)


def _long(values: dict[tuple[str, str, str, int], float]) -> pd.DataFrame:
    rows = [
        {"sampler": s, "target": t, "init": i, "rep": r, "value": v, "column": f"{t} / {i}"}
        for (s, t, i, r), v in values.items()
    ]
    return pd.DataFrame(rows)


def test_independent_units_average_the_inits_of_one_target_and_seed() -> None:
    vals = {}
    for t in ("t1", "t2"):
        for r in range(3):
            for i, shift in (("g", 0.0), ("c", 1.0)):
                vals[("a", t, i, r)] = 1.0 + shift + r
                vals[("b", t, i, r)] = 2.0 + 2 * shift
    d = independent_units(_long(vals), "a", "b")
    assert len(d) == 6
    # mean over inits of (1 + s + r) - (2 + 2 s) for s = 0, 1: r - 1.5
    np.testing.assert_allclose(d.xs("t1", level="target").to_numpy(), [-1.5, -0.5, 0.5])


def test_pairwise_table_detects_a_consistent_difference_only() -> None:
    """a is better than b by 10 % of the target scale on every (target, seed) unit; c equals
    a plus symmetric noise. a vs b: 4 wins and the Wilcoxon p of the 20 scaled units; a vs
    c: no significant difference."""
    rng = np.random.default_rng(0)
    vals = {}
    for target, scale in [("t1", 1.0), ("t2", 10.0), ("t3", 0.1), ("t4", 5.0)]:
        for rep in range(5):
            base = scale * (1 + 0.05 * rng.normal())
            vals[("a", target, "g", rep)] = base
            vals[("b", target, "g", rep)] = base + 0.1 * scale
            vals[("c", target, "g", rep)] = base + scale * 0.05 * rng.normal()
    frame = _long(vals)
    table = pairwise_table(frame, lower_is_better=True).set_index(["a", "b"])
    ab = table.loc[("a", "b")]
    assert (ab.wins, ab.ties, ab.losses, ab.units) == (4, 0, 0, 20)
    s_t = frame.groupby("target")["value"].apply(lambda v: np.abs(v).mean())
    d = independent_units(frame, "a", "b")
    scaled = d.to_numpy() / s_t.reindex(d.index.get_level_values("target")).to_numpy()
    assert ab.p == pytest.approx(stats.wilcoxon(scaled).pvalue) and ab.p < 1e-4
    assert ab.verdict == "a better"
    assert table.loc[("a", "c")].verdict == "no difference"
    assert table.loc[("b", "c")].verdict == "c better"
    flipped = pairwise_table(frame, lower_is_better=False).set_index(["a", "b"])
    assert flipped.loc[("a", "b")].verdict == "b better" and flipped.loc[("a", "b")].losses == 4


def test_rank_column_puts_copying_after_clean_and_failures_last() -> None:
    means = pd.Series({"copy": 0.1, "good": 0.3, "bad": 0.5, "broken": 0.05, "broken2": 0.9})
    states = pd.Series({"copy": OK, "good": OK, "bad": OK, "broken": FAILED, "broken2": FAILED})
    copying = pd.Series({"copy": True})
    r = rank_column(means, states, copying, lower_is_better=True)
    assert r.to_dict() == {"good": 1.0, "bad": 2.0, "copy": 3.0, "broken": 4.5, "broken2": 4.5}
    r = rank_column(means, states, copying, lower_is_better=False)
    assert r["bad"] == 1.0 and r["copy"] == 3.0


def test_pairwise_verdicts_hold_the_family_wise_level_by_simulation() -> None:
    """Four exchangeable samplers on 4 targets of different scales x 2 init columns holding
    the same value (a sampler that ignores x0) x 5 seeds, with a shared (target, seed) effect:
    any "a better" / "b better" among the 6 Holm-corrected pairs is a family-wise error.
    Bound 5 % + 2.5 simulation errors (1.09 points at 400 tables) = 7.7 %; measured 4.3 %
    (300 tables). Counting the init columns as units would pair each value with its copy."""
    rng = np.random.default_rng(5)
    errors, n_sim = 0, 400
    for _ in range(n_sim):
        rows = []
        for target, scale in [("t1", 1.0), ("t2", 10.0), ("t3", 0.1), ("t4", 5.0)]:
            for rep in range(5):
                shared = rng.normal()
                for sampler in "abcd":
                    v = scale * (1 + 0.1 * shared + 0.1 * rng.normal())
                    rows += [
                        {
                            "sampler": sampler,
                            "target": target,
                            "init": i,
                            "rep": rep,
                            "value": v,
                            "column": f"{target} / {i}",
                        }
                        for i in ("g", "c")
                    ]
        table = pairwise_table(pd.DataFrame(rows), lower_is_better=True)
        errors += bool((table.verdict != "no difference").any())
    assert errors / n_sim <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / n_sim)


def test_cell_verdict_rule() -> None:
    kw = {"state": OK, "copying": False, "guard_calls": []}
    assert cell_verdict(headline_call="tie", **kw) == "≈ exact"
    assert cell_verdict(headline_call="better", **kw) == "better"
    assert cell_verdict(headline_call="worse", **kw) == "worse"
    assert cell_verdict(headline_call="better", **{**kw, "copying": True}) == "copying"
    assert cell_verdict(headline_call="better", **{**kw, "guard_calls": ["worse"]}) == "worse"
    assert cell_verdict(headline_call="tie", **{**kw, "state": FAILED}) == "failed"


def test_the_one_pass_seed_table_equals_the_per_cell_filter():
    """``per_seed_table`` (one groupby, what the leaderboard reads) against ``per_seed`` (one
    filter per cell, the definition) on every cell of a committed suite, failed, diverged
    and unconverged runs included."""
    from pathlib import Path

    from benchmarks.execution.store import load_rows
    from benchmarks.verdict.leaderboard import rows_frame
    from benchmarks.verdict.yardstick import per_seed, per_seed_table

    df = rows_frame(load_rows(Path("results/bounded/runs.jsonl")).rows, None)
    table = per_seed_table(df)
    cells = df[["metric", "sampler", "column"]].drop_duplicates().itertuples(index=False)
    n = 0
    for metric, sampler, column in cells:
        want = per_seed(df, metric, sampler, column)
        got = table.get((metric, sampler, column))
        if want.empty:
            assert got is None
            continue
        pd.testing.assert_series_equal(got, want, check_names=False, check_exact=True)
        n += 1
    assert n == len(table) > 100  # every key of the table was compared, and many were
