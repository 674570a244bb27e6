"""A differentiable debiased Sinkhorn divergence in torch (log domain), used as a training loss.

Entropic OT between uniform clouds x (n, d) and y (m, d) with cost C_ij = |x_i - y_j|^2:
    OT_eps(x, y) = max_{f,g} <a, f> + <b, g> - eps <a b^T, exp((f + g^T - C)/eps) - 1>,
which equals min_P <P, C> + eps KL(P | a b^T) (the full entropic value, entropic term included).
Debiased (Feydy et al. 2019): S_eps = OT_eps(x, y) - OT_eps(x, x)/2 - OT_eps(y, y)/2 >= 0.

The potentials are found by log-domain Sinkhorn iterations without autograd; the value is then
the dual objective evaluated at the detached potentials. By the envelope theorem its gradient
in C is the optimal plan P, so autograd through C(x, y) gives the exact gradient at convergence
(and memory stays O(n m), independent of the number of iterations). This module is a training
loss; the benchmark's headline metric lives in ``metrics/sinkhorn.py`` (POT based).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from common.geometry import pairwise_sq_distances


class SinkhornLossError(ValueError):
    """Bad input to the Sinkhorn loss (shape, NaN, non-positive eps)."""


@dataclass(frozen=True)
class EntropicOT:
    """value: OT_eps (a scalar tensor, differentiable in x and y); iterations; converged;
    f (n,), g (m,): the detached dual potentials; err: last max potential change / eps."""

    value: Tensor
    iterations: int
    converged: bool
    f: Tensor
    g: Tensor
    err: float


def _check(x: Tensor, y: Tensor, eps: float) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor) or t.ndim != 2 or t.shape[0] == 0:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise SinkhornLossError(f"{name} must be a non-empty (n, d) tensor, got {shape}")
        if not t.dtype.is_floating_point:
            raise SinkhornLossError(f"{name} must be floating point, got {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise SinkhornLossError(f"{name} contains NaN or infinite values")
    if x.shape[1] != y.shape[1]:
        raise SinkhornLossError(f"dimension mismatch: x has {x.shape[1]}, y has {y.shape[1]}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise SinkhornLossError(f"eps must be a positive finite float, got {eps!r}")


def _softmin(eps: float, cost: Tensor, h: Tensor, log_w: float) -> Tensor:
    """-eps log sum_j w_j exp((h_j - C_ij)/eps) for uniform weights w_j = exp(log_w)."""
    return -eps * torch.logsumexp((h[None, :] - cost) / eps + log_w, dim=1)


def _eps_schedule(max_cost: float, eps: float, scaling: float | None) -> list[float]:
    """Geometric eps_k = max_cost * scaling^k while above eps, then eps (empty: no scaling)."""
    if scaling is None or max_cost <= eps:
        return []
    n = int(math.ceil(math.log(eps / max_cost) / math.log(scaling)))
    return [max_cost * scaling**k for k in range(n)] + [eps]


def entropic_ot(
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    max_iters: int = 1000,
    tol: float = 1e-6,
    symmetric: bool | None = None,
    scaling: float | None = None,
    averaged: bool = False,
) -> EntropicOT:
    """Full entropic OT_eps between uniform clouds x (n, d) and y (m, d), log-domain Sinkhorn.

    Iterates f <- softmin_b(g - C), g <- softmin_a(f - C^T) until max |change| / eps < tol
    (a marginal error of about ``tol``) or ``max_iters``. ``symmetric`` (default: ``x is y``)
    uses the averaged fixed point f <- (f + softmin(f - C)) / 2, which converges in few steps.
    ``scaling`` in (0, 1) turns on eps-scaling (annealing): one update at each of
    eps_k = max C * scaling^k down to eps before iterating at eps, a warm start that cuts the
    iterations at small eps several-fold; the annealing updates count in ``iterations``.
    ``averaged`` uses simultaneous averaged updates for x, y distinct too (Feydy's symmetric
    scheme); alternating updates are usually faster but can crawl when y is (nearly) a copy of
    x at small eps, where the averaged scheme converges in a few dozen steps.
    The returned value is differentiable in x and y (gradient = plan-weighted cost gradient).
    """
    if scaling is not None and not (0.0 < scaling < 1.0):
        raise SinkhornLossError(f"scaling must be in (0, 1) or None, got {scaling!r}")
    _check(x, y, eps)
    if symmetric is None:
        symmetric = x is y
    n, m = x.shape[0], y.shape[0]
    log_a, log_b = -math.log(n), -math.log(m)
    with torch.no_grad():
        cost = pairwise_sq_distances(x.detach(), y.detach())
        f = torch.zeros(n, dtype=cost.dtype, device=cost.device)
        g = torch.zeros(m, dtype=cost.dtype, device=cost.device)
        schedule = _eps_schedule(float(cost.max()), eps, scaling)
        err = float("inf")
        it = 0
        for it in range(1, max_iters + 1):
            e = schedule[it - 1] if it <= len(schedule) else eps
            if symmetric:
                f_new = 0.5 * (f + _softmin(e, cost, f, log_a))
                err = float((f_new - f).abs().max()) / e
                f = g = f_new
            elif averaged:
                f_new = 0.5 * (f + _softmin(e, cost, g, log_b))
                g_new = 0.5 * (g + _softmin(e, cost.T, f, log_a))
                err = max(float((f_new - f).abs().max()), float((g_new - g).abs().max())) / e
                f, g = f_new, g_new
            else:
                f_new = _softmin(e, cost, g, log_b)
                g_new = _softmin(e, cost.T, f_new, log_a)
                err = max(float((f_new - f).abs().max()), float((g_new - g).abs().max())) / e
                f, g = f_new, g_new
            if it >= len(schedule) and err < tol:
                break
        if symmetric:
            # one plain (non-averaged) step: the exact fixed point map, sharpens the value
            f = g = _softmin(eps, cost, f, log_a)
    converged = err < tol
    c = pairwise_sq_distances(x, y)
    kernel = torch.exp((f[:, None] + g[None, :] - c) / eps + (log_a + log_b))
    value = f.mean() + g.mean() - eps * (kernel.sum() - 1.0)
    return EntropicOT(value, it, bool(converged), f, g, err)


def sinkhorn_divergence(
    x: Tensor, y: Tensor, eps: float, **solver: Any
) -> tuple[Tensor, dict[str, Any]]:
    """Debiased S_eps(x, y) = OT_eps(x, y) - OT_eps(x, x)/2 - OT_eps(y, y)/2, differentiable.

    x (n, d), y (m, d). ``solver``: the options of every solve, as :func:`entropic_ot` takes
    them (``max_iters``, ``tol``, ``scaling``, ``averaged``) with its defaults.
    Returns (value: scalar tensor, info: {"iterations": [xy, xx, yy], "converged": bool}).
    """
    _check(x, y, eps)
    xy = entropic_ot(x, y, eps, symmetric=False, **solver)
    xx = entropic_ot(x, x, eps, symmetric=True, **solver)
    yy = entropic_ot(y, y, eps, symmetric=True, **solver)
    value = xy.value - 0.5 * (xx.value + yy.value)
    info = {
        "iterations": [xy.iterations, xx.iterations, yy.iterations],
        "converged": xy.converged and xx.converged and yy.converged,
    }
    return value, info
