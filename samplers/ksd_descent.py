"""Kernel Stein discrepancy descent (Korba, Aubin-Frankowski, Majewski & Ablin, ICML 2021).

Particles x (m, d) minimise L(x) = KSD^2 = (1/m^2) sum_ij k_p(x_i, x_j), the Stein kernel
k_p built from a radial base kernel and the target score s (see ``stein_kernels``). The
gradient is dL/dx_a = (partial in x_a at fixed scores) + J_s(x_a)^T (partial in s_a), the
first two analytic, the last one vector-Jacobian product by autograd through the score
(double backward through log p for targets given by a log density) or, for a score that
is not differentiable by torch, by a central finite difference of s along the vector,
which is exact to O(eps^2) because J_s = Hess log p is symmetric.

Known failure mode (Korba et al. 2021, Sec. 5): KSD only sees the score, which is blind to
the relative weights of well separated modes; KSD descent then stalls in spurious local
minima, e.g. particles stuck between the modes of a two-Gaussian mixture, or all in the
mode nearest to x0. The annealed variant (score scaled by beta < 1 for the first steps,
which flattens the target) is the paper's remedy; it helps but does not remove the issue.
The suite shows this on the mixture targets instead of hiding it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from common.geometry import median_sq_distance
from datasets.base import Target, TargetError
from samplers.base import RunRequest, Sampler, SamplerError, SampleResult, register_sampler
from samplers.core.scores import SCORE_SOURCES, resolve_score
from samplers.core.stein_kernels import BASE_KERNELS, RadialKernel, ksd_squared_and_partials
from samplers.params import Interval, OneOf, Positive

OPTIMISERS = ("lbfgs", "gd")


class NonFiniteScoreError(ArithmeticError):
    """The score is NaN/inf at some particles (e.g. outside a bounded support)."""


def _check_finite_score(s: Tensor) -> Tensor:
    bad = ~torch.isfinite(s).all(1)
    if bool(bad.any()):
        raise NonFiniteScoreError(
            f"score is non-finite at {int(bad.sum())} of {s.shape[0]} particles "
            "(outside the target's support?)"
        )
    return s


class DifferentiableScore:
    """A score s(x) (m, d) -> (m, d) together with J_s(x)^T v, the way the target allows.

    ``jacobian`` (set on first use) records how J_s^T v was computed: "autograd" (the
    score is torch-differentiable), "autograd_log_prob" (double backward through the
    target's log density) or "finite_difference" (central difference, step ``fd_eps``).
    """

    def __init__(self, fn, target: Target | None, source: str, fd_eps: float = 1e-5) -> None:
        self.fn = fn
        self.target = target
        self.source = source
        self.fd_eps = fd_eps
        self.jacobian: str | None = None
        self.n_evals = 0

    def _with_graph(self, xr: Tensor) -> Tensor:
        with torch.enable_grad():
            if self.jacobian == "autograd_log_prob":
                lp = self.target.log_prob(xr)
                (s,) = torch.autograd.grad(lp.sum(), xr, create_graph=True)
                return s
            return self.fn(xr)

    def value_and_vjp(self, x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """Return s(x) (detached) and a function v -> J_s(x)^T v."""
        xr = x.detach().requires_grad_(True)
        self.n_evals += 1
        s = self._with_graph(xr)
        if self.jacobian is None:
            if s.requires_grad:
                self.jacobian = "autograd"
            elif self.source == "exact" and self.target is not None and self.target.has_log_prob:
                self.jacobian = "autograd_log_prob"
                s = self._with_graph(xr)
            if not s.requires_grad:
                self.jacobian = "finite_difference"
        _check_finite_score(s.detach())
        if self.jacobian == "finite_difference":

            def vjp(v: Tensor) -> Tensor:
                norm = v.norm(dim=1, keepdim=True)
                unit = v / norm.clamp_min(1e-300)
                e = self.fd_eps
                self.n_evals += 2
                diff = self.fn(x + e * unit) - self.fn(x - e * unit)
                return _check_finite_score(diff / (2.0 * e) * norm)

            return s.detach(), vjp

        def vjp(v: Tensor) -> Tensor:
            (g,) = torch.autograd.grad(s, xr, v)
            return g

        return s.detach(), vjp


def ksd_loss_and_grad(
    x: Tensor, score: DifferentiableScore, kernel: RadialKernel, beta: float = 1.0
) -> tuple[Tensor, Tensor]:
    """KSD^2 of particles x (m, d) for the tempered score beta * s, and dKSD^2/dx (m, d)."""
    s, vjp = score.value_and_vjp(x)
    value, grad_x, grad_s = ksd_squared_and_partials(x, beta * s, kernel)
    return value.detach(), (grad_x + beta * vjp(grad_s)).detach()


@register_sampler
class KSDDescent(Sampler):
    """KSD descent: minimise the squared kernel Stein discrepancy of the particle cloud.

    Parameters (defaults):
        kernel = "gaussian"   base kernel: "gaussian" exp(-|x-y|^2/(2h^2)) or
                              "imq" (1 + |x-y|^2/h^2)^(-1/2).
        bandwidth = "median"  h^2 = median |X_a - X_b|^2 / 4 over the training split, which is
                              about d/2 on standardised targets (h = 1 in d = 2, the fixed
                              unit bandwidth of ksddescent's examples), or a float h.
                              Measured (300 particles, 300 L-BFGS steps, Sinkhorn vs the
                              reference): h = 1 is best or near-best on ring8, grid25 and
                              unbalanced2 (d = 2) but gives 2.54 on mixture10d where h = 2
                              gives 0.86 (exact samples: 0.29): the bandwidth must grow with d.
        optimiser = "lbfgs"   "lbfgs" (torch L-BFGS with strong-Wolfe line search, history
                              10, one iteration per step; the paper's recommended solver)
                              or "gd" (x <- x - step_size * m * dL/dx: the factor m makes
                              the step per particle, independent of m).
        step_size = 0.2       gradient-descent step (ignored by L-BFGS); larger steps throw
                              particles far out early (measured on N(0, I_2) from a shifted
                              start: 0.2 converges in 300 steps, 1.0 leaves std 2.2).
                              Explicit GD is unstable for steep scores (a standardised
                              8-mode ring with mode std 0.07 diverges at 0.2; recorded as
                              diverged); L-BFGS's line search has no such limit.
        score = "auto"        "auto" | "exact" | "kde" (see ``samplers.core.scores``).
        anneal_beta = 1.0     annealed variant when < 1: the score is scaled by anneal_beta
                              for the first ``anneal_fraction`` of the steps, then by 1
                              (L-BFGS restarts its history at the switch).
        anneal_fraction = 0.3
        kde_scale = 1.0       KDE bandwidth / median rule, when a KDE score is used.

    n_steps = iterations (L-BFGS iterations or gradient steps). The first L-BFGS step in a
    process imports torch._dynamo (torch.optim does so lazily): a one-off 1-4 s.
    Cost per loss evaluation O(m^2 d) time, O(m^2) memory, plus one score evaluation and
    one vector-Jacobian product through it.
    info: ``score_source``, ``score_jacobian``, ``bandwidth``, ``ksd2_init``, ``ksd2_final``
    (for the untempered score), ``n_score_evals``, ``n_loss_evals``.
    """

    name = "ksd_descent"
    needs = frozenset({"score"})
    defaults: dict[str, Any] = {
        "kernel": "gaussian",
        "bandwidth": "median",
        "optimiser": "lbfgs",
        "step_size": 0.2,
        "score": "auto",
        "anneal_beta": 1.0,
        "anneal_fraction": 0.3,
        "kde_scale": 1.0,
    }
    param_specs = {
        "kernel": OneOf(*BASE_KERNELS),
        "bandwidth": Positive(also=("median",)),
        "optimiser": OneOf(*OPTIMISERS),
        "step_size": Positive(),
        "score": OneOf(*SCORE_SOURCES),
        "anneal_beta": Interval(0.0, 1.0, lo_open=True),
        "anneal_fraction": Interval(0.0, 1.0),
        "kde_scale": Positive(),
    }
    #: the KDE bandwidth is inert where the target has an exact score
    score_model_params = ("kde_scale",)
    #: the Stein kernel's h (the median rule is too small in 10-D, see above), annealing,
    #: and the KDE bandwidth where a KDE score is used
    search_space = {
        "bandwidth": ("median", 0.5, 1.0, 2.0),
        "anneal_beta": (1.0, 0.5),
        "kde_scale": (1.0, 0.5, 0.25),
    }
    #: widening limits: Stein kernel bandwidth 1/8-8 (standardised units), annealing
    #: beta in [0.1, 1], KDE bandwidth as SVGD's
    search_limits = {
        "bandwidth": (0.125, 8.0),
        "anneal_beta": (0.1, 1.0),
        "kde_scale": (1 / 16, 4.0),
    }

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        p = self.params
        if p["kernel"] not in BASE_KERNELS:
            raise SamplerError(f"ksd_descent: kernel must be one of {BASE_KERNELS}")
        if p["optimiser"] not in OPTIMISERS:
            raise SamplerError(f"ksd_descent: optimiser must be one of {OPTIMISERS}")
        if p["score"] not in SCORE_SOURCES:
            raise SamplerError(f"ksd_descent: score must be one of {SCORE_SOURCES}")
        bw = p["bandwidth"]
        if bw == "median":
            h = math.sqrt(median_sq_distance(train) / 4.0)
        elif isinstance(bw, (int, float)) and bw > 0 and math.isfinite(bw):
            h = float(bw)
        else:
            raise SamplerError(f"ksd_descent: bandwidth must be 'median' or > 0, got {bw!r}")
        if not (isinstance(p["step_size"], (int, float)) and p["step_size"] > 0):
            raise SamplerError(f"ksd_descent: step_size must be > 0, got {p['step_size']!r}")
        if not 0.0 < float(p["anneal_beta"]) <= 1.0:
            raise SamplerError("ksd_descent: anneal_beta must lie in (0, 1]")
        if not 0.0 <= float(p["anneal_fraction"]) <= 1.0:
            raise SamplerError("ksd_descent: anneal_fraction must lie in [0, 1]")
        try:
            fn, source = resolve_score(target, train, p["score"], p["kde_scale"])
        except ValueError as err:
            raise SamplerError(f"ksd_descent: {err}") from err
        try:
            self.kernel = RadialKernel(p["kernel"], h)
        except ValueError as err:
            raise SamplerError(f"ksd_descent: {err}") from err
        self.score_fn = DifferentiableScore(fn, target, source)
        return {"score_source": source, "bandwidth": h}

    def _run(self, run: RunRequest) -> SampleResult:
        p, x0 = self.params, run.x0
        score = self.score_fn
        score.n_evals = 0
        kernel = self.kernel
        m = x0.shape[0]
        beta0 = float(p["anneal_beta"])
        n_anneal = int(round(float(p["anneal_fraction"]) * run.n_steps)) if beta0 < 1.0 else 0
        counters = {"loss": 0}
        failure: dict[str, str] = {}

        def ksd2(x: Tensor) -> float:
            try:
                return float(ksd_loss_and_grad(x, score, kernel)[0])
            except (NonFiniteScoreError, TargetError):
                return float("nan")

        ksd2_init = ksd2(x0)

        def loss_grad(x: Tensor, beta: float) -> tuple[Tensor, Tensor]:
            counters["loss"] += 1
            return ksd_loss_and_grad(x, score, kernel, beta)

        if p["optimiser"] == "gd":
            h = float(p["step_size"])

            def update(x: Tensor, t: int) -> Tensor:
                _, g = loss_grad(x, beta0 if t < n_anneal else 1.0)
                return x - h * m * g

        else:
            update = _LBFGSStepper(loss_grad, m, beta0, n_anneal)

        def step(x: Tensor, t: int) -> Tensor:
            try:
                return update(x, t)
            except (NonFiniteScoreError, TargetError) as err:
                failure["reason"] = f"step {t + 1}: {err}"
                return torch.full_like(x, float("nan"))  # iterate() records the divergence

        res = run.iterate(step)
        info = dict(res.info)
        if "reason" in failure:
            info["diverged_reason"] = failure["reason"]
        if not res.diverged:
            info["ksd2_final"] = ksd2(res.particles)
        info.update(
            {
                "ksd2_init": ksd2_init,
                "score_source": score.source,
                "score_jacobian": score.jacobian,
                "n_score_evals": score.n_evals,
                "n_loss_evals": counters["loss"],
            }
        )
        return SampleResult(res.particles, res.trajectory, res.times, info)


class _LBFGSStepper:
    """One torch L-BFGS iteration per call (history kept between calls), scaled loss m*L.

    The loss is multiplied by m so its gradient is per particle (L-BFGS tolerances then do
    not depend on m); the last evaluation is cached so a new call does not recompute it.
    The history restarts when the annealed score switches from beta to 1.
    """

    def __init__(self, loss_grad, m: int, beta0: float, n_anneal: int) -> None:
        self.loss_grad = loss_grad
        self.m = m
        self.beta0 = beta0
        self.n_anneal = n_anneal
        self.param: Tensor | None = None
        self.opt: torch.optim.LBFGS | None = None
        self.cache: tuple[Tensor, Tensor, Tensor] | None = None
        self.beta = beta0

    def _new_optimiser(self, x: Tensor) -> None:
        self.param = x.detach().clone().requires_grad_(True)
        self.opt = torch.optim.LBFGS(
            [self.param],
            lr=1.0,
            max_iter=1,
            max_eval=25,
            tolerance_grad=1e-12,
            tolerance_change=1e-16,
            history_size=10,
            line_search_fn="strong_wolfe",
        )
        self.cache = None

    def _closure(self) -> Tensor:
        x = self.param.detach()
        if self.cache is not None and torch.equal(self.cache[0], x):
            value, grad = self.cache[1], self.cache[2]
        else:
            value, grad = self.loss_grad(x, self.beta)
            value, grad = self.m * value, self.m * grad
            self.cache = (x.clone(), value, grad)
        self.param.grad = grad.clone()
        return value

    def __call__(self, x: Tensor, t: int) -> Tensor:
        beta = self.beta0 if t < self.n_anneal else 1.0
        if self.opt is None or beta != self.beta:
            self.beta = beta
            self._new_optimiser(x)
        self.opt.step(self._closure)
        return self.param.detach().clone()
