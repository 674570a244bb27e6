"""Targets on bounded supports (family ``bounded``): uniform square and disk, a product of
Betas, a Dirichlet on the 2-simplex. All have a density in R^2.

Scores. Beta and Dirichlet give the analytic score inside the support; outside it the
score is undefined and is returned as NaN (log_prob is -inf there), so a sampler that
steps out of the support records a divergence instead of following an invented gradient.
The uniform targets give ``log_prob`` (constant inside, -inf outside) but report **no**
score (``has_score`` False): the score is zero inside and a surface delta on the
boundary, so "exact" zero scores would turn Langevin dynamics into a free random walk that
leaves the support and SVGD into pure repulsion. Score-driven samplers therefore use the
KDE score of the training split there (``samplers.core.scores.resolve_score``), which does pull
particles back towards the data.

``bounds`` is set only where the support *is* a box (square, product Beta); the disk and
the simplex are not boxes, so they leave it None.

Beta/Dirichlet samplers use integer shape parameters: Gamma(k, 1) is a sum of k i.i.d.
Exp(1) variables, Beta(a, b) = G_a / (G_a + G_b) and Dirichlet(alpha) = G / sum(G),
exact and driven by the given ``torch.Generator`` only.

Metric eps (family choice, standardised space): 0.05 x the median squared pairwise
distance, as for the 2-D mixtures and manifolds: a blur sqrt(eps) of about 0.4 standardised
units, small against the supports (about 3.5 units wide), and the smallest fraction at which
POT's standard iterations stay accurate (DESIGN.md). A half-support sample is 20x or more
above the noise floor of fresh samples (``results/targets/calibration.md``); the calibration
test in ``tests/test_targets.py`` asserts >= 3x.
"""

from __future__ import annotations

import math

import torch
from scipy import stats
from torch import Tensor

from datasets.base import Target, TargetError, register_target
from datasets.calibration import HalfSupportCorruption
from datasets.regions import UniformDensity, UpperCapRightHalf


def gamma_integer_shapes(n: int, shapes: list[int], gen: torch.Generator) -> Tensor:
    """``(n, len(shapes))`` independent Gamma(k, 1) draws for integer shapes k >= 1.

    Gamma(k, 1) = sum of k i.i.d. Exp(1); all exponentials are drawn in one call.
    """
    total = sum(shapes)
    e = torch.empty(n, total, dtype=torch.float64).exponential_(1.0, generator=gen)
    seg = torch.repeat_interleave(torch.arange(len(shapes)), torch.tensor(shapes))
    groups = torch.zeros(total, len(shapes), dtype=torch.float64)
    groups[torch.arange(total), seg] = 1.0
    return e @ groups


def _check_integer_shapes(values: tuple[float, ...], what: str) -> list[int]:
    out = [int(v) for v in values]
    if any(v != o or o < 1 for v, o in zip(values, out, strict=True)):
        raise TargetError(f"{what} must be integers >= 1 (exact Gamma sums), got {values}")
    return out


class UniformBox(UniformDensity, HalfSupportCorruption, Target):
    """Uniform on the box [lo, hi]^d. log p = -sum log(hi - lo) inside, -inf outside; no score.

    Cap: ``x_2 > lo + 0.85 (hi - lo)`` (15 %). Wrong sample: ``x_1 < (lo + hi) / 2``.
    """

    def __init__(
        self,
        name: str,
        dim: int = 2,
        lo: float = 0.0,
        hi: float = 1.0,
        metric_eps_fraction: float = 0.05,
    ) -> None:
        if not lo < hi:
            raise TargetError(f"need lo < hi, got {lo}, {hi}")
        lo_t = torch.full((dim,), float(lo), dtype=torch.float64)
        hi_t = torch.full((dim,), float(hi), dtype=torch.float64)
        super().__init__(
            name,
            dim,
            "bounded",
            metric_eps_fraction,
            f"uniform on [{lo}, {hi}]^{dim}",
            bounds=(lo_t, hi_t),
        )
        self.lo, self.hi = float(lo), float(hi)
        self.log_volume = self.dim * math.log(self.hi - self.lo)

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        u = torch.rand(n, self.dim, generator=gen, dtype=torch.float64)
        return self.lo + (self.hi - self.lo) * u

    def inside(self, x: Tensor) -> Tensor:
        return ((x >= self.lo) & (x <= self.hi)).all(dim=1)

    def cap_mask(self, x: Tensor) -> Tensor:
        axis = 1 if self.dim > 1 else 0
        return x[:, axis] > self.lo + 0.85 * (self.hi - self.lo)

    def wrong_mask(self, x: Tensor) -> Tensor:
        return x[:, 0] < 0.5 * (self.lo + self.hi)


class ProductBeta(HalfSupportCorruption, Target):
    """Product of Beta(a_i, b_i) on [0, 1]^d (integer shapes).

    log p = sum_i [(a_i - 1) log x_i + (b_i - 1) log(1 - x_i) - log B(a_i, b_i)];
    score_i = (a_i - 1)/x_i - (b_i - 1)/(1 - x_i) inside, NaN outside.
    Cap: ``x_2 >`` its 85 % quantile. Wrong sample: ``x_1 <`` its median.
    """

    def __init__(
        self,
        name: str,
        a: tuple[float, ...],
        b: tuple[float, ...],
        metric_eps_fraction: float = 0.05,
    ) -> None:
        if len(a) != len(b) or not a:
            raise TargetError("a and b must be equally long, non-empty")
        a_int = _check_integer_shapes(tuple(a), "Beta shapes a")
        b_int = _check_integer_shapes(tuple(b), "Beta shapes b")
        dim = len(a_int)
        super().__init__(
            name,
            dim,
            "bounded",
            metric_eps_fraction,
            " x ".join(f"Beta({p},{q})" for p, q in zip(a_int, b_int, strict=True)),
            bounds=(torch.zeros(dim, dtype=torch.float64), torch.ones(dim, dtype=torch.float64)),
        )
        self.a_int, self.b_int = a_int, b_int
        self.a = torch.tensor(a_int, dtype=torch.float64)
        self.b = torch.tensor(b_int, dtype=torch.float64)
        self.log_beta = torch.lgamma(self.a) + torch.lgamma(self.b) - torch.lgamma(self.a + self.b)
        axis = 1 if dim > 1 else 0
        self.cap_threshold = float(stats.beta.ppf(0.85, a_int[axis], b_int[axis]))
        self.half_threshold = float(stats.beta.median(a_int[0], b_int[0]))

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        g = gamma_integer_shapes(n, self.a_int + self.b_int, gen)
        ga, gb = g[:, : self.dim], g[:, self.dim :]
        return ga / (ga + gb)

    def _inside(self, x: Tensor) -> Tensor:
        return ((x > 0) & (x < 1)).all(dim=1)

    def _log_prob(self, x: Tensor) -> Tensor:
        inside = self._inside(x)
        xs = torch.where(inside[:, None], x, torch.full_like(x, 0.5))  # keep grads finite
        a, b = self.a.to(x), self.b.to(x)
        lp = ((a - 1) * torch.log(xs) + (b - 1) * torch.log1p(-xs)).sum(1)
        lp = lp - self.log_beta.to(x).sum()
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def _score(self, x: Tensor) -> Tensor:
        a, b = self.a.to(x), self.b.to(x)
        s = (a - 1) / x - (b - 1) / (1 - x)
        return torch.where(self._inside(x)[:, None], s, torch.full_like(s, math.nan))

    def cap_mask(self, x: Tensor) -> Tensor:
        axis = 1 if self.dim > 1 else 0
        return x[:, axis] > self.cap_threshold

    def wrong_mask(self, x: Tensor) -> Tensor:
        return x[:, 0] < self.half_threshold


class Dirichlet2Simplex(HalfSupportCorruption, Target):
    """Dirichlet(alpha_1, alpha_2, alpha_3) on the 2-simplex, as its first two coordinates
    (x_1, x_2) with x_3 = 1 - x_1 - x_2 (integer alphas). Density on the open triangle
    {x_1, x_2 > 0, x_1 + x_2 < 1}:
    log p = lgamma(sum alpha) - sum lgamma(alpha_i) + sum_i (alpha_i - 1) log x_i;
    score_j = (alpha_j - 1)/x_j - (alpha_3 - 1)/x_3 (j = 1, 2) inside, NaN outside.
    Cap: ``x_2 >`` the 85 % quantile of its Beta(alpha_2, alpha_1 + alpha_3) marginal.
    Wrong sample: ``x_1 <`` the median of its Beta(alpha_1, alpha_2 + alpha_3) marginal.
    """

    def __init__(
        self,
        name: str,
        alpha: tuple[float, float, float],
        metric_eps_fraction: float = 0.05,
    ) -> None:
        if len(alpha) != 3:
            raise TargetError(f"alpha must have 3 entries, got {alpha}")
        alpha_int = _check_integer_shapes(tuple(alpha), "Dirichlet alpha")
        super().__init__(
            name,
            2,
            "bounded",
            metric_eps_fraction,
            f"Dirichlet{tuple(alpha_int)} on the 2-simplex, first 2 coordinates",
        )
        self.alpha_int = alpha_int
        self.alpha = torch.tensor(alpha_int, dtype=torch.float64)
        self.log_norm = float(torch.lgamma(self.alpha.sum()) - torch.lgamma(self.alpha).sum())
        a1, a2, a3 = alpha_int
        self.cap_threshold = float(stats.beta.ppf(0.85, a2, a1 + a3))
        self.half_threshold = float(stats.beta.median(a1, a2 + a3))

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        g = gamma_integer_shapes(n, self.alpha_int, gen)
        return (g / g.sum(dim=1, keepdim=True))[:, :2]

    @staticmethod
    def _full(x: Tensor) -> Tensor:
        return torch.cat([x, 1 - x.sum(dim=1, keepdim=True)], dim=1)

    def _inside(self, x: Tensor) -> Tensor:
        return (self._full(x) > 0).all(dim=1)

    def _log_prob(self, x: Tensor) -> Tensor:
        inside = self._inside(x)
        xs = torch.where(inside[:, None], x, torch.full_like(x, 1.0 / 3))  # keep grads finite
        lp = ((self.alpha.to(x) - 1) * torch.log(self._full(xs))).sum(1) + self.log_norm
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def _score(self, x: Tensor) -> Tensor:
        am1 = self.alpha.to(x) - 1
        full = self._full(x)
        s = am1[:2] / full[:, :2] - (am1[2] / full[:, 2])[:, None]
        return torch.where(self._inside(x)[:, None], s, torch.full_like(s, math.nan))

    def cap_mask(self, x: Tensor) -> Tensor:
        return x[:, 1] > self.cap_threshold

    def wrong_mask(self, x: Tensor) -> Tensor:
        return x[:, 0] < self.half_threshold


class UniformDisk(UniformDensity, UpperCapRightHalf, Target):
    """Uniform on the unit disk: r = sqrt(U), angle ~ U[0, 2 pi). log p = -log pi inside,
    -inf outside; no score (see module docstring).
    Cap: ``x_2 > 0.6`` (a segment holding 14.2 % of the mass). Wrong sample: ``x_1 > 0``.
    """

    cap_threshold = 0.6
    log_volume = math.log(math.pi)

    def __init__(self, name: str = "uniform_disk", metric_eps_fraction: float = 0.05) -> None:
        super().__init__(name, 2, "bounded", metric_eps_fraction, "uniform on the unit disk in R^2")

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        u = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        r = torch.sqrt(u[:, 0])
        t = 2 * math.pi * u[:, 1]
        return torch.stack([r * torch.cos(t), r * torch.sin(t)], dim=1)

    def inside(self, x: Tensor) -> Tensor:
        return (x * x).sum(dim=1) <= 1


# ---------------------------------------------------------------------------------------
# Registered bounded targets
# ---------------------------------------------------------------------------------------
@register_target("uniform_square", "bounded")
def uniform_square() -> UniformBox:
    """Uniform on [0, 1]^2; cap: x_2 > 0.85."""
    return UniformBox("uniform_square", dim=2, lo=0.0, hi=1.0)


@register_target("beta_2_5x5_2", "bounded")
def beta_2_5x5_2() -> ProductBeta:
    """Beta(2, 5) x Beta(5, 2) on [0, 1]^2 (mass near the corner (0, 1))."""
    return ProductBeta("beta_2_5x5_2", a=(2, 5), b=(5, 2))


@register_target("dirichlet3", "bounded")
def dirichlet3() -> Dirichlet2Simplex:
    """Dirichlet(2, 3, 4) on the 2-simplex as (x_1, x_2): an interior mode at (1/6, 1/3)."""
    return Dirichlet2Simplex("dirichlet3", alpha=(2, 3, 4))


@register_target("uniform_disk", "bounded")
def uniform_disk() -> UniformDisk:
    """Uniform on the unit disk; cap: x_2 > 0.6."""
    return UniformDisk()
