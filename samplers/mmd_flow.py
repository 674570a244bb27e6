"""MMD particle flow with the Riesz kernel (Altekrueger, Hertrich & Steidl, ICML 2023;
sliced gradients: Hertrich, Wald, Altekrueger & Hagemann, ICLR 2024).

Explicit Euler steps on F(x) = MMD^2(empirical particles, training samples) with
K(x, y) = -|x - y|^r:   v <- momentum * v + g(x),  x <- x - step_size * v,
g = m grad F the per-particle gradient (see ``samplers.core.riesz_mmd``), exact or sliced.
Data-driven: it only sees the training split.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from datasets.base import Target
from samplers.base import RunRequest, Sampler, SamplerError, SampleResult, register_sampler
from samplers.core.riesz_mmd import (
    AUTO_EXACT_MAX_PAIRS,
    riesz_gradient_exact,
    riesz_gradient_sliced,
    riesz_mmd_squared,
    sliced_constant,
)
from samplers.params import Interval, OneOf, Positive

GRADIENTS = ("auto", "exact", "sliced")
#: MMD^2 is reported in info only when its exact pairwise cost stays below this.
REPORT_MAX_PAIRS = 20_000_000


def choose_gradient(option: str, r: float, m: int, n: int) -> str:
    """Resolve ``gradient="auto"``: sliced when r = 1 and m (m + N) > AUTO_EXACT_MAX_PAIRS."""
    if option == "sliced" and r != 1.0:
        raise SamplerError(f"mmd_flow: the sliced gradient needs r = 1 (sorting), got r = {r}")
    if option != "auto":
        return option
    return "sliced" if r == 1.0 and m * (m + n) > AUTO_EXACT_MAX_PAIRS else "exact"


@register_sampler
class MMDFlow(Sampler):
    """Riesz-kernel MMD flow towards the training samples.

    Parameters (defaults):
        r = 1.0                Riesz exponent, 0 < r < 2 (r = 1: energy distance).
        step_size = 0.1        Euler step per particle (g has magnitude <= 4r max|x-y|^(r-1),
                               so a step moves each particle at most ~0.4 for r = 1).
        momentum = 0.0         heavy-ball momentum in [0, 1).
        gradient = "auto"      "exact" (pairwise, chunked), "sliced" (r = 1, sorting) or
                               "auto": sliced when m (m + N) > 1e7 pairs, else exact.
        n_projections = 256    directions per step of the sliced gradient (fresh each step).
        chunk_size = 2048      rows per chunk of the exact gradient (memory chunk*(m+N)).

    info: ``gradient`` (the one used), ``sliced_constant`` (c_d), ``mmd2_init`` /
    ``mmd2_final`` (when m (m + N) + N^2 <= 2e7), ``n_train``.
    """

    name = "mmd_flow"
    needs = frozenset({"samples"})
    defaults: dict[str, Any] = {
        "r": 1.0,
        "step_size": 0.1,
        "momentum": 0.0,
        "gradient": "auto",
        "n_projections": 256,
        "chunk_size": 2048,
    }
    param_specs = {
        "r": Interval(0.0, 2.0, lo_open=True, hi_open=True),
        "step_size": Positive(),
        "momentum": Interval(0.0, 1.0, hi_open=True),
        "gradient": OneOf(*GRADIENTS),
        "n_projections": Positive(int),
        "chunk_size": Positive(int),
    }
    #: per-particle Euler step (each step moves a particle at most ~4 r step) and momentum
    search_space = {"step_size": (0.02, 0.05, 0.1, 0.2, 0.5), "momentum": (0.0, 0.5, 0.9)}
    #: widening limits: step 0.005-2 (standardised units; beyond 2 particles jump across
    #: the data), momentum in [0, 0.99] (1 never forgets a velocity)
    search_limits = {"step_size": (0.005, 2.0), "momentum": (0.0, 0.99)}

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        p = self.params
        r = p["r"]
        if not isinstance(r, (int, float)) or not 0.0 < r < 2.0:
            raise SamplerError(f"mmd_flow: r must lie in (0, 2), got {r!r}")
        h = p["step_size"]
        if not isinstance(h, (int, float)) or not h > 0 or not math.isfinite(h):
            raise SamplerError(f"mmd_flow: step_size must be a positive float, got {h!r}")
        if not 0.0 <= float(p["momentum"]) < 1.0:
            raise SamplerError(f"mmd_flow: momentum must lie in [0, 1), got {p['momentum']!r}")
        if p["gradient"] not in GRADIENTS:
            raise SamplerError(f"mmd_flow: gradient must be one of {GRADIENTS}")
        if p["gradient"] == "sliced" and float(r) != 1.0:
            raise SamplerError(f"mmd_flow: the sliced gradient needs r = 1 (sorting), got r = {r}")
        for key in ("n_projections", "chunk_size"):
            if not isinstance(p[key], int) or p[key] < 1:
                raise SamplerError(f"mmd_flow: {key} must be a positive int, got {p[key]!r}")
        return {"n_train": int(train.shape[0]), "sliced_constant": sliced_constant(target.dim)}

    def _mmd2(self, x: Tensor, y: Tensor) -> float | None:
        m, n = x.shape[0], y.shape[0]
        if m * (m + n) + n * n > REPORT_MAX_PAIRS:
            return None
        return float(riesz_mmd_squared(x, y, float(self.params["r"]), self.params["chunk_size"]))

    def _run(self, run: RunRequest) -> SampleResult:
        p, x0, gen = self.params, run.x0, run.gen
        r = float(p["r"])
        y = self.train.to(x0)
        m, n = x0.shape[0], y.shape[0]
        mode = choose_gradient(p["gradient"], r, m, n)
        h = float(p["step_size"])
        beta = float(p["momentum"])
        velocity = torch.zeros_like(x0)

        def gradient(x: Tensor) -> Tensor:
            if mode == "sliced":
                return riesz_gradient_sliced(x, y, p["n_projections"], gen)
            return riesz_gradient_exact(x, y, r, p["chunk_size"])

        def step(x: Tensor, t: int) -> Tensor:
            nonlocal velocity
            velocity = beta * velocity + gradient(x)
            return x - h * velocity

        res = run.iterate(step)
        return res.with_info(
            gradient=mode,
            mmd2_init=self._mmd2(x0, y),
            mmd2_final=None if res.diverged else self._mmd2(res.particles, y),
        )
