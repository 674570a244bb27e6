"""The particle loop shared by the spectral-transport samplers (DMPS, EDMD-KSWGD).

Given a fitted kernel and modes (Phi (N, K), w (K,)), move x0 (m, d) by
x <- x - dx, dx = (h/m) sum_a grad Kt_a(x) (Phi diag(w) Phi^T sum_l Kt(x_l))_a, each row of
dx optionally capped at ``max_step * sqrt(eps)``; h fixed or set by the auto rule.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from samplers.base import RunRequest, SamplerError, SampleResult
from samplers.core.spectral import (
    DiffusionMapKernel,
    SpectralError,
    auto_step_size,
    transport_direction,
)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_dtype(sampler: str, name: str) -> torch.dtype:
    """The torch dtype of a sampler's ``dtype`` parameter, or a clear error."""
    if name not in DTYPES:
        raise SamplerError(f"{sampler}: dtype must be 'float64' or 'float32', got {name!r}")
    return DTYPES[name]


def clipped_displacement(v: Tensor, scale: float, max_norm: float | None) -> tuple[Tensor, int]:
    """dx = scale * v (m, d) with each row's norm capped at ``max_norm``; (dx, rows capped)."""
    dx = scale * v
    if max_norm is None:
        return dx, 0
    norms = dx.norm(dim=1, keepdim=True)
    over = norms > max_norm
    factor = torch.where(over, max_norm / norms.clamp_min(1e-300), torch.ones_like(norms))
    return dx * factor, int(over.sum())


def run_spectral_transport(
    run: RunRequest,
    kernel: DiffusionMapKernel,
    Phi: Tensor,
    w: Tensor,
    *,
    params: dict[str, Any],
    dtype: torch.dtype,
) -> SampleResult:
    """Run the transport for the method's ``run`` (x0 (m, d), n_steps, recording) with
    ``params`` keys step_size ("auto" or a float), step_fraction, max_step (None = no cap) and
    max_abs; records h, the rule, h in the reference code's units (h * eps) and the number of
    capped displacements in ``info``."""
    x0 = run.x0.to(dtype)
    kernel = kernel.to(device=x0.device, dtype=dtype)
    Phi = Phi.to(device=x0.device, dtype=dtype)
    w = w.to(device=x0.device, dtype=dtype)
    if params["step_size"] == "auto":
        try:
            h = auto_step_size(x0, kernel, Phi, w, float(params["step_fraction"]))
        except SpectralError as err:
            raise SamplerError(f"{run.sampler}: {err}") from err
        rule = f"auto: first step moves the median particle {params['step_fraction']} sqrt(eps)"
    else:
        h = float(params["step_size"])
        rule = "fixed"
    max_step = params.get("max_step")
    max_disp = None if max_step is None else float(max_step) * math.sqrt(kernel.eps)
    n_clipped = [0]

    def step(x: Tensor, t: int) -> Tensor:
        dx, clipped = clipped_displacement(
            transport_direction(kernel, x, Phi, w), h / x.shape[0], max_disp
        )
        n_clipped[0] += clipped
        return x - dx

    result = run.iterate(step, x0, max_abs=float(params["max_abs"]))
    info = {
        **result.info,
        "step_size": h,
        "step_rule": rule,
        "step_size_ref_units": h * kernel.eps if math.isfinite(h) else h,
        "n_clipped": n_clipped[0],
    }
    return SampleResult(result.particles, result.trajectory, result.times, info)
