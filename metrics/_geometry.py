"""Pairwise geometry shared by the metrics: squared distances, median heuristic, NN distances."""

from __future__ import annotations

import torch
from torch import Tensor


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """C_ij = |x_i - y_j|^2 for x (m, d), y (n, d) -> (m, n), clamped at 0.

    Expanded form |x|^2 + |y|^2 - 2 x.y, in place, so no (m, n, d) tensor; callers centre the
    clouds to limit cancellation.
    """
    c = x @ y.T
    c.mul_(-2.0).add_((x * x).sum(1)[:, None]).add_((y * y).sum(1)[None, :])
    return c.clamp_min_(0.0)


def median_pairwise_sq(z: Tensor, *, max_points: int = 2000, seed: int = 0) -> float:
    """Median of |z_a - z_b|^2 over distinct pairs a < b of z (n, d), n >= 2.

    Above ``max_points`` rows, a seeded random subset of ``max_points`` rows is used.
    """
    z = z.to(torch.float64)
    if z.shape[0] > max_points:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        idx = torch.randperm(z.shape[0], generator=gen)[:max_points].to(z.device)
        z = z[idx]
    z = z - z.mean(0)
    c = squared_distances(z, z)
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    return float(c[iu[0], iu[1]].median())


def nearest_neighbour_distances(x: Tensor, pool: Tensor, *, chunk: int = 1024) -> Tensor:
    """min_k |x_i - pool_k| for x (m, d), pool (N, d) -> (m,), in row chunks of x so that
    memory stays O(chunk N)."""
    centre = pool.mean(0)
    x, pool = x - centre, pool - centre
    out = [squared_distances(part, pool).min(dim=1).values for part in x.split(chunk)]
    return torch.cat(out).sqrt()
