"""Stein kernels from radial base kernels, the squared KSD and its gradient (pure functions).

Base kernel k(x, y) = phi(u), u = |x - y|^2. With r = x - y, s_x = s(x) the score,
    k_p(x, y) = s_x.s_y k + s_x.grad_y k + s_y.grad_x k + tr(grad_x grad_y k)
              = phi S_xy + 2 phi' (s_y - s_x).r - 4 u phi'' - 2 d phi',
and KSD^2 = (1/m^2) sum_ij k_p(x_i, x_j) (V-statistic, Korba et al. 2021).
Everything works on (m, m) matrices; no (m, m, d) tensor is formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from common.geometry import pairwise_sq_distances

BASE_KERNELS = ("gaussian", "imq")


@dataclass(frozen=True)
class RadialKernel:
    """phi(u) and its first three derivatives in u = |x - y|^2.

    gaussian: phi(u) = exp(-u / (2 h^2));  imq: phi(u) = (1 + u / h^2)^(-beta), beta = 1/2.
    """

    kind: str
    bandwidth: float
    beta: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in BASE_KERNELS:
            raise ValueError(f"base kernel must be one of {BASE_KERNELS}, got {self.kind!r}")
        if not (self.bandwidth > 0 and math.isfinite(self.bandwidth)):
            raise ValueError(f"kernel bandwidth must be a positive float, got {self.bandwidth!r}")
        if not 0 < self.bandwidth**2 < math.inf:  # h^2 divides every derivative
            raise ValueError(f"kernel bandwidth {self.bandwidth!r} squared leaves float64's range")

    def derivatives(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(phi, phi', phi'', phi''') at u (any shape)."""
        h2 = self.bandwidth**2
        if self.kind == "gaussian":
            phi = torch.exp(-u / (2.0 * h2))
            a = -1.0 / (2.0 * h2)
            return phi, a * phi, a * a * phi, a * a * a * phi
        b = self.beta
        base = 1.0 + u / h2
        phi = base.pow(-b)
        d1 = -b / h2 * phi / base
        d2 = -(b + 1.0) / h2 * d1 / base
        d3 = -(b + 2.0) / h2 * d2 / base
        return phi, d1, d2, d3

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """Kernel matrix k(x_i, y_j), (m, n)."""
        return self.derivatives(pairwise_sq_distances(x, y))[0]


def stein_kernel_matrix(x: Tensor, score: Tensor, kernel: RadialKernel) -> Tensor:
    """k_p(x_i, x_j) for particles x (m, d) with scores s(x) (m, d); returns (m, m)."""
    m, d = x.shape
    u = pairwise_sq_distances(x, x)
    phi, d1, d2, _ = kernel.derivatives(u)
    ss = score @ score.T
    xs = x @ score.T  # xs[a, j] = x_a . s_j
    t = torch.diagonal(xs)
    dr = xs + xs.T - t[:, None] - t[None, :]  # (s_j - s_a).(x_a - x_j)
    return phi * ss + 2.0 * d1 * dr - 4.0 * u * d2 - 2.0 * d * d1


def ksd_squared(x: Tensor, score: Tensor, kernel: RadialKernel) -> Tensor:
    """KSD^2 V-statistic (1/m^2) sum_ij k_p(x_i, x_j), a scalar tensor."""
    return stein_kernel_matrix(x, score, kernel).mean()


def ksd_squared_and_partials(
    x: Tensor, score: Tensor, kernel: RadialKernel
) -> tuple[Tensor, Tensor, Tensor]:
    """KSD^2 and its partial derivatives w.r.t. positions (scores held fixed) and scores.

    Returns (value, dL/dx (m, d), dL/ds (m, d)). The total gradient is
    dL/dx_a + J_s(x_a)^T dL/ds_a (see :func:`ksd_gradient`). With r = x_a - x_j:
      dL/ds_a = (2/m^2) sum_j [phi s_j - 2 phi' r],
      dL/dx_a = (2/m^2) sum_j [C_aj r + 2 phi' (s_j - s_a)],
      C = 2 phi' S + 4 phi'' (s_j - s_a).r - 8 phi'' - 8 u phi''' - 4 d phi''.
    """
    m, d = x.shape
    u = pairwise_sq_distances(x, x)
    phi, d1, d2, d3 = kernel.derivatives(u)
    ss = score @ score.T
    xs = x @ score.T
    t = torch.diagonal(xs)
    dr = xs + xs.T - t[:, None] - t[None, :]
    value = (phi * ss + 2.0 * d1 * dr - 4.0 * u * d2 - 2.0 * d * d1).mean()
    scale = 2.0 / (m * m)
    grad_s = scale * (phi @ score - 2.0 * (x * d1.sum(1, keepdim=True) - d1 @ x))
    c = 2.0 * d1 * ss + 4.0 * d2 * dr - 8.0 * d2 - 8.0 * u * d3 - 4.0 * d * d2
    grad_x = scale * (
        x * c.sum(1, keepdim=True) - c @ x + 2.0 * (d1 @ score - score * d1.sum(1, keepdim=True))
    )
    return value, grad_x, grad_s
