"""Start schemes inside the support, and the support test that labels bad starts.

``support``: for a target with a log density, x0 is uniform on a bounding box of the
support restricted to the support itself (rejection: keep draws with finite log p, the
target's own support test). The box is the target's ``bounds`` when the support is a box,
else the coordinatewise range of 20 000 target samples drawn with a fixed seed (so the box
does not depend on the run), widened by 1 % of its width on each side so thin boundary
regions are reachable. For targets without a density (manifolds, latents) it is fresh
target samples (the support is only known through them).

A run from a start with points outside the support cannot be blamed on the sampler: the
score there is not finite (beta/Dirichlet) and the run stops at step 1. The runner labels
such rows :data:`OUTSIDE_STATUS` instead of ``diverged``/``failed``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.random import make_generator
from datasets.base import Target, TargetError

OUTSIDE_STATUS = "start_outside_support"
#: samples (fixed seed) that fix the bounding box of a support that is not a box
BOX_SAMPLES = 20_000
BOX_SEED = 424_242
#: relative widening of the sample box: the extreme of 20 000 draws falls short of the true
#: edge by ~1/20 000 of the mass; 1 % of the width covers that, rejection removes the rest
BOX_MARGIN = 0.01


def outside_support(target: Target, x: Tensor) -> int | None:
    """Number of rows of x (m, d) outside the support (log p = -inf or NaN); None when the
    target has no density (the support cannot be tested)."""
    if not target.has_log_prob:
        return None
    lp = target.log_prob(x.to(torch.float64).cpu())
    return int((~torch.isfinite(lp)).sum())


def support_box(target: Target) -> tuple[Tensor, Tensor]:
    """(lo, hi), each (d,): ``target.bounds`` or the widened range of fixed-seed samples."""
    if target.bounds is not None:
        lo, hi = target.bounds
        return lo.to(torch.float64), hi.to(torch.float64)
    ref = target.sample(BOX_SAMPLES, seed=BOX_SEED)
    lo, hi = ref.min(0).values, ref.max(0).values
    pad = BOX_MARGIN * (hi - lo)
    return lo - pad, hi + pad


def support_start(target: Target, n: int, seed: int, max_tries: int = 200) -> Tensor:
    """x0 (n, d) float64 inside the support: uniform on :func:`support_box` restricted to
    finite log p (rejection), or fresh target samples for a target without a density."""
    if not target.has_log_prob:
        return target.sample(n, seed=seed)
    lo, hi = support_box(target)
    gen = make_generator(seed)
    out: list[Tensor] = []
    got = 0
    for _ in range(max_tries):
        u = torch.rand(max(4 * n, 1024), target.dim, generator=gen, dtype=torch.float64)
        x = lo + (hi - lo) * u
        keep = x[torch.isfinite(target.log_prob(x))]
        out.append(keep)
        got += keep.shape[0]
        if got >= n:
            return torch.cat(out)[:n]
    raise TargetError(f"target {target.name!r}: support start got {got} of {n} points")


def label_bad_start(base: dict, target: Target, x0: Tensor) -> None:
    """Relabel a ``diverged``/``failed`` row ``base`` (in place) as :data:`OUTSIDE_STATUS`
    when its x0 has points outside the target's support, keeping the original message."""
    if base.get("status") not in ("diverged", "failed"):
        return
    try:
        k = outside_support(target, x0)
    except Exception:  # the support test itself failed: keep the row as it was
        return
    if k:
        base["message"] = (
            f"start outside support ({k} of {x0.shape[0]} x0 points): {base.get('message', '')}"
        )
        base["status"] = OUTSIDE_STATUS
