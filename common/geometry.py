"""Pairwise geometry shared by samplers, metrics and targets: squared distances, the
median heuristic, nearest-neighbour distances.

Squared distances are evaluated in the expanded form |x|^2 + |y|^2 - 2 x.y (no (m, n, d)
tensor). The order of the three terms changes the last bits of the result, and committed
results are reproduced bit for bit, so each caller names its evaluation order through
``form`` (all agree to rounding; ``tests/common/test_geometry.py`` checks them against the
direct difference form):

- ``"norms_first"``: (|x|^2 + |y|^2) - 2 x.y, one (m, n) temporary;
- ``"gemm"``: |x|^2 + |y|^2 accumulated into by BLAS (``addmm_``), no temporary;
- ``"gemm_y_first"``: (|y|^2 - 2 x.y) by ``addmm``, then + |x|^2 in place;
- ``"product_first"``: (-2 x.y + |x|^2) + |y|^2, all in place on the product;
- ``"cdist"``: ``torch.cdist(x, y) ** 2`` (exact differences for small clouds).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from common.random import make_generator, subsample_rows

SqDistanceForm = Literal["norms_first", "gemm", "gemm_y_first", "product_first", "cdist"]
FORMS: tuple[str, ...] = ("norms_first", "gemm", "gemm_y_first", "product_first", "cdist")


def pairwise_sq_distances(
    x: Tensor,
    y: Tensor,
    *,
    form: SqDistanceForm = "norms_first",
    chunk: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """C_ij = |x_i - y_j|^2 for x (m, d), y (n, d) -> (m, n), clamped at 0.

    ``form``: evaluation order (module docstring); ``chunk``: rows of x per block (memory of
    the temporaries O(chunk n) instead of O(m n); same values as unchunked); ``out``: an
    (m, n) buffer to fill and return instead of allocating (``form="gemm"`` only, the form
    that needs no temporary; same values)."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if out is not None:
        if form != "gemm" or chunk is not None:
            raise ValueError("out= is supported for form='gemm' without chunk only")
        torch.add((x * x).sum(1)[:, None], (y * y).sum(1)[None, :], out=out)
        return out.addmm_(x, y.T, alpha=-2.0).clamp_min_(0.0)
    if chunk is not None and x.shape[0] > chunk:
        return torch.cat([pairwise_sq_distances(p, y, form=form) for p in x.split(chunk)])
    if form == "cdist":
        return torch.cdist(x, y).pow(2)
    if form == "norms_first":
        return ((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T).clamp_min_(0.0)
    if form == "gemm":
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :]
        return d2.addmm_(x, y.T, alpha=-2.0).clamp_min_(0.0)
    if form == "gemm_y_first":
        d2 = torch.addmm((y**2).sum(1)[None, :], x, y.T, alpha=-2.0)
        return d2.add_((x**2).sum(1)[:, None]).clamp_min_(0.0)
    c = x @ y.T
    c.mul_(-2.0).add_((x * x).sum(1)[:, None]).add_((y * y).sum(1)[None, :])
    return c.clamp_min_(0.0)


def median_sq_distance(
    z: Tensor,
    max_points: int = 2000,
    *,
    subset: Literal["first", "random"] = "first",
    seed: int = 0,
    centre: bool = False,
    form: SqDistanceForm = "cdist",
) -> float:
    """Median of |z_a - z_b|^2 over distinct pairs a < b of z (n, d), n >= 2, as a float.

    Above ``max_points`` rows the ``first`` rows are used (the suite's eps and bandwidth
    rule), or a seeded ``random`` subset (``seed``). ``centre`` subtracts the mean first
    (limits cancellation in the expanded forms)."""
    z = z.to(torch.float64)
    if z.shape[0] > max_points:
        if subset == "first":
            z = z[:max_points]
        else:
            z = subsample_rows(z, max_points, generator=make_generator(seed))
    if centre:
        z = z - z.mean(0)
    d2 = pairwise_sq_distances(z, z, form=form)
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    return float(d2[iu[0], iu[1]].median())


def relative_eps(reference: Tensor, fraction: float, *, max_points: int = 2000) -> float:
    """eps = fraction x median |y_a - y_b|^2 over distinct pairs of the reference (n, d).

    The one eps rule of the project (runner and every study): above ``max_points`` rows the
    first ``max_points`` are used (``common.geometry.median_sq_distance``).
    """
    if not isinstance(reference, Tensor) or reference.ndim != 2 or reference.shape[0] < 2:
        raise ValueError("reference must be a (n, d) tensor with n >= 2")
    if not bool(torch.isfinite(reference).all()):
        raise ValueError("reference contains NaN or infinite values")
    if not fraction > 0:
        raise ValueError(f"fraction must be > 0, got {fraction}")
    return float(fraction * median_sq_distance(reference, max_points))


def median_bandwidth_sq(train: Tensor) -> float:
    """h^2 = median|X_a - X_b|^2 / (2 log(N + 1)) for X (N, d): the suite's median heuristic
    (KDE scores, diffusion-map eps)."""
    return median_sq_distance(train) / (2.0 * math.log(train.shape[0] + 1))


BANDWIDTH_REFERENCE_N = 1000
"""The training-set size at which :func:`reference_bandwidth_sq` equals the median heuristic."""


def reference_bandwidth_sq(train: Tensor, n_ref: int = BANDWIDTH_REFERENCE_N) -> float:
    """eps = median|X_a - X_b|^2 / (2 log(n_ref + 1)) for X (N, d): the median heuristic at a
    fixed reference size ``n_ref`` instead of N.

    The median of the pair distances is a consistent estimate of its population value, so
    this eps converges (at rate N^-1/2) to a bandwidth of the target alone; the diffusion-map
    operator at a fixed bandwidth converges as N grows (von Luxburg, Belkin & Bousquet 2008),
    so more data only lowers the estimate's variance. The N-dependent rule
    (:func:`median_bandwidth_sq`) shrinks eps like 1 / log N, and with it DMPS's out-of-sample
    flow changes (``results/dmps/more_data.md``). At N = n_ref both rules agree."""
    return median_sq_distance(train) / (2.0 * math.log(n_ref + 1))


def capped_median_bandwidth_sq(train: Tensor, n_cap: int = BANDWIDTH_REFERENCE_N) -> float:
    """eps = median|X_a - X_b|^2 / (2 log(min(N, n_cap) + 1)) for X (N, d): the median
    heuristic whose shrinkage with N stops at ``n_cap`` training points.

    Up to ``n_cap`` it is :func:`median_bandwidth_sq` (few points: a wide, well-conditioned
    kernel); from ``n_cap`` on it is :func:`reference_bandwidth_sq`, a bandwidth of the
    target that more data estimates better instead of narrowing. DMPS's out-of-sample field
    reaches ~ sqrt(eps) off the data, so a shrinking eps strands particles that a larger N
    should have helped (``results/dmps/more_data.md``)."""
    n = min(int(train.shape[0]), n_cap)
    return median_sq_distance(train) / (2.0 * math.log(n + 1))


def nearest_neighbour_distances(x: Tensor, pool: Tensor, *, chunk: int = 1024) -> Tensor:
    """min_k |x_i - pool_k| for x (m, d), pool (N, d) -> (m,); both centred on the pool's
    mean, rows of x in chunks so memory stays O(chunk N)."""
    centre = pool.mean(0)
    x, pool = x - centre, pool - centre
    parts = [
        pairwise_sq_distances(p, pool, form="product_first").min(dim=1).values
        for p in x.split(chunk)
    ]
    return torch.cat(parts).sqrt()
