"""MMD with the Riesz kernel K(x, y) = -|x - y|^r, r in (0, 2): value and particle gradients.

F(x) = MMD^2(mu_x, nu_y) = (1/m^2) sum_ij K(x_i, x_j) - (2/(m N)) sum_ik K(x_i, y_k)
       + (1/N^2) sum_kl K(y_k, y_l)            (particles x (m, d), data y (N, d)).
The flows use the per-particle gradient g = m grad F (so a step size does not depend on m):
    g_a = -(2r/m) sum_j |x_a - x_j|^(r-2) (x_a - x_j) + (2r/N) sum_k |x_a - y_k|^(r-2) (x_a - y_k),
with the convention |0|^(r-2) * 0 = 0 (a subgradient for r <= 1).

Sliced version for r = 1 (Hertrich, Wald, Altekrueger & Hagemann, ICLR 2024): for xi
uniform on the sphere, E|<xi, z>| = |z| / c_d with c_d = sqrt(pi) Gamma((d+1)/2) / Gamma(d/2),
because E|xi_1| = Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)) by rotation invariance. Hence
-|x - y| = c_d E K_1(<xi, x>, <xi, y>) with the 1-D kernel K_1(s, t) = -|s - t|, and
    g_a = c_d E_xi [ g1_a(xi) xi ],
    g1_a = -(2/m) sum_j sign(t_a - t_j) + (2/N) sum_k sign(t_a - z_k),  t = X xi, z = Y xi,
where the sign sums are rank counts: sum_j sign(t_a - t_j) = 2 rank_a - (m - 1) and
sum_k sign(t_a - z_k) = 2 #{z_k < t_a} - N, computed by sorting in O((m + N) log(m + N)).
Averaging over P random directions is an unbiased estimate of the exact g.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from common import random
from common.geometry import pairwise_sq_distances

#: Above this many particle pairs m (m + N), ``gradient="auto"`` uses the sliced estimate
#: (r = 1 only). At d = 16 on one CPU core the exact gradient costs about as much as the
#: sliced one with 256 directions near m (m + N) = 1e7 (see tests/bench/test_bench_baselines).
AUTO_EXACT_MAX_PAIRS = 10_000_000


def sliced_constant(d: int) -> float:
    """c_d = sqrt(pi) Gamma((d+1)/2) / Gamma(d/2) = 1 / E|xi_1|, xi uniform on S^(d-1)."""
    return math.exp(0.5 * math.log(math.pi) + math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


def _power_weights(d2: Tensor, r: float) -> Tensor:
    """|z|^(r-2) from squared distances d2 (overwritten in place), 0 where z = 0."""
    zero = d2 <= 0
    d2.masked_fill_(zero, 1.0)
    if r == 1.0:
        d2.rsqrt_()
    else:
        d2.pow_(0.5 * r - 1.0)
    return d2.masked_fill_(zero, 0.0)


def _sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """|a_i - b_j|^2 (n_a, n_b) by the Gram expansion, in place, clamped at 0."""
    return pairwise_sq_distances(a, b, form="gemm_y_first")


def riesz_mmd_squared(x: Tensor, y: Tensor, r: float = 1.0, chunk_size: int = 2048) -> Tensor:
    """MMD^2 between the empirical measures of x (m, d) and y (N, d) for K = -|x - y|^r."""

    def mean_kernel(a: Tensor, b: Tensor, same: bool) -> Tensor:
        total = a.new_zeros(())
        for start in range(0, a.shape[0], chunk_size):
            d2 = _sq_dist(a[start : start + chunk_size], b)
            if same:  # self pairs exactly zero (the Gram expansion leaves round-off there)
                rows = torch.arange(d2.shape[0], device=d2.device)
                d2[rows, rows + start] = 0.0
            total = total - d2.pow(0.5 * r).sum()
        return total / (a.shape[0] * b.shape[0])

    return mean_kernel(x, x, True) - 2.0 * mean_kernel(x, y, False) + mean_kernel(y, y, True)


def riesz_gradient_exact(x: Tensor, y: Tensor, r: float = 1.0, chunk_size: int = 2048) -> Tensor:
    """g = m grad_x MMD^2 (m, d), exact pairwise sums in row chunks of ``chunk_size``.

    Cost O(m (m + N) d); memory O(chunk_size (m + N)).
    """
    m, n = x.shape[0], y.shape[0]
    out = []
    for start in range(0, m, chunk_size):
        xa = x[start : start + chunk_size]
        d2x = _sq_dist(xa, x)
        rows = torch.arange(xa.shape[0], device=x.device)
        d2x[rows, rows + start] = 0.0  # self pairs: exactly zero
        wx = _power_weights(d2x, r)
        wy = _power_weights(_sq_dist(xa, y), r)
        rep = xa * wx.sum(1, keepdim=True) - wx @ x
        att = xa * wy.sum(1, keepdim=True) - wy @ y
        out.append(2.0 * r * (att / n - rep / m))
    return torch.cat(out)


def random_directions(p: int, d: int, gen: torch.Generator, like: Tensor) -> Tensor:
    """p directions uniform on the unit sphere S^(d-1), (p, d)."""
    xi = random.randn(p, d, generator=gen, dtype=like.dtype, device=like.device)
    return xi / xi.norm(dim=1, keepdim=True)


def _argsort_rows(v: Tensor) -> Tensor:
    """argsort along dim 1; numpy's introsort on CPU (about 3x faster than torch.sort there)."""
    if v.device.type == "cpu":
        return torch.from_numpy(np.argsort(v.detach().numpy(), axis=1))
    return torch.argsort(v, dim=1)


def sliced_gradient_from_directions(x: Tensor, y: Tensor, directions: Tensor) -> Tensor:
    """Sliced estimate (r = 1) of g = m grad_x MMD^2 from given unit directions (P, d).

    c_d (1/P) sum_p g1(xi_p) xi_p. Per direction the projected particles and data are
    sorted together once; in sorted order the counts of data and of particles below each
    point are a cumulative sum, scattered back to the particles. Memory O(P (m + N)).
    """
    m, d = x.shape
    n = y.shape[0]
    proj = directions @ torch.cat([x, y]).T  # (P, m + N)
    order = _argsort_rows(proj).to(x.device)
    is_data = (order >= m).to(x.dtype)
    data_below = torch.cumsum(is_data, dim=1) - is_data
    position = torch.arange(m + n, device=x.device, dtype=x.dtype)
    particles_below = position - data_below
    g1_sorted = (2.0 / n) * (2.0 * data_below - n) - (2.0 / m) * (2.0 * particles_below - (m - 1))
    g1 = torch.empty_like(g1_sorted).scatter_(1, order, g1_sorted)[:, :m]  # (P, m)
    return sliced_constant(d) / directions.shape[0] * (g1.T @ directions)


def riesz_gradient_sliced(
    x: Tensor,
    y: Tensor,
    n_projections: int,
    gen: torch.Generator,
    chunk_directions: int = 128,
) -> Tensor:
    """Unbiased sliced estimate of g = m grad_x MMD^2 for r = 1 with ``n_projections``
    random directions, processed ``chunk_directions`` at a time. Cost O(P (m + N) log(m + N))."""
    d = x.shape[1]
    total = torch.zeros_like(x)
    done = 0
    while done < n_projections:
        p = min(chunk_directions, n_projections - done)
        xi = random_directions(p, d, gen, x)
        total = total + p * sliced_gradient_from_directions(x, y, xi)
        done += p
    return total / n_projections
