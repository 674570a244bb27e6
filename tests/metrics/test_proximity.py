"""The exchangeability copying test (metrics/proximity.py): its level by simulation, its power
on copies, its indifference to a sample's spread (where C_T is not), and its shortcut against
the brute-force statistic."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import metrics.proximity as proximity
from metrics.base import MetricError, get_metric
from metrics.copying import data_copying_statistic
from metrics.proximity import COPYING_Z, train_proximity


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _normal(n: int, d: int, gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(n, d, generator=gen, dtype=torch.float64)


def _z_values(scale: float, sims: int, *, seed: int, with_ct: bool = False):
    """z (and C_T) of ``sims`` samples x ~ N(0, scale^2 I_2), m = 300, drawn independently of
    T ~ N(0, I_2) (N = 100) and the held-out V ~ N(0, I_2) (1,000 points): the generation
    regime's sizes."""
    gen = _gen(seed)
    zs, cts = [], []
    for i in range(sims):
        train, heldout, x = _normal(100, 2, gen), _normal(1000, 2, gen), _normal(300, 2, gen, scale)
        zs.append(train_proximity(x, train, heldout, seed=i, resplits=100).value)
        if with_ct:
            cts.append(data_copying_statistic(x, train, heldout, seed=i).value)
    return torch.tensor(zs), torch.tensor(cts)


def test_fresh_samples_are_flagged_at_the_stated_level():
    """Under the null (x independent of T) the re-split distribution is exact and z is about
    N(0, 1): at z < -3 the nominal rate is Phi(-3) = 0.13 %, so of 300 fresh samples 0.4 are
    expected flagged and 4 or more has probability 8e-4 under that rate: at most 3."""
    z, _ = _z_values(1.0, 300, seed=0)
    assert int((z < COPYING_Z).sum()) <= 3
    # the standardisation: mean 0 and sd 1 up to the simulation's noise (sd of the mean of
    # 300 draws is 0.06; of the sd, 0.04): 4 and 5 standard errors of room
    assert abs(float(z.mean())) < 0.25
    assert 0.8 < float(z.std()) < 1.2
    # the flag's level rests on the left tail being normal, which 300 draws cannot show at
    # -3 (a 1 % flag rate would pass the count above 65 % of the time): the tail at the
    # one-sided 5 % point, 15 +- 2.5 binomial sd (9.4) of 300 (measured 9), and the whole
    # distribution against N(0, 1) by Kolmogorov-Smirnov at 1 % (measured p = 0.89)
    assert 6 <= int((z < -1.645).sum()) <= 24
    assert stats.kstest(z.numpy(), "norm").pvalue > 0.01


def test_an_under_dispersed_sample_is_not_read_as_copying_though_c_t_reads_it_so():
    """A sample at 0.4 x the target's spread, independent of T: as near T as V, so z stays
    about N(0, 1) (at most 3 of 150 flagged, as above), while Meehan et al.'s C_T, which
    compares the particles' distances to T with held-out points' distances to T, flags it in
    at least a third of the draws (measured: 54 of 100)."""
    z, ct = _z_values(0.4, 150, seed=1, with_ct=True)
    assert int((z < COPYING_Z).sum()) <= 3
    assert abs(float(z.mean())) < 0.3
    assert int((ct < -3.0).sum()) >= 50


def test_copies_and_near_copies_of_the_training_split_are_flagged():
    gen = _gen(2)
    for trial in range(10):
        train, heldout = _normal(100, 2, gen), _normal(1000, 2, gen)
        copies = train[torch.randint(0, 100, (300,), generator=gen)]
        near = copies + 0.05 * torch.randn(300, 2, generator=gen, dtype=torch.float64)
        # exact copies: every term of s is log(delta / d_V) ~ -18 on the true split, and a
        # re-split puts each of the ~63 distinct copied points on either side, so the null sd
        # is ~18 / sqrt(63) and z ~ -sqrt(63) ~ -8; no re-split is as extreme (p = 1 / (B + 1))
        exact = train_proximity(copies, train, heldout, seed=trial)
        assert exact.value < -6.0 and exact.info["p_value"] == 1 / (proximity.RESPLITS + 1)
        # training points plus noise at 1/4 of the typical nearest-neighbour distance (~0.2)
        assert train_proximity(near, train, heldout, seed=trial).value < COPYING_Z


def test_the_nearest_k_shortcut_equals_the_full_sort(monkeypatch):
    """Only the K nearest pool points of a particle are looked at per re-split; with K = 2n
    (every pool point, the brute-force statistic) the result is the same to rounding, here
    with K = 4 so that rows whose K nearest carry one label take the fallback too."""
    gen = _gen(3)
    train, heldout, x = _normal(40, 3, gen), _normal(60, 3, gen), _normal(50, 3, gen, 0.7)
    monkeypatch.setattr(proximity, "NEAREST", 4)
    short = train_proximity(x, train, heldout, seed=5)
    monkeypatch.setattr(proximity, "NEAREST", 10_000)
    full = train_proximity(x, train, heldout, seed=5)
    assert short.info["s"] == pytest.approx(full.info["s"], rel=1e-12)
    assert short.value == pytest.approx(full.value, rel=1e-10)
    # both sides are cut to n = 40 points (the held-out 60 by a seeded permutation); the
    # observed statistic itself is checked by hand in the next test
    assert full.info["n_each"] == 40 and math.isfinite(full.value)


def test_the_observed_statistic_matches_a_direct_computation():
    gen = _gen(4)
    train, heldout, x = _normal(30, 2, gen), _normal(30, 2, gen), _normal(20, 2, gen)
    res = train_proximity(x, train, heldout, seed=0)
    d_t = torch.cdist(x, train).min(1).values
    d_v = torch.cdist(x, heldout).min(1).values
    assert res.info["s"] == pytest.approx(float(torch.log(d_t / d_v).mean()), rel=1e-6)


def test_bad_input_is_refused():
    gen = _gen(5)
    train, heldout, x = _normal(30, 2, gen), _normal(30, 2, gen), _normal(20, 2, gen)
    with pytest.raises(MetricError):
        train_proximity(x, train, heldout, resplits=5)
    with pytest.raises(MetricError):
        train_proximity(x, train[:1], heldout)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(MetricError):
        train_proximity(bad, train, heldout)


def test_the_registered_metric_flags_below_minus_three():
    metric = get_metric("train_proximity")
    assert metric.joins == "data_copying" and not metric.ranked and metric.flag_label == "copying"
    assert metric.flags(-3.5) and not metric.flags(-2.5)
    # the C_T reading keeps its value but no longer flags
    assert get_metric("data_copying").flag_below is None
