"""A small, independent Sinkhorn divergence for the target tests (torch, float64).

S_eps(x, y) = OT_eps(x, y) - OT_eps(x, x)/2 - OT_eps(y, y)/2, cost |x - y|^2, uniform
weights, OT_eps = <P, C> + eps KL(P | a x b) including its entropic term (Feydy et al.
2019). Plain matrix-scaling Sinkhorn (P = diag(u) K diag(v), K = exp(-C / eps)), which is
accurate at the eps fractions the targets declare (>= 0.05 x median cost, DESIGN.md);
every solve checks its row-marginal error and raises instead of returning a stale value.
The symmetric terms OT_eps(x, x) use the symmetric fixed point u <- sqrt(u a / (K u))
(P = diag(u) K diag(u)): plain alternating updates oscillate there and stall near a 1e-7
marginal error on some clouds.
Used until ``metrics/sinkhorn.py`` is on main.
"""

from __future__ import annotations

import torch
from torch import Tensor


class SinkhornNotConverged(RuntimeError):
    """The reference Sinkhorn did not reach its marginal tolerance."""


def entropic_ot(x: Tensor, y: Tensor, eps: float, *, tol: float = 1e-8, max_iter: int = 20000):
    """OT_eps(x, y) between uniform clouds ``(n, d)``, ``(m, d)`` and the iterations used."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    cost = torch.cdist(x, y).pow(2)
    kernel = torch.exp(-cost / eps)
    a = torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=torch.float64)
    b = torch.full((y.shape[0],), 1.0 / y.shape[0], dtype=torch.float64)
    u, v = torch.ones_like(a), torch.ones_like(b)
    if x is y:
        return _symmetric_entropic_ot(kernel, a, eps, tol=tol, max_iter=max_iter)
    for it in range(1, max_iter + 1):
        u = a / (kernel @ v)
        v = b / (kernel.T @ u)
        if it % 10 == 0:
            if not (bool(torch.isfinite(u).all()) and bool(torch.isfinite(v).all())):
                raise SinkhornNotConverged(f"scalings overflowed at eps = {eps:.3g}")
            row = u * (kernel @ v)
            if float((row - a).abs().sum()) < tol:
                col = v * (kernel.T @ u)
                value = eps * (row @ (u.log() - a.log()) + col @ (v.log() - b.log()))
                return float(value), it
    raise SinkhornNotConverged(f"no convergence in {max_iter} iterations at eps = {eps:.3g}")


def _symmetric_entropic_ot(kernel: Tensor, a: Tensor, eps: float, *, tol: float, max_iter: int):
    u = torch.ones_like(a)
    for it in range(1, max_iter + 1):
        u = torch.sqrt(u * a / (kernel @ u))
        if it % 10 == 0:
            if not bool(torch.isfinite(u).all()):
                raise SinkhornNotConverged(f"scalings overflowed at eps = {eps:.3g}")
            row = u * (kernel @ u)
            if float((row - a).abs().sum()) < tol:
                return float(2 * eps * (row @ (u.log() - a.log()))), it
    raise SinkhornNotConverged(f"no convergence in {max_iter} iterations at eps = {eps:.3g}")


def sinkhorn_divergence_reference(x: Tensor, y: Tensor, eps: float) -> float:
    """Debiased S_eps(x, y) as a float (raises :class:`SinkhornNotConverged`)."""
    xy, _ = entropic_ot(x, y, eps)
    xx, _ = entropic_ot(x, x, eps)
    yy, _ = entropic_ot(y, y, eps)
    return xy - 0.5 * (xx + yy)
