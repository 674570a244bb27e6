"""Debiased Sinkhorn divergence, the headline score (Feydy et al. 2019).

Convention (Feydy et al. 2019, "Interpolating between OT and MMD using Sinkhorn divergences"):

    OT_eps(a, b) = min_P <P, C> + eps * KL(P | a (x) b),      C_ij = |x_i - y_j|^2  (no 1/2),
    S_eps(a, b)  = OT_eps(a, b) - OT_eps(a, a) / 2 - OT_eps(b, b) / 2,

with uniform weights a = 1/m, b = 1/n, computed in float64. OT_eps INCLUDES its entropic
term (``ot.sinkhorn2`` returns only <P, C>). It is evaluated from the dual potentials (f, g),
P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps), as the dual objective

    OT_eps = <a, f> + <b, g> - eps * (sum_ij P_ij - 1),

which equals the primal value at convergence and is a lower bound of it for any (f, g).

Solvers:
- cross term OT_eps(a, b): POT (``ot.bregman.sinkhorn_knopp``, the standard scaling
  iterations, or ``ot.bregman.sinkhorn_log``) on torch tensors (CPU or CUDA: the tensors'
  device decides). ``method="auto"`` uses the standard iterations when
  max(C_xy) / eps <= ``STANDARD_MAX_COST_OVER_EPS`` (= 1000: the kernel e^{-C/eps} and the
  scalings e^{f/eps} stay within float64's range; see the constant) and the log-domain
  solver otherwise; it also falls back to log-domain if the standard iterations break down
  numerically (non-finite or stalled scalings) before max_iter.
- symmetric terms OT_eps(a, a): the symmetric fixed point f = T(f),
  T(f)_i = -eps log sum_j a_j exp((f_j - C_ij) / eps), iterated with Feydy's averaged update
  f <- (f + T(f)) / 2, which converges in a few dozen iterations. In the scaling domain it is
  stable at any eps because K_ii = 1 and f / eps stays within log(n) / 2.

Paths (``path=``; "auto" by memory, see ``DENSE_MEMORY_BUDGET``): "dense" stores the (m, n)
cost matrix and runs the solvers above (POT, the scaling domain where safe); "streaming"
(:mod:`metrics.streaming_sinkhorn`) never stores it: the same iterations in the log domain,
blockwise soft-mins with O(m + n) memory, the same stopping rules, so the two agree to
rounding (``results/metrics/streaming_memory.md``). Both run on the tensors' device.

Objective, against the peers: this is the full entropic OT_eps (plan cost plus eps KL), the
dual value; not the "linear term only" <C, P> of POT's ``sinkhorn2``. geomloss
(``SamplesLoss("sinkhorn", p=2, debias=True)``) and flash-sinkhorn (``SamplesLoss``) also
return the dual value <a, f> + <b, g>, i.e. the same objective: geomloss on the cost
|x - y|^2 / 2 with eps = blur^2 (so our value at eps is twice theirs at blur = sqrt(eps / 2)),
flash-sinkhorn on |x - y|^2 with eps = blur^2; both anneal eps for a fixed number of steps
without a marginal check, and flash-sinkhorn works in float32 with TF32 products, which is
where their values differ from ours (``benchmarks.studies.gpu_study`` measures it).

Every solve is checked after its last iteration: L1 marginal error
|P 1 - a|_1 + |P^T 1 - b|_1 <= tol, finite potentials. If any of the three solves fails, the
result is ``converged=False`` with ``value=nan`` and a message: never a stale number (POT
returns the previous iterate, not NaN, when its standard iterations break down, and
``sinkhorn2`` hides its warning by default).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import Tensor

from common.geometry import pairwise_sq_distances
from metrics.base import MetricContext, MetricError, MetricResult, check_clouds, register_metric
from metrics.sinkhorn_core import Solve, finish, symmetric_fixed_point
from metrics.streaming_sinkhorn import (
    chunk_rows,
    cross_streaming,
    max_sq_distance,
    symmetric_streaming,
)

#: the largest eps / (largest squared distance) the metric accepts: above it S_eps is its
#: eps -> infinity limit up to float64 rounding of about eps x 3e-16 (measured: relative error
#: 6e-6 at eps = 3e8 x the largest cost, 0.44 at 3e13), which would pass as a converged value
MAX_EPS_OVER_COST = 1e8

STANDARD_MAX_COST_OVER_EPS = 1000.0
"""``method="auto"`` runs the standard (scaling) Sinkhorn iterations on the cross term only
when max(C_xy) <= STANDARD_MAX_COST_OVER_EPS x eps; above, the log-domain solver.
Why max, not median: the scaling form holds K_ij = e^{-C_ij/eps} and u = a e^{f/eps},
v = b e^{g/eps} in float64 (range e^{+-708}); the largest cost over eps is what decides
whether they fit. Measured (300 vs 300 points, tol 1e-9): standard and log-domain agree to
1e-15 on the catalogue targets up to max C / eps = 2954 (unbalanced2, 0.0125 x median);
DESIGN.md measured silent failure below ~0.002 x median, i.e. max C / eps ~ 5000-10000 for
2-D clouds (max/median C ~ 10-20). 1000 keeps a factor ~3 from the verified range and all
catalogue targets at their default eps fraction (max C / eps <= 740) on the fast path.
A breakdown is caught anyway: the marginal check flags POT's stale iterate, and "auto"
re-solves in log domain when the standard iterations stop early."""

DEFAULT_MAX_ITER = 10_000
DEFAULT_TOL = 1e-5
"""Default L1 marginal tolerance. Measured on an 8-mode ring, 300 vs 300 points, eps = 0.01 x
median: the value moves by 6e-6 (relative 2e-5) between marginal error 1e-4 and 2e-6, while
reaching 1e-6 takes > 100k iterations there (Sinkhorn's slow tail on clustered data)."""
METHODS = ("auto", "standard", "log")
PATHS = ("auto", "dense", "streaming")
DENSE_MEMORY_BUDGET = 2 * 2**30
"""Bytes the dense path may use; ``path="auto"`` takes it when its estimated peak,
DENSE_COPIES x m x n x 8 bytes, fits, and the streaming path otherwise (O((m + n) d) memory
plus one block of ``metrics.streaming_sinkhorn.CHUNK_BYTES``). 2 GiB: the dense solve is the
faster one wherever it fits (matrix-vector products on a stored kernel against one exp per
entry per iteration), and 2 GiB keeps the 2-core machine's resident memory under 1.5 GB plus
the process (n = m = 6,689 is the largest dense pair) and a GPU run inside the 2 GB the issue
allows; pass ``memory_budget=`` to move the switch (e.g. a large GPU: dense to n ~ 20,000)."""
DENSE_COPIES = 6
"""Measured peak of the dense path in m x n float64 matrices: 6.4 GB resident at n = 12,000
on the CPU (5.6 matrices) and 16 GB of GPU memory at n = 20,000 (5.0): C, POT's kernel K and
K / a, the plan and its temporaries; rounded up to 6."""
_MEDIAN_MAX_ENTRIES = 1000


def _median_entry(c: Tensor) -> float:
    """Median of a cost matrix's entries, from a strided sub-grid of at most ~1000^2 entries."""
    si = max(1, c.shape[0] // _MEDIAN_MAX_ENTRIES)
    sj = max(1, c.shape[1] // _MEDIAN_MAX_ENTRIES)
    return float(c[::si, ::sj].median())


def _median_entry_of(x: Tensor, y: Tensor) -> float:
    """:func:`_median_entry` of C(x, y) from the same strided sub-grid, without forming C."""
    si = max(1, x.shape[0] // _MEDIAN_MAX_ENTRIES)
    sj = max(1, y.shape[0] // _MEDIAN_MAX_ENTRIES)
    return float(pairwise_sq_distances(x[::si], y[::sj], form="product_first").median())


def _cross_pot(
    c: Tensor,
    a: Tensor,
    b: Tensor,
    eps: float,
    method: str,
    max_iter: int,
    tol: float,
    warm: tuple[Tensor, Tensor] | None = None,
) -> Solve:
    """OT_eps(a, b) with POT's standard or log-domain Sinkhorn; ``warm`` = potentials (f, g)."""
    # POT stops on the L2 norm of the column-marginal error; tol / sqrt(n) makes its stop
    # imply our L1 criterion (rows are exact after its last u-update).
    import ot  # POT takes seconds to import: only where a solve needs it

    stop = tol / math.sqrt(max(c.shape))
    common = dict(numItermax=max_iter, stopThr=stop, log=True, warn=False)
    start = None if warm is None else (warm[0] / eps + a.log(), warm[1] / eps + b.log())
    if method == "standard":
        plan, log = ot.bregman.sinkhorn_knopp(a, b, c, eps, warmstart=start, **common)
        f = eps * (log["u"].log() - a.log())
        g = eps * (log["v"].log() - b.log())
    else:
        plan, log = ot.bregman.sinkhorn_log(a, b, c, eps, warmstart=start, **common)
        f = eps * (log["log_u"] - a.log())
        g = eps * (log["log_v"] - b.log())
    row, col = plan.sum(1), plan.sum(0)
    del plan
    value, err, gap, finite = finish(a, b, f, g, row, col, eps)
    iterations = int(log["niter"]) + 1
    ok = finite and err <= tol
    msg = ""
    if not ok:
        msg = (
            f"{method} Sinkhorn did not converge on the cross term: marginal error {err:.3g} "
            f"> tol {tol:.3g} after {iterations} iterations (max_iter {max_iter})"
            if finite
            else f"{method} Sinkhorn hit non-finite potentials on the cross term"
        )
    return Solve(value, f, g, iterations, method, err, gap, ok, msg)


def _symmetric(c: Tensor, a: Tensor, eps: float, method: str, max_iter: int, tol: float) -> Solve:
    """OT_eps(a, a) by the averaged symmetric fixed point f <- (f + T(f)) / 2.

    Scaling domain ("standard"): T(f) = -eps log(K (a e^{f/eps})), K = e^{-C/eps};
    log domain: T(f)_i = -eps logsumexp_j(log a_j + (f_j - C_ij)/eps).
    Row marginal of P_ij = a_i a_j e^{(f_i + f_j - C_ij)/eps} is r = a e^{(f - T(f))/eps}.
    ``c`` is overwritten (in place, to hold one (n, n) matrix only).
    """
    log_a = a.log()
    if method == "standard":
        kernel = c.div_(-eps).exp_()

        def transform(f: Tensor) -> Tensor:
            return -eps * torch.log(kernel @ (a * torch.exp(f / eps)))
    else:
        neg_c = c.div_(-eps)

        def transform(f: Tensor) -> Tensor:
            return -eps * torch.logsumexp(neg_c + (log_a + f / eps)[None, :], dim=1)

    return symmetric_fixed_point(
        a,
        transform,
        eps,
        max_iter,
        tol,
        what=f"symmetric Sinkhorn ({method})",
        label=f"symmetric-{method}",
    )


def sinkhorn_divergence(
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    method: str = "auto",
    path: str = "auto",
    memory_budget: int = DENSE_MEMORY_BUDGET,
    chunk_bytes: int | None = None,
    softmin_kernel: str = "torch",
) -> MetricResult:
    """Debiased Sinkhorn divergence S_eps between x (m, d) and y (n, d), uniform weights.

    eps: absolute entropic regularisation (in squared-distance units; see ``relative_eps``).
    method: "auto" (standard iterations on the cross term when max cost <=
    STANDARD_MAX_COST_OVER_EPS x eps, else log-domain; symmetric terms in the scaling
    domain), "standard", or "log" (forces that solver on all three terms).
    tol: L1 marginal error allowed on each solve; max_iter: iterations per solve.
    path: "dense" (stored (m, n) cost matrices, POT), "streaming" (blockwise log-domain
    solves, O(m + n) memory, :mod:`metrics.streaming_sinkhorn`; ``method`` is then moot: the
    same iterations in the log domain) or "auto" (dense when DENSE_COPIES x m x n x 8 bytes
    <= ``memory_budget``, else streaming); chunk_bytes: streaming block size (default by
    device, ``CHUNK_BYTES``); softmin_kernel: "torch" (blocks) or "triton" (the fused kernel
    of :mod:`metrics.triton_softmin`, opt-in until measured on a GPU). Both paths compute the
    same objective (OT_eps with its entropic term, module docstring) with the same stopping
    rules and agree to rounding.
    Returns MetricResult(value, converged, info) with info: eps, cost, eps_over_median_cost,
    per-solve iterations/method/marginal_error/primal_dual_gap/ot_values, tol, max_iter,
    path, message.
    """
    if method not in METHODS:
        raise MetricError(f"unknown method {method!r}; expected one of {METHODS}")
    if path not in PATHS:
        raise MetricError(f"unknown path {path!r}; expected one of {PATHS}")
    if isinstance(eps, bool) or not (
        isinstance(eps, numbers.Real) and math.isfinite(eps) and eps > 0
    ):
        raise MetricError(f"eps must be a positive finite number, got {eps!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise MetricError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if isinstance(tol, bool) or not (isinstance(tol, numbers.Real) and tol > 0):
        raise MetricError(f"tol must be a number > 0, got {tol!r}")
    x, y = check_clouds(x, y)
    eps = float(eps)
    centre = torch.cat([x, y]).mean(0)
    x, y = x - centre, y - centre
    radius_sq = float(x.pow(2).sum(1).max().sqrt() + y.pow(2).sum(1).max().sqrt()) ** 2
    if eps > MAX_EPS_OVER_COST * radius_sq:  # radius_sq >= every |x_i - y_j|^2
        raise MetricError(
            f"eps={eps:g} is over {MAX_EPS_OVER_COST:g} times the largest squared distance "
            f"(<= {radius_sq:.3g}): float64 cannot resolve S_eps there (its rounding error "
            "grows like eps x 1e-16); use a smaller eps"
        )
    a = torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=torch.float64, device=x.device)
    b = torch.full((y.shape[0],), 1.0 / y.shape[0], dtype=torch.float64, device=y.device)

    if path == "auto":
        dense_bytes = DENSE_COPIES * x.shape[0] * y.shape[0] * 8
        path = "dense" if dense_bytes <= memory_budget else "streaming"
    if path == "streaming":
        median_cost = _median_entry_of(x, y)
        max_cost = max_sq_distance(x, y, chunk=chunk_rows(y.shape[0], x.device, chunk_bytes))
        opts: dict[str, Any] = {"chunk_bytes": chunk_bytes, "kernel": softmin_kernel}
        solves = {
            "xy": cross_streaming(x, y, a, b, eps, max_iter, tol, **opts),
            "xx": symmetric_streaming(x, a, eps, max_iter, tol, **opts),
            "yy": symmetric_streaming(y, b, eps, max_iter, tol, **opts),
        }
    else:
        c_xy = pairwise_sq_distances(x, y, form="product_first")
        median_cost = _median_entry(c_xy)
        max_cost = float(c_xy.max())
        if method == "auto":
            safe = max_cost <= STANDARD_MAX_COST_OVER_EPS * eps
            cross_method = "standard" if safe else "log"
            sym_method = "standard"  # always safe: K_ii = 1 and |f| / eps <~ log(n) / 2
        else:
            cross_method = sym_method = method

        cross = _cross_pot(c_xy, a, b, eps, cross_method, max_iter, tol)
        if method == "auto" and not cross.converged and cross.iterations < max_iter:
            # the standard iterations broke down numerically before max_iter: redo in log domain
            cross = _cross_pot(c_xy, a, b, eps, "log", max_iter, tol)
            cross.method = "log (after standard broke down)"
        del c_xy

        def sym(z: Tensor, w: Tensor) -> Solve:
            c = pairwise_sq_distances(z, z, form="product_first")
            c.fill_diagonal_(0.0)
            return _symmetric(c, w, eps, sym_method, max_iter, tol)

        solves = {"xy": cross, "xx": sym(x, a), "yy": sym(y, b)}
    ratio = eps / median_cost if median_cost > 0 else math.inf
    cross = solves["xy"]
    info: dict[str, Any] = {
        "eps": eps,
        "cost": "squared_euclidean",
        "convention": "OT_eps = <P,C> + eps KL(P | a x b); S = OT(a,b) - OT(a,a)/2 - OT(b,b)/2",
        "median_cost": median_cost,
        "eps_over_median_cost": ratio,
        "max_cost_over_eps": max_cost / eps,
        "tol": tol,
        "max_iter": max_iter,
        "iterations": {k: s.iterations for k, s in solves.items()},
        "method": {k: s.method for k, s in solves.items()},
        "marginal_error": {k: s.marginal_error for k, s in solves.items()},
        "primal_dual_gap": {k: s.gap for k, s in solves.items()},
        "ot_values": {k: s.value for k, s in solves.items()},
        "path": path,
    }
    failed = [s.message for s in solves.values() if not s.converged]
    if failed:
        info["message"] = "; ".join(failed)
        return MetricResult(float("nan"), False, info)
    value = cross.value - 0.5 * solves["xx"].value - 0.5 * solves["yy"].value
    info["message"] = "converged"
    return MetricResult(value, True, info)


@register_metric(
    "sinkhorn",
    needs={"reference", "scale"},
    description="Debiased Sinkhorn divergence S_eps (cost |x-y|^2, eps per target relative to "
    "its reference set) between the particles and the held-out reference sample",
)
def sinkhorn_metric(ctx: MetricContext) -> MetricResult:
    """Debiased Sinkhorn divergence with absolute eps = ``ctx.scale`` (required; the runner
    passes ``relative_eps(reference, target.metric_eps_fraction)``); deterministic."""
    x, y, scale = ctx.particles, ctx.reference, ctx.scale
    if scale is None:
        raise MetricError(
            "the sinkhorn metric needs scale= (the absolute eps), e.g. "
            "common.geometry.relative_eps(reference, target.metric_eps_fraction)"
        )
    return sinkhorn_divergence(x, y, eps=scale)
