"""Tests of the readings beside S_eps (support error, data-copying, C2ST) against
independent brute-force computations and the constructed cases of issue 13: exact samples,
copies of training points, off-support blur, disjoint clouds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.geometry import relative_eps
from datasets import StandardisedTarget, get_target
from metrics.base import get_metric
from metrics.c2st import FOLDS, c2st_accuracy
from metrics.copying import (
    COPYING_THRESHOLD,
    K_RANGE,
    MIN_GENERATED,
    cell_count,
    data_copying_statistic,
    generalisation_gap,
    mann_whitney_z,
)

F64 = torch.float64


def _setup(name: str, n_train: int = 1000, n_ref: int = 1000, n_exact: int = 300):
    """(standardised target, train, reference, exact) as the runner prepares them."""
    base = get_target(name)
    raw = base.sample(n_train, seed=1)
    target = StandardisedTarget.from_samples(base, raw)
    return (
        target,
        target.to_standard(raw),
        target.sample(n_ref, seed=2),
        target.sample(n_exact, seed=3),
    )


def _blur(x: torch.Tensor, level: float, seed: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return x + level * torch.randn(x.shape, generator=gen, dtype=F64)


# -- support error ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["circle", "uniform_disk"])
def test_support_error_matches_brute_force_distance_in_original_units(name: str) -> None:
    """Mean distance to a dense support sample (original units) = the metric to within the
    dense sample's covering radius (mean of per-point errors each in [0, covering])."""
    target, train, ref, exact = _setup(name)
    x = _blur(exact, 0.3)
    base = target.base
    if name == "circle":
        dense = base.sample(100_000, seed=9)
    else:  # the closed disk: a grid inside plus its rim
        g = torch.linspace(-1, 1, 401, dtype=F64)
        grid = torch.cartesian_prod(g, g)
        t = torch.linspace(0, 2 * np.pi, 20_000, dtype=F64)
        dense = torch.cat([grid[grid.norm(dim=1) <= 1], torch.stack([t.cos(), t.sin()], 1)])
    brute = torch.cdist(target.to_original(x), dense).min(dim=1).values
    covering = float(torch.cdist(base.sample(300, seed=10), dense).min(dim=1).values.max())
    res = get_metric("support_error").on(x, ref, target=target)
    assert res.value <= float(brute.mean()) + 1e-12
    assert res.value >= float(brute.mean()) - 2 * covering
    assert res.info["p90"] == pytest.approx(float(torch.quantile(brute, 0.9)), abs=2 * covering)
    assert res.value > 0.01  # the blur is seen (measured 0.016 on the disk, 0.17 on the circle)


def test_support_error_zero_for_exact_samples_and_counts_points_outside() -> None:
    target, train, ref, exact = _setup("uniform_square")
    metric = get_metric("support_error")
    assert metric.on(exact, ref, target=target).value < 1e-12
    assert metric.on(exact, ref, target=target).info["fraction_off_support"] == 0.0
    # move exactly the first 30 points 0.2 (original units) past the right edge x_1 = 1
    raw = target.to_original(exact)
    raw[:30, 0] = 1.2
    res = metric.on(target.to_standard(raw), ref, target=target)
    assert res.info["fraction_off_support"] == pytest.approx(30 / 300)
    assert res.value == pytest.approx(0.2 * 30 / 300, rel=1e-9)
    assert metric.automatic and metric.unmet_needs(target) == []
    assert metric.unmet_needs(get_target("ring8")) == ["support_distance"]


# -- generalisation gap ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("particles", "match"),
    [
        (torch.zeros(5, 3, dtype=torch.float64), "dimension 3, the target 'circle' has 2"),
        (torch.zeros(5, dtype=torch.float64), "non-empty"),
        (torch.zeros(0, 2, dtype=torch.float64), "non-empty"),
        (torch.full((5, 2), float("nan"), dtype=torch.float64), "NaN"),
        (torch.full((5, 2), float("inf"), dtype=torch.float64), "NaN or infinite"),
    ],
)
def test_support_error_refuses_clouds_it_cannot_score(particles, match) -> None:
    """A wrong dimension used to read as a distance (3-D particles on the circle gave 0.65,
    converged) and NaN as a converged NaN: each is a MetricError, which a run records as a
    failed metric row instead of a number."""
    from metrics.base import MetricContext, MetricError

    ctx = MetricContext(
        particles, torch.zeros(4, 2, dtype=torch.float64), target=get_target("circle")
    )
    with pytest.raises(MetricError, match=match):
        get_metric("support_error")(ctx)


def test_numpy_clouds_reach_the_training_split_metrics() -> None:
    """The documented NumPy input: the split-reading metrics called ``train.to(...)`` before
    validating and raised AttributeError; the context now views arrays as tensors."""
    from metrics.base import MetricContext

    rng = np.random.default_rng(0)
    x, ref, train = (rng.normal(size=(40, 2)) for _ in range(3))
    ctx = MetricContext(x, ref, train=train)
    tensors = MetricContext(*(torch.from_numpy(a) for a in (x, ref)), train=torch.from_numpy(train))
    for name in ("train_proximity", "memorisation"):
        assert get_metric(name)(ctx).value == get_metric(name)(tensors).value


def test_generalisation_gap_constructed_cases() -> None:
    target, train, ref, _ = _setup("uniform_square")
    eps = relative_eps(ref, 0.05)
    # the training split itself: S(train, train) = 0, so the gap is 0 (to solver tolerance)
    copy = generalisation_gap(train, train, ref, eps=eps)
    assert copy.converged and abs(copy.value) < 1e-3
    # fresh samples of the training size: both terms are fresh-vs-fresh noise floors
    fresh = generalisation_gap(target.sample(1000, seed=7), train, ref, eps=eps)
    assert 0.2 < fresh.value < 5.0
    # a larger training split is subsampled to the reference size
    big = torch.cat([train, target.sample(1000, seed=8)])
    res = get_metric("generalisation_gap").on(
        train[:300], ref, train=big, scale=eps, seed=0, target=target
    )
    assert res.info["n_train_used"] == ref.shape[0]


# -- data-copying test C_T -------------------------------------------------------------------


def test_mann_whitney_z_matches_pair_count() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    b = np.r_[rng.normal(0.5, 1, size=55), a[:5]]  # ties included
    u = (a[:, None] > b[None]).sum() + 0.5 * (a[:, None] == b[None]).sum()
    m, n = len(a), len(b)
    want = (u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12)
    assert mann_whitney_z(a, b) == pytest.approx(want, rel=1e-12)


def test_data_copying_matches_brute_force() -> None:
    """C_T recomputed from the same k-means cells with brute-force distances and U counts."""
    from sklearn.cluster import KMeans

    _, train, ref, exact = _setup("circle", n_train=400, n_ref=300, n_exact=200)
    x = _blur(exact, 0.02)
    res = data_copying_statistic(x, train, ref, k=4, seed=3)
    cells = KMeans(n_clusters=4, n_init=3, random_state=3).fit(train.numpy())
    cx, cp = cells.predict(x.numpy()), cells.predict(ref.numpy())
    dx = torch.cdist(x, train).min(1).values.numpy()
    dp = torch.cdist(ref, train).min(1).values.numpy()
    num = den = 0.0
    for c in range(4):
        a, b = dx[cx == c], dp[cp == c]
        if len(a) < 20 or len(b) == 0:
            continue
        u = (a[:, None] > b[None]).sum() + 0.5 * (a[:, None] == b[None]).sum()
        z = (u - len(a) * len(b) / 2) / np.sqrt(len(a) * len(b) * (len(a) + len(b) + 1) / 12)
        num += len(b) / len(dp) * z
        den += (len(b) / len(dp)) ** 2
    assert res.value == pytest.approx(num / np.sqrt(den), rel=1e-10)


@pytest.mark.parametrize("name", ["circle", "uniform_square"])
def test_data_copying_constructed_cases(name: str) -> None:
    """Copies: every generated distance is 0, so each cell's Z is its minimum
    -sqrt(3 m n / (m + n + 1)) (about -8 at 30 vs 100 points per cell): far below -3.
    Fresh samples: C_T ~ N(0, 1) (Stouffer combination), |C_T| < 3 is the flag's band.
    Blur of 0.1 standardised units: generated points sit farther from T than held-out
    points, C_T > 0 (measured +8 on the circle; on the square, a full-dimensional support,
    a blur moves nearest-training distances little: +0.4 at 0.1, +1.1 at 0.3, so the square
    is checked at 0.3 against 0.75, > 2 null standard deviations at k = 10)."""
    target, train, ref, exact = _setup(name)
    metric = get_metric("data_copying")
    copies = metric.on(train[:300], ref, train=train, seed=0, target=target)
    fresh = metric.on(exact, ref, train=train, seed=0, target=target)
    blur = metric.on(
        _blur(exact, 0.1 if name == "circle" else 0.3), ref, train=train, seed=0, target=target
    )
    assert copies.value < -6 and copies.value < COPYING_THRESHOLD
    assert abs(fresh.value) < 3 and fresh.value >= COPYING_THRESHOLD
    assert blur.value > (2.0 if name == "circle" else 0.75)
    # a reading now: the leaderboards' copying flag is train_proximity's (metrics/proximity.py)
    assert metric.flag_below is None and not metric.ranked


@pytest.mark.parametrize("k", K_RANGE)
def test_data_copying_flags_copies_and_never_fresh_samples_over_the_k_range(k: int) -> None:
    """Over the documented k range and both regimes' sizes (m = 300 particles from N = 1,000
    or N = 100 training points, against a 1,000-point reference), copies of training points
    (with repeats where m > N) are flagged at every k, and fresh exact samples never are across
    5 seeds (C_T is ~N(0, 1) for them: P(C_T < -3) = 0.13 % a run). The stated range is
    k <= m / MIN_GENERATED (an average cell can hold the MIN_GENERATED points a cell needs)."""
    for n_train, m in ((1000, 300), (100, 300)):
        if k > m // MIN_GENERATED:
            continue
        target, train, ref, _ = _setup("circle", n_train=n_train, n_ref=1000, n_exact=m)
        gen = torch.Generator().manual_seed(k)
        copies = train[torch.randint(0, n_train, (m,), generator=gen)]
        assert data_copying_statistic(copies, train, ref, k=k, seed=0).value < COPYING_THRESHOLD
        for seed in range(5):
            fresh = target.sample(m, seed=1000 + seed)
            value = data_copying_statistic(fresh, train, ref, k=k, seed=seed).value
            assert value >= COPYING_THRESHOLD, (k, n_train, m, seed, value)


def test_data_copying_null_level_by_simulation() -> None:
    """C_T of fresh samples is ~N(0, 1) at the default cell count: over 60 simulated runs
    (m = 300 vs a 1,000-point reference, k = 7) the sample mean is within 4 standard errors
    of 0 (|mean| < 4 / sqrt(60) = 0.52), the sd is in [0.7, 1.3] (the sd of a 60-draw sd is
    ~0.09, so this is a > 3-se band), and no run is flagged (expected 0.08 flags)."""
    target, train, ref, _ = _setup("circle", n_train=1000, n_ref=1000, n_exact=300)
    assert cell_count(300, 1000) == 7
    values = np.array(
        [
            data_copying_statistic(target.sample(300, seed=5000 + s), train, ref, seed=s).value
            for s in range(60)
        ]
    )
    assert abs(values.mean()) < 0.52
    assert 0.7 < values.std(ddof=1) < 1.3
    assert (values >= COPYING_THRESHOLD).all()
    # the flag's 0.13 % rests on C_T being normal in its tail, which 60 runs cannot count;
    # the whole distribution against N(0, 1) by Kolmogorov-Smirnov at 1 %
    from scipy import stats

    assert stats.kstest(values, "norm").pvalue > 0.01


# -- C2ST ------------------------------------------------------------------------------------


def test_c2st_matches_brute_force_nearest_neighbour_accuracy() -> None:
    """Same folds, classification by the brute-force nearest fitted point."""
    from sklearn.model_selection import StratifiedKFold

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(120, 2, generator=gen, dtype=F64) + 0.4
    y = torch.randn(120, 2, generator=gen, dtype=F64)
    res = c2st_accuracy(x, y, seed=4)
    g = torch.Generator(device="cpu").manual_seed(4)
    xs, ys = x[torch.randperm(120, generator=g)], y[torch.randperm(120, generator=g)]
    data, labels = torch.cat([xs, ys]), np.r_[np.ones(120), np.zeros(120)]
    accs = []
    for fit, test in StratifiedKFold(FOLDS, shuffle=True, random_state=4).split(data, labels):
        nearest = torch.cdist(data[test], data[fit]).argmin(dim=1).numpy()
        accs.append(float((labels[fit][nearest] == labels[test]).mean()))
    assert res.value == pytest.approx(np.mean(accs), abs=1e-12)


def test_c2st_constructed_cases() -> None:
    """Two exact samples: accuracy ~ 0.5 with sd ~ sqrt(0.25 / 600) = 0.02, so [0.4, 0.6] is
    a 5-sd band. Disjoint clouds (10 sd apart): every nearest neighbour has the right label.
    Circle with 0.1 blur: 1-NN sees the off-manifold points (measured 0.74)."""
    target, _, ref, exact = _setup("circle")
    metric = get_metric("c2st")
    assert 0.4 < metric.on(exact, ref, seed=0).value < 0.6
    assert metric.on(exact + 10.0, ref, seed=0).value > 0.99
    assert metric.on(_blur(exact, 0.1), ref, seed=0).value > 0.65
    assert metric.ranked and metric.lower_is_better


def test_small_inputs_are_named_not_left_to_scikit_learn() -> None:
    """c2st with fewer points than folds and data_copying with fewer training points than
    cells failed with scikit-learn's own wording; a run records these messages instead."""
    from metrics.base import MetricError
    from metrics.copying import data_copying_statistic

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    with pytest.raises(MetricError, match=f"c2st needs >= {FOLDS} points per cloud"):
        c2st_accuracy(x, x + 1.0)
    big = torch.randn(200, 2, generator=gen, dtype=torch.float64)
    with pytest.raises(MetricError, match="data_copying needs >= 4 training points"):
        data_copying_statistic(big, big[:2], big, k=4)


def test_class_tv_reads_the_classes_of_the_particles_in_original_units() -> None:
    """The metric relays the target's image report on the particles mapped back to original
    units: a stub target whose 'classifier' is the sign of the first original coordinate and
    whose standardisation shifts by 10. Particles at z = -9.5 (original +0.5) are all class
    1; real frequencies 1/2 each give TV = 1/2, which reading z itself (class 0) would not."""
    import copy

    from datasets import StandardisedTarget, get_target
    from metrics.base import MetricContext

    class Labelled(type(get_target("gaussian_2d"))):
        def image_report(self, x: torch.Tensor) -> dict:
            q = np.bincount((x[:, 0] > 0).long().numpy(), minlength=2) / x.shape[0]
            tv = 0.5 * float(np.abs(q - 0.5).sum())
            return {"class_tv": tv, "class_kl": 0.0, "classes_missing": [], "class_counts": q}

    base = copy.copy(get_target("gaussian_2d"))  # never the registry's object
    base.__class__ = Labelled
    target = StandardisedTarget(base, torch.full((2,), 10.0), torch.ones(2))
    particles = torch.full((8, 2), -9.5, dtype=torch.float64)
    ctx = MetricContext(particles, particles.clone(), target=target)
    assert get_metric("class_tv")(ctx).value == pytest.approx(0.5)
