"""benchmarks.statistics against scipy, hand-computed values and Demšar's table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmarks.statistics import (
    average_ranks,
    bootstrap_interval,
    holm,
    nemenyi_cd,
    pairwise_table,
    wilcoxon_p,
)


def test_bootstrap_interval_brute_force_and_edge_cases() -> None:
    v = np.array([1.0, 2.0, 4.0, 7.0])
    lo, hi = bootstrap_interval(v, seed=3, n_boot=4000)
    rng = np.random.default_rng(3)
    means = v[rng.integers(0, 4, size=(4000, 4))].mean(1)
    assert (lo, hi) == (np.quantile(means, 0.025), np.quantile(means, 0.975))
    assert v.min() <= lo < v.mean() < hi <= v.max()
    # n = 3: the resample means are exactly the multisets' means; extremes 1 and 7 each
    # have probability 1/27 > 2.5 %, so the interval is [min, max]
    assert bootstrap_interval(np.array([1.0, 4.0, 7.0]), seed=0) == (1.0, 7.0)
    assert bootstrap_interval(np.array([2.5])) == (2.5, 2.5)
    assert all(np.isnan(bootstrap_interval(np.array([]))))


def test_holm_hand_computed() -> None:
    # sorted 0.01, 0.02, 0.04, 0.5 with m = 4: 0.04, 0.06, 0.08, 0.5 (monotone already)
    p = [0.04, 0.5, 0.01, 0.02]
    np.testing.assert_allclose(holm(p), [0.08, 0.5, 0.04, 0.06])
    # monotonicity: 0.03 * 2 = 0.06 < 0.02 * 3 = 0.06 -> max keeps order; capped at 1
    np.testing.assert_allclose(holm([0.02, 0.03, 0.9]), [0.06, 0.06, 0.9])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])


def test_wilcoxon_matches_scipy_and_zero_differences() -> None:
    d = np.array([0.3, -0.1, 0.5, 0.7, 0.2, 0.9, -0.05, 0.4])
    assert wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d).pvalue)
    # n = 8 all positive: exact two-sided p = 2 / 2^8
    assert wilcoxon_p(np.abs(d)) == pytest.approx(2 / 256)
    assert wilcoxon_p(np.zeros(5)) == 1.0


def test_nemenyi_cd_matches_demsar_table() -> None:
    for k, q in [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)]:
        n = 12
        assert nemenyi_cd(k, n) == pytest.approx(q * np.sqrt(k * (k + 1) / (6 * n)), abs=2e-3)


def test_average_ranks_hand_computed() -> None:
    means = pd.DataFrame(
        {"t1": [0.1, 0.2, 0.3], "t2": [0.5, 0.4, 0.4], "t3": [1.0, np.nan, 2.0]},
        index=["a", "b", "c"],
    )
    r = average_ranks(means, lower_is_better=True)  # t3 dropped (b missing)
    assert r["a"] == pytest.approx((1 + 3) / 2)
    assert r["b"] == pytest.approx((2 + 1.5) / 2) and r["c"] == pytest.approx((3 + 1.5) / 2)
    assert average_ranks(means, lower_is_better=False)["c"] == pytest.approx((1 + 2.5) / 2)


def test_pairwise_table_detects_a_consistent_difference_only() -> None:
    """a is better than b by 10 % of the column scale on every (column, seed) unit; c equals
    a plus symmetric noise. a vs b: 4 wins and Wilcoxon p = 2/2^20 on the 20 units; a vs c:
    no significant difference."""
    rng = np.random.default_rng(0)
    rows = []
    for column, scale in [("t1", 1.0), ("t2", 10.0), ("t3", 0.1), ("t4", 5.0)]:
        for rep in range(5):
            base = scale * (1 + 0.05 * rng.normal())
            noise = scale * 0.05 * rng.normal()
            rows += [
                {"sampler": "a", "column": column, "rep": rep, "value": base},
                {"sampler": "b", "column": column, "rep": rep, "value": base + 0.1 * scale},
                {"sampler": "c", "column": column, "rep": rep, "value": base + noise},
            ]
    table = pairwise_table(pd.DataFrame(rows), lower_is_better=True).set_index(["a", "b"])
    ab = table.loc[("a", "b")]
    assert (ab.wins, ab.ties, ab.losses, ab.units) == (4, 0, 0, 20)
    # independent: d / s_c with s_c the column's mean |value| over a, b, c
    frame = pd.DataFrame(rows)
    s_c = frame.groupby("column")["value"].apply(lambda v: np.abs(v).mean())
    va = frame[frame.sampler == "a"].set_index(["column", "rep"])["value"]
    vb = frame[frame.sampler == "b"].set_index(["column", "rep"])["value"]
    scaled = (va - vb) / s_c.reindex(va.index.get_level_values("column")).to_numpy()
    assert ab.p == pytest.approx(stats.wilcoxon(scaled.to_numpy()).pvalue) and ab.p < 1e-4
    assert ab.verdict == "a better"
    assert table.loc[("a", "c")].verdict == "no difference"
    assert table.loc[("b", "c")].verdict == "c better"
    # higher-is-better flips the direction
    flipped = pairwise_table(pd.DataFrame(rows), lower_is_better=False).set_index(["a", "b"])
    assert flipped.loc[("a", "b")].verdict == "b better"
    assert flipped.loc[("a", "b")].losses == 4
