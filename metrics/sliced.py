"""Sliced Wasserstein distance SW_2^2 (squared), with exact 1-D quantile matching.

SW_2^2(mu, nu) = E_theta W_2^2(theta#mu, theta#nu), theta uniform on the unit sphere S^{d-1},
estimated with P directions from a seeded generator. For empirical 1-D measures with m and n
atoms, W_2^2 = int_0^1 (F^{-1}(t) - G^{-1}(t))^2 dt is computed exactly: both quantile
functions are step functions, constant between the merged breakpoints {i/m} U {j/n}.
Squared units, like the Sinkhorn divergence; a pure shift by mu gives exactly |mu|^2 / d in
expectation over theta (E <theta, mu>^2 = |mu|^2 / d).
"""

from __future__ import annotations

import torch
from torch import Tensor

from metrics.base import MetricContext, MetricError, MetricResult, check_clouds, register_metric

DEFAULT_DIRECTIONS = 500


def random_directions(d: int, n_directions: int, *, seed: int, device: torch.device) -> Tensor:
    """(P, d) i.i.d. uniform directions on S^{d-1} (normalised Gaussians), seeded on the CPU."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    theta = torch.randn(n_directions, d, generator=gen, dtype=torch.float64)
    return (theta / theta.norm(dim=1, keepdim=True)).to(device)


def wasserstein_1d_sq(u: Tensor, v: Tensor) -> Tensor:
    """Exact W_2^2 between uniform empirical 1-D measures, batched: u (P, m), v (P, n) -> (P,).

    Merged breakpoints t_k of {i/m} U {j/n}; on (t_{k-1}, t_k] the quantiles are
    u_(ceil(t m)), v_(ceil(t n)), evaluated at the interval midpoint.
    """
    m, n = u.shape[1], v.shape[1]
    u, v = u.sort(dim=1).values, v.sort(dim=1).values
    grid = torch.cat(
        [
            torch.arange(1, m + 1, dtype=torch.float64, device=u.device) / m,
            torch.arange(1, n + 1, dtype=torch.float64, device=u.device) / n,
        ]
    )
    t = torch.unique(torch.cat([grid.new_zeros(1), grid]))  # sorted, 0 ... 1
    widths = t[1:] - t[:-1]
    mid = 0.5 * (t[1:] + t[:-1])
    iu = torch.floor(mid * m).long().clamp_(0, m - 1)
    iv = torch.floor(mid * n).long().clamp_(0, n - 1)
    return ((u[:, iu] - v[:, iv]) ** 2 * widths).sum(dim=1)


def sliced_wasserstein(
    x: Tensor, y: Tensor, *, n_directions: int = DEFAULT_DIRECTIONS, seed: int = 0
) -> MetricResult:
    """SW_2^2 between x (m, d) and y (n, d) over ``n_directions`` seeded random directions.

    info: n_directions, seed, squared=True, std_error (Monte Carlo standard error over theta).
    """
    if n_directions < 1:
        raise MetricError(f"n_directions must be >= 1, got {n_directions}")
    x, y = check_clouds(x, y)
    theta = random_directions(x.shape[1], n_directions, seed=seed, device=x.device)
    per_direction = wasserstein_1d_sq(theta @ x.T, theta @ y.T)
    std_error = float(per_direction.std() / n_directions**0.5) if n_directions > 1 else 0.0
    info = {"n_directions": n_directions, "seed": seed, "squared": True, "std_error": std_error}
    return MetricResult(float(per_direction.mean()), True, info)


@register_metric(
    "sliced_wasserstein",
    needs={"reference", "seed"},
    description="Sliced Wasserstein SW_2^2 between the particles and the reference",
)
def sliced_wasserstein_metric(ctx: MetricContext) -> MetricResult:
    """SW_2^2 with DEFAULT_DIRECTIONS directions drawn from ``ctx.seed``."""
    return sliced_wasserstein(ctx.particles, ctx.reference, seed=ctx.seed)
