"""Data-copying readings: does a sampler reproduce its training split instead of the target?

Two readings, both diagnostics (unranked: the right value is "like fresh samples", not the
lowest one):

``generalisation_gap`` (Feydy's S_eps at the suite's eps):

    gap = S_eps(x, train') / S_eps(x, reference),

train' = the training split subsampled (seeded) to the reference's size, so both terms
compare x with equally large samples. A sampler independent of the training draw gives
about 1 (both splits are fresh samples of the target; the ``exact`` row shows the value of
fresh samples); one that reproduces its training points gives S(x, train') far below
S(x, reference), a ratio well below 1.

``data_copying`` (Meehan, Chaudhuri & Dasgupta 2020, "A non-parametric test to detect
data-copying in generative models", the statistic C_T): partition space into k cells by
k-means on the training split T; in each cell pi compare the distances to the nearest
training point, d(u) = min_t |u - t|, of the generated points Q_m(pi) against those of
held-out points P_n(pi) (the reference) with the Mann-Whitney U statistic

    U_pi = #{(q, p): d(q) > d(p)} + #{ties} / 2,
    Z_pi = (U_pi - m_pi n_pi / 2) / sqrt(m_pi n_pi (m_pi + n_pi + 1) / 12),

and combine the cells holding at least ``MIN_GENERATED`` generated points (Pi_tau),
weighted by their held-out mass w_pi = P_n(pi), as a weighted Stouffer Z:

    C_T = sum_{pi in Pi_tau} w_pi Z_pi / sqrt(sum_{pi in Pi_tau} w_pi^2).

Under the null (generated points as far from T as fresh points) every Z_pi is about
N(0, 1) and independent across cells, so C_T is about N(0, 1) whatever the number of cells
k; copying makes C_T strongly negative, over-smoothing (points pushed off the data)
positive. C_T < ``COPYING_THRESHOLD`` reads as copying, but a sample independent of T that
is concentrated near the modes (under-dispersed) is also nearer T than held-out points are,
and reads the same: so C_T is a reading, and the leaderboards' copying flag is the
exchangeability test of :mod:`metrics.proximity`, which tells the two apart.

Meehan et al. normalise by sum w (a weighted mean of the Z_pi), whose null spread is
~ 1/sqrt(k): a fixed threshold then means a different test at every k, and the copy signal
shrinks as k grows (each cell's Z scales like sqrt(points per cell)). With the sqrt(sum w^2)
normalisation a cell of n/k points contributes ~ sqrt(n/k) and k cells add up to ~ sqrt(n):
the copy signal no longer depends on k to first order (``results/metrics/copying_cells.md``
shows C_T against k for fresh, copied and quantised samples).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from torch import Tensor

from common.geometry import nearest_neighbour_distances
from common.random import make_generator, subsample_rows
from metrics.base import MetricContext, MetricError, MetricResult, check_clouds, register_metric
from metrics.sinkhorn import sinkhorn_divergence

COPYING_THRESHOLD = -3.0
"""C_T below -3 flags data-copying: C_T is about N(0, 1) for fresh samples at every k, so a
fresh-sample run is flagged with probability Phi(-3) = 0.13 % (C_T's null distribution is
checked by simulation in ``tests/metrics/test_readings.py``), while copies of training points
give C_T ~ -sqrt(3 n)."""

MIN_GENERATED = 20
"""Pi_tau: cells with fewer generated points are skipped (tau = 20 / m, as in Meehan et al.;
the normal approximation of U needs a few dozen points per side)."""

POINTS_PER_CELL = 40
"""Cell-count rule: k = min(m, n) // 40 cells (between 2 and ``MAX_CELLS``), so an average
cell holds about 40 generated and 40 held-out points: twice ``MIN_GENERATED``, so few
cells are skipped, and enough for the normal approximation of each cell's U."""

MAX_CELLS = 50
"""Upper end of the cell-count rule: beyond ~50 cells the k-means partition of a 300-1,000
point training split has cells of a handful of training points."""

#: the k values at which the calibration study and tests check the statistic (each where
#: k <= m / MIN_GENERATED, so that an average cell can hold the points a cell needs)
K_RANGE = (2, 3, 5, 7, 10, 15)


def cell_count(m: int, n: int) -> int:
    """k = clip(min(m, n) // POINTS_PER_CELL, 2, MAX_CELLS) for m generated and n held-out
    points (1 when fewer than 2 * MIN_GENERATED generated points)."""
    if m < 2 * MIN_GENERATED:
        return 1
    return int(min(MAX_CELLS, max(2, min(m, n) // POINTS_PER_CELL)))


def generalisation_gap(
    x: Tensor, train: Tensor, reference: Tensor, *, eps: float, seed: int = 0
) -> MetricResult:
    """S_eps(x, train') / S_eps(x, reference) for x (m, d), train (N, d), reference (n, d);
    train' = ``n`` training points chosen with ``seed`` when N > n. info: both divergences."""
    x, train = check_clouds(x, train)
    _, reference = check_clouds(x, reference)
    train_sub = subsample_rows(train, reference.shape[0], generator=make_generator(seed + 7919))
    s_train = sinkhorn_divergence(x, train_sub, eps=eps)
    s_ref = sinkhorn_divergence(x, reference, eps=eps)
    info = {
        "S_train": s_train.value,
        "S_reference": s_ref.value,
        "n_train_used": int(train_sub.shape[0]),
        "eps": eps,
    }
    if not (s_train.converged and s_ref.converged):
        info["message"] = "; ".join(
            str(r.info.get("message")) for r in (s_train, s_ref) if not r.converged
        )
        return MetricResult(float("nan"), False, info)
    if s_ref.value <= 0:
        raise MetricError("S(x, reference) <= 0: the ratio is undefined")
    return MetricResult(float(s_train.value / s_ref.value), True, info)


@register_metric(
    "generalisation_gap",
    needs={"reference", "train", "scale", "seed"},
    ranked=False,
    description="Generalisation gap: S_eps(particles, training split) / S_eps(particles, "
    "held-out reference) (about 1 for fresh samples, near 0 for copies of training points)",
)
def generalisation_gap_metric(ctx: MetricContext) -> MetricResult:
    """:func:`generalisation_gap` at eps = ``ctx.scale``."""
    if ctx.train is None or ctx.scale is None:
        raise MetricError("generalisation_gap needs the training split and the eps scale")
    return generalisation_gap(
        ctx.particles,
        ctx.train.to(ctx.particles.device),
        ctx.reference,
        eps=ctx.scale,
        seed=ctx.seed,
    )


def mann_whitney_z(a: np.ndarray, b: np.ndarray) -> float:
    """Z of the Mann-Whitney U of sample a (m,) against b (n,): U = #{a_i > b_j} + ties / 2
    (``scipy.stats.mannwhitneyu``'s statistic for a), Z = (U - mn/2) / sqrt(mn(m+n+1)/12)
    (no tie correction, as in Meehan et al.)."""
    m, n = len(a), len(b)
    u = float(stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").statistic)
    return (u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12)


def data_copying_statistic(
    x: Tensor,
    train: Tensor,
    heldout: Tensor,
    *,
    k: int | None = None,
    seed: int = 0,
    min_generated: int = MIN_GENERATED,
) -> MetricResult:
    """C_T of Meehan et al. (2020) for generated x (m, d), training split train (N, d) and
    held-out heldout (n, d): k-means cells of ``train`` (``k`` default: :func:`cell_count`;
    scikit-learn, ``random_state=seed``), per-cell Mann-Whitney Z of nearest-training-point
    distances, combined as sum w Z / sqrt(sum w^2) with w the held-out cell mass, over cells
    with >= ``min_generated`` generated points. info: k, cells used, their Z and weights,
    fraction of x in skipped cells."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x, train = check_clouds(x, train)
    _, heldout = check_clouds(x, heldout)
    m = x.shape[0]
    if k is None:
        k = cell_count(m, heldout.shape[0])
    if train.shape[0] < k:
        raise MetricError(f"data_copying needs >= {k} training points for its {k} cells")
    t_np = train.cpu().numpy()
    with threadpool_limits(1):  # OpenMP oversubscription makes a 1000-point fit take seconds
        km = KMeans(n_clusters=k, n_init=3, random_state=int(seed)).fit(t_np)
    cell_x = km.predict(x.cpu().numpy())
    cell_p = km.predict(heldout.cpu().numpy())
    d_x = nearest_neighbour_distances(x, train).cpu().numpy()
    d_p = nearest_neighbour_distances(heldout, train).cpu().numpy()
    z, w, used = [], [], []
    for c in range(k):
        gx, gp = d_x[cell_x == c], d_p[cell_p == c]
        if len(gx) < min_generated or len(gp) == 0:
            continue
        z.append(mann_whitney_z(gx, gp))
        w.append(len(gp) / len(d_p))
        used.append(c)
    info = {
        "k": k,
        "cells_used": len(used),
        "cell_z": [round(v, 4) for v in z],
        "cell_weight": [round(v, 4) for v in w],
        "fraction_generated_skipped": float(1 - np.isin(cell_x, used).mean()),
        "threshold": COPYING_THRESHOLD,
    }
    if not used:
        info["message"] = f"no cell holds >= {min_generated} generated points"
        return MetricResult(float("nan"), False, info)
    value = float(np.dot(w, z) / math.sqrt(float(np.dot(w, w))))
    return MetricResult(value, True, info)


@register_metric(
    "data_copying",
    needs={"reference", "train", "seed"},
    ranked=False,
    description="Data-copying statistic C_T (Meehan et al. 2020, combined as a weighted "
    "Stouffer Z so that it is about N(0, 1) for fresh samples at any cell count): per-cell "
    "Mann-Whitney Z of nearest-training-point distances, particles vs held-out points (about "
    "0 for fresh samples, strongly negative for copies, but also for a sample concentrated "
    "near the modes; > 0 over-smoothing). A reading: the copying flag is train_proximity's",
)
def data_copying_metric(ctx: MetricContext) -> MetricResult:
    """:func:`data_copying_statistic` with the reference as the held-out sample."""
    if ctx.train is None:
        raise MetricError("data_copying needs the training split (ctx.train)")
    return data_copying_statistic(
        ctx.particles, ctx.train.to(ctx.particles.device), ctx.reference, seed=ctx.seed
    )
