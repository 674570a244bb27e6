"""Diffusion-map spectral numerics shared by DMPS and EDMD-KSWGD.

Targets X (N, d), bandwidth eps (median heuristic eps = median|X_a - X_b|^2 / (2 log(N+1))):

    k_ab = exp(-|X_a - X_b|^2 / (2 eps)),  p_a = sum_b k_ab,  kt_ab = k_ab / sqrt(p_a p_b),
    D_b = sum_a kt_ab,  P = (kt / D[None, :] + kt / D[:, None]) / 2 = Phi diag(lam) Phi^T.

Out-of-sample kernel at particles x (m, d) (alpha = 1/2 normalisation, symmetrised):

    k_a(x) = exp(-|x - X_a|^2 / (2 eps)),  p(x) = sum_a k_a(x),  M_a(x) = k_a(x) / sqrt(p(x) p_a),
    Kt_a(x) = (M_a(x) / D_a + M_a(x) / sum_b M_b(x)) / 2.

LAWGD transport with S = Phi diag(w) Phi^T (any eigenfunction/weight pair):

    x_i <- x_i - (h / m) sum_a grad Kt_a(x_i) s_a,   s = S @ sum_l Kt(x_l),

computed in O(m N d + N K) per step without any (m, N, d) tensor
(:func:`spectral_transport_step`). :func:`brute_force_transport_step` (the (m, N, d)
gradient tensor contracted with s) and :func:`notebook_transport_step` (the reference
notebook's literal double sum, O(m^2 N d)) are kept as references for tests and benchmarks.

Public pieces: :class:`DiffusionMapKernel` (fit on X; also the out-of-sample kernel, alias
:data:`OutOfSampleKernel`), :func:`diffusion_map_spectrum` (dense or truncated top-K
eigenpairs), :func:`lawgd_weights`, :func:`spectral_transport_step`,
:func:`transport_direction`, :func:`auto_step_size`, :func:`lawgd_transport_scale`,
:func:`flow_step_size`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from common import random
from common.geometry import capped_median_bandwidth_sq, pairwise_sq_distances
from samplers.core.eigensolvers import EIG_TOL, block_lanczos_eigenpairs
from samplers.core.errors import SpectralError

SolverName = Literal["auto", "dense", "topk"]

DENSE_MAX_N = 3000
"""``solver="auto"`` uses the dense eigensolver up to this many training points and the
truncated top-K solver above (measured in ``benchmarks/scaling_dmps.py``)."""


def _check_matrix(x: Tensor, what: str, dim: int | None = None) -> None:
    if not isinstance(x, Tensor):
        raise SpectralError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] == 0:
        raise SpectralError(f"{what} must be a non-empty (n, d) tensor, got {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise SpectralError(f"{what} must be float32 or float64, got {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise SpectralError(f"{what} has dimension {x.shape[1]}, the kernel has {dim}")
    if not bool(torch.isfinite(x).all()):
        raise SpectralError(f"{what} contains NaN or infinite values")


def squared_distances(x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
    """|x_i - y_a|^2 as an (m, N) tensor (BLAS accumulates -2 x.y into the norms), written
    into ``out`` when given."""
    return pairwise_sq_distances(x, y, form="gemm", out=out)


class TargetPoints:
    """Mixin of kernels fitted on target points ``X`` (N, d): their count and dimension."""

    X: Tensor

    @property
    def n_targets(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[1]


@dataclass
class DiffusionMapKernel(TargetPoints):
    """Diffusion-map kernel fitted on targets X; evaluates Kt and its gradient out of sample.

    Attributes: X (N, d), eps (bandwidth, k = exp(-|.|^2 / (2 eps))), p (N,) kernel degrees,
    D (N,) degrees of the alpha = 1/2 normalised kernel. Build with :meth:`fit`.
    """

    X: Tensor
    eps: float
    p: Tensor
    D: Tensor

    # -- fitting ----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, X: Tensor, eps: float | None = None, *, chunk_size: int = 2048
    ) -> DiffusionMapKernel:
        """Fit on X (N, d): p = k @ 1 and D = kt @ 1, in row chunks (memory O(chunk N))."""
        _check_matrix(X, "X")
        if X.shape[0] < 2:
            raise SpectralError(f"need at least 2 target points, got {X.shape[0]}")
        if eps is None:
            eps = capped_median_bandwidth_sq(X)
        eps = float(eps)
        if not math.isfinite(eps) or eps <= 0:
            raise SpectralError(f"bandwidth eps must be a positive finite number, got {eps!r}")
        n = X.shape[0]
        p = torch.empty(n, dtype=X.dtype, device=X.device)
        for lo in range(0, n, chunk_size):
            k = squared_distances(X[lo : lo + chunk_size], X).mul_(-0.5 / eps).exp_()
            p[lo : lo + chunk_size] = k.sum(1)
        inv_sqrt_p = p.rsqrt()
        D = torch.empty_like(p)
        for lo in range(0, n, chunk_size):
            k = squared_distances(X[lo : lo + chunk_size], X).mul_(-0.5 / eps).exp_()
            D[lo : lo + chunk_size] = (k @ inv_sqrt_p) * inv_sqrt_p[lo : lo + chunk_size]
        return cls(X=X, eps=eps, p=p, D=D)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> DiffusionMapKernel:
        """A copy of the kernel on ``device`` / in ``dtype``."""
        return DiffusionMapKernel(
            X=self.X.to(device=device, dtype=dtype),
            eps=self.eps,
            p=self.p.to(device=device, dtype=dtype),
            D=self.D.to(device=device, dtype=dtype),
        )

    def markov_matrix(self, dtype: torch.dtype | None = None, chunk_size: int = 1024) -> Tensor:
        """The symmetric matrix P (N, N) = (kt / D[None, :] + kt / D[:, None]) / 2.

        Built in row chunks straight into one (N, N) buffer of ``dtype`` (default X's), so
        the peak memory is one N x N matrix plus O(chunk N).
        """
        return self.markov_matrices((dtype or self.X.dtype,), chunk_size)[0]

    def markov_matrices(
        self, dtypes: tuple[torch.dtype, ...], chunk_size: int = 1024
    ) -> tuple[Tensor, ...]:
        """P (N, N) in each of ``dtypes`` (e.g. float64 and a float32 copy for fast products),
        filled in one pass over row chunks: the rows are computed in X's dtype as
        P_ab = k_ab (u_a s_b + s_a u_b), s = p^-1/2, u = s / (2 D) (the rank-2 form of the
        symmetrisation), then copied into every buffer while they are in cache."""
        n = self.n_targets
        outs = tuple(torch.empty(n, n, dtype=dt, device=self.X.device) for dt in dtypes)
        s = self.p.rsqrt()
        u = s / (2.0 * self.D)
        left = torch.stack([u, s], dim=1)  # (N, 2): F = left @ right^T = u s^T + s u^T
        right = torch.stack([s, u], dim=1)
        work = torch.empty(min(chunk_size, n), n, dtype=self.X.dtype, device=self.X.device)
        scale = torch.empty_like(work)
        for lo in range(0, n, chunk_size):
            hi = min(lo + chunk_size, n)
            k, f = work[: hi - lo], scale[: hi - lo]
            squared_distances(self.X[lo:hi], self.X, out=k).mul_(-0.5 / self.eps).exp_()
            torch.mm(left[lo:hi], right.T, out=f)
            k.mul_(f)
            for out in outs:
                out[lo:hi].copy_(k)
        return outs

    # -- out-of-sample evaluation -------------------------------------------------------------
    def _stable_parts(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """k~ = exp(-(r - r_min) / (2 eps)) (m, N), p~ = k~ @ 1 (m,), sc = exp(-r_min / (4 eps)).

        With c = exp(-r_min / (2 eps)): k = c k~, p = c p~, M = sqrt(c) M~ (sc = sqrt(c)),
        so every quantity below stays finite for particles far from the data.
        """
        k, sc = self._kernel_block(x)
        return k, k.sum(1), sc

    def _kernel_block(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """k~ (m, N) and sc (m,) of :meth:`_stable_parts` in three passes over (m, N).

        z = -(|X_a|^2 - 2 x.X_a) / (2 eps) comes out of one GEMM with the bias folded in
        (|x|^2 is constant along a row, so it cancels in r - r_min), then k~ = exp(z - max z).
        """
        c = -0.5 / self.eps
        sq_X = (self.X * self.X).sum(1)
        z = torch.addmm(sq_X[None, :], x, self.X.T, beta=c, alpha=-2.0 * c)
        z_max = z.amax(dim=1, keepdim=True)
        k = z.sub_(z_max).exp_()
        r_min = ((x * x).sum(1) + z_max.squeeze(1) / c).clamp_min(0.0)
        return k, torch.exp(-0.25 * r_min / self.eps)

    def evaluate(self, x: Tensor) -> Tensor:
        """Kt(x) (m, N) for particles x (m, d)."""
        _check_matrix(x, "x", self.dim)
        k, pt, sc = self._stable_parts(x)
        m_t = k.mul_(self.p.rsqrt()[None, :]).div_(pt.sqrt()[:, None])  # M~ (m, N)
        q_t = m_t.sum(1)
        return 0.5 * (sc[:, None] * m_t / self.D[None, :] + m_t / q_t[:, None])

    def gradient(self, x: Tensor) -> Tensor:
        """grad_x Kt_a(x_i) as an (m, N, d) tensor (analytic; for tests and small sizes).

        With g_a = (X_a - x) / eps and gbar = sum_a k_a g_a / p:
        grad M_a = M_a (g_a - gbar / 2),  grad Q = sum_b grad M_b (Q = sum_b M_b),
        grad Kt_a = (grad M_a (1 / D_a + 1 / Q) - M_a grad Q / Q^2) / 2.
        """
        _check_matrix(x, "x", self.dim)
        k, pt, sc = self._stable_parts(x)
        g = (self.X[None, :, :] - x[:, None, :]) / self.eps  # (m, N, d)
        gbar = (k[:, :, None] * g).sum(1) / pt[:, None]  # (m, d)
        m_t = k * self.p.rsqrt()[None, :] / pt.sqrt()[:, None]  # M~
        q_t = m_t.sum(1)
        grad_m = m_t[:, :, None] * (g - 0.5 * gbar[:, None, :])  # grad M~
        grad_q = grad_m.sum(1)  # (m, d)
        # grad_m = grad M / sc (the shift r_min cancels in g - gbar / 2), so
        # grad (M / D) = sc grad_m / D and grad (M / Q) = grad_m / Q~ - M~ grad_q / Q~^2.
        term_d = sc[:, None, None] * grad_m / self.D[None, :, None]
        term_q = (
            grad_m / q_t[:, None, None] - m_t[:, :, None] * (grad_q / q_t[:, None] ** 2)[:, None, :]
        )
        return 0.5 * (term_d + term_q)


OutOfSampleKernel = DiffusionMapKernel
"""The fitted :class:`DiffusionMapKernel` is the out-of-sample kernel (same object)."""


# ---------------------------------------------------------------------------------------
# Transport step
# ---------------------------------------------------------------------------------------
def kernel_push(kernel: DiffusionMapKernel, x: Tensor, Phi: Tensor, w: Tensor) -> Tensor:
    """s = Phi diag(w) Phi^T sum_l Kt(x_l), shape (N,). Costs O(m N d + N K)."""
    _check_matrix(x, "x", kernel.dim)
    _check_modes(kernel, Phi, w)
    k, sc = kernel._kernel_block(x)
    return _push(kernel, k, sc, _first_moments(kernel, k), Phi, w)


def _first_moments(kernel: DiffusionMapKernel, k: Tensor) -> Tensor:
    """k~ @ [X, 1, X / sqrt(p), 1 / sqrt(p)], shape (m, 2, d + 1): k~X, p~, M-moments."""
    X = kernel.X
    inv_sqrt_p = kernel.p.rsqrt()[:, None]
    Xa = torch.cat([X, torch.ones_like(inv_sqrt_p)], dim=1)
    return (k @ torch.cat([Xa, Xa * inv_sqrt_p], dim=1)).reshape(k.shape[0], 2, -1)


def _push(
    kernel: DiffusionMapKernel, k: Tensor, sc: Tensor, moments: Tensor, Phi: Tensor, w: Tensor
) -> Tensor:
    """s = Phi diag(w) Phi^T sum_l Kt(x_l) from k~ (m, N) and its first moments."""
    d = kernel.dim
    pt = moments[:, 0, d]  # p~ = k~ @ 1
    q_s = moments[:, 1, d]  # k~ @ (1 / sqrt(p)) = sqrt(p~) Q~
    # sum_l Kt_la = (sum_l sc_l M~_la / D_a + sum_l M~_la / Q~_l) / 2,  M~ = k~ / sqrt(p~ p_a)
    coef = torch.stack([sc * pt.rsqrt(), q_s.reciprocal()], dim=1)  # (m, 2)
    cols = (k.T @ coef) * kernel.p.rsqrt()[:, None]  # (N, 2)
    kt_sum = 0.5 * (cols[:, 0] / kernel.D + cols[:, 1])
    return Phi @ (w * (Phi.T @ kt_sum))


def _direction(
    kernel: DiffusionMapKernel, x: Tensor, k: Tensor, sc: Tensor, moments: Tensor, s: Tensor
) -> Tensor:
    """v_i = sum_a grad Kt_a(x_i) s_a from k~ (m, N); shape (m, d), no (m, N, d) tensor.

    With primes for products with k~ (unnormalised by sqrt(p~)): A'_u = k~ @ (u X / sqrt(p)),
    B'_u = k~ @ (u / sqrt(p)), u1 = s / D, u2 = s, u0 = 1 (B'_1 = sqrt(p~) Q~):
    v = (sc / sqrt(p~) ((A'_1 - x B'_1) / eps - gbar B'_1 / 2)
         + (A'_2 - B'_2 A'_0 / B'_0) / (eps B'_0)) / 2,   gbar = (k~ X / p~ - x) / eps.
    One (m, N) @ (N, 2 (d + 1)) product per call besides the moments.
    """
    X, eps, d = kernel.X, kernel.eps, kernel.dim
    inv_sqrt_p = kernel.p.rsqrt()
    u = torch.stack([s / kernel.D * inv_sqrt_p, s * inv_sqrt_p], dim=1)  # (N, 2)
    Xa = torch.cat([X, torch.ones_like(s)[:, None]], dim=1)
    Y = (u[:, :, None] * Xa[:, None, :]).reshape(X.shape[0], 2 * (d + 1))
    Z = (k @ Y).reshape(k.shape[0], 2, d + 1)
    kX, pt = moments[:, 0, :d], moments[:, 0, d : d + 1]
    A0, B0 = moments[:, 1, :d], moments[:, 1, d : d + 1]
    A1, B1 = Z[:, 0, :d], Z[:, 0, d : d + 1]
    A2, B2 = Z[:, 1, :d], Z[:, 1, d : d + 1]
    gbar = (kX / pt - x) / eps
    term_d = (sc[:, None] * pt.rsqrt()) * ((A1 - x * B1) / eps - 0.5 * gbar * B1)
    term_q = (A2 - B2 * A0 / B0) / (eps * B0)
    return 0.5 * (term_d + term_q)


def transport_direction(kernel: DiffusionMapKernel, x: Tensor, Phi: Tensor, w: Tensor) -> Tensor:
    """v_i = sum_a grad Kt_a(x_i) (S @ sum_l Kt(x_l))_a, S = Phi diag(w) Phi^T; (m, d).

    The step is x <- x - (h / m) v. O(m N d + N K) time, O(m N) memory: one (m, N)
    kernel block (one GEMM, max, exp) read by three thin GEMMs. A kernel of another type
    (the kNN kernel of :mod:`samplers.core.sparse_diffusion_map`) computes its own direction.
    """
    if not isinstance(kernel, DiffusionMapKernel):
        return kernel.transport_direction(x, Phi, w)
    _check_matrix(x, "x", kernel.dim)
    _check_modes(kernel, Phi, w)
    k, sc = kernel._kernel_block(x)
    moments = _first_moments(kernel, k)
    s = _push(kernel, k, sc, moments, Phi, w)
    return _direction(kernel, x, k, sc, moments, s)


def spectral_transport_step(
    x: Tensor, kernel: DiffusionMapKernel, Phi: Tensor, w: Tensor, h: float
) -> Tensor:
    """One LAWGD/KSWGD step x <- x - (h / m) sum_a grad Kt_a(x) (S sum_l Kt(x_l))_a.

    x (m, d); Phi (N, K) eigenfunctions on the targets; w (K,) weights; S = Phi diag(w) Phi^T.
    Works for any (Phi, w): diffusion-map modes with :func:`lawgd_weights` (DMPS) or EDMD
    Koopman eigenfunctions with generator weights (EDMD-KSWGD).
    """
    v = transport_direction(kernel, x, Phi, w)
    return x - (h / x.shape[0]) * v


def brute_force_transport_step(
    x: Tensor,
    kernel: DiffusionMapKernel,
    Phi: Tensor,
    w: Tensor,
    h: float,
    chunk_size: int | None = None,
) -> Tensor:
    """Reference form: builds grad Kt as (m, N, d) tensors (in particle chunks of
    ``chunk_size`` to bound memory) and contracts x_i -= (h/m) sum_a grad Kt_a(x_i) s_a.

    Same maths as :func:`spectral_transport_step`, O(m N d) memory per chunk; the notebook's
    literal form (an (N, m) push matrix, then sum over l) costs a further factor m.
    """
    _check_modes(kernel, Phi, w)
    m = x.shape[0]
    kt = kernel.evaluate(x)
    s = Phi @ (w * (Phi.T @ kt.sum(0)))
    chunk_size = chunk_size or m
    v = torch.cat(
        [
            torch.einsum("iad,a->id", kernel.gradient(x[lo : lo + chunk_size]), s)
            for lo in range(0, m, chunk_size)
        ]
    )
    return x - (h / m) * v


def notebook_transport_step(
    x: Tensor,
    kernel: DiffusionMapKernel,
    Phi: Tensor,
    w: Tensor,
    h: float,
    chunk_size: int | None = None,
) -> Tensor:
    """The reference notebook's literal form: push = S Kt(x)^T (N, m), grad Kt (m, N, d),
    then per coordinate x_i -= (h/m) sum_l (grad[:, :, dim] @ push)_il. O(m^2 N d) time;
    the gradient is built in particle chunks of ``chunk_size``."""
    _check_modes(kernel, Phi, w)
    m = x.shape[0]
    push = Phi @ (w[:, None] * (Phi.T @ kernel.evaluate(x).T))  # (N, m)
    chunk_size = chunk_size or m
    parts = []
    for lo in range(0, m, chunk_size):
        grad = kernel.gradient(x[lo : lo + chunk_size])
        parts.append(
            torch.stack([(grad[:, :, dim] @ push).sum(1) for dim in range(x.shape[1])], dim=1)
        )
    return x - (h / m) * torch.cat(parts)


def _check_modes(kernel: DiffusionMapKernel, Phi: Tensor, w: Tensor) -> None:
    n = kernel.n_targets
    if Phi.ndim != 2 or Phi.shape[0] != n:
        raise SpectralError(f"Phi must have shape (N={n}, K), got {tuple(Phi.shape)}")
    if w.ndim != 1 or w.shape[0] != Phi.shape[1]:
        raise SpectralError(f"w must have shape (K={Phi.shape[1]},), got {tuple(w.shape)}")


# ---------------------------------------------------------------------------------------
# Step size
# ---------------------------------------------------------------------------------------
def auto_step_size(
    x0: Tensor, kernel: DiffusionMapKernel, Phi: Tensor, w: Tensor, fraction: float
) -> float:
    """h such that the first step moves the median particle by ``fraction * sqrt(eps)``.

    The displacement of particle i is (h / m) |v_i(x0)|, so
    h = fraction sqrt(eps) m / median_i |v_i(x0)|.
    """
    v = transport_direction(kernel, x0, Phi, w)
    med = float(v.norm(dim=1).median())
    if not math.isfinite(med) or med <= 0:
        raise SpectralError(
            "automatic step size: the transport field vanishes at the initial particles "
            f"(median |v| = {med:g}); they are too far from the data, give step_size"
        )
    return fraction * math.sqrt(kernel.eps) * x0.shape[0] / med


def lawgd_transport_scale(kernel: DiffusionMapKernel) -> float:
    """c_N = N / eps^2: (c_N / m) v (v of :func:`transport_direction`, DMPS weights) is the
    LAWGD velocity -grad_x (1/m) sum_l K(x, x_l) of a kernel K that does not depend on N.

    Why: Phi's columns have unit Euclidean norm, so the eigenfunctions normalised in
    L^2(pi) are phi_k(X_a) ~ sqrt(N) Phi_ak; Kt is a Markov row with Kt Phi_k ~ lam_k Phi_k.
    Hence sum_ab Kt_a(x) (Phi diag(w) Phi^T)_ab Kt_b(y) ~ sum_k w_k lam_k^2 phi_k(x) phi_k(y) / N
    = (eps^2 / N) sum_k phi_k(x) phi_k(y) eps / (1 - lam_k) (reg << lam_k), and
    eps / (1 - lam_k) = 1 / mu_k for the generator L_eps = (P - I) / eps (eigenvalues -mu_k).
    So c_N times the code's kernel converges to -L^-1 = sum_k phi_k phi_k / mu_k, the continuum
    LAWGD kernel (Chewi et al. 2020), and a step tau of the scaled field is a time step of
    the LAWGD flow, the same for every N (duplicating every training point leaves it unchanged).
    The measured c_N |v| / m at the first step of circle / cap: 4.4 (N = 1,000), 4.2 (3,000)."""
    return kernel.n_targets / kernel.eps**2


def flow_step_size(
    v: Tensor, tau: float, max_move: float, eps: float, *, lipschitz: float | None = None
) -> float:
    """Time step of one explicit LAWGD step of the scaled field v (m, d):
    tau_t = min(tau, max_move sqrt(eps) / max_i |v_i|, 1 / lipschitz).

    The field varies on the kernel's length sqrt(eps), so an Euler step is accurate while no
    particle moves more than a fraction of it (local error ~ |dx|^2 / sqrt(eps)); within that,
    the step is ``tau`` in the flow's own time (the continuum LAWGD flow contracts every mode
    at a rate of order 1). The particle system is stiffer than that: near its equilibrium a
    mode of rate L is multiplied by 1 - tau L per Euler step, which oscillates for tau L > 1
    and grows for tau L > 2 (measured with tau = 0.2 alone at 04d02d7, ``python -m
    benchmarks.studies.dmps_more_data --columns shell3/cap --sizes 1000 --seeds 0
    --no-fashion``: the particles end jittering, median |F| 1.1, S_eps 0.32 against 0.027
    for the previous rule; 0.027 with this cap). ``lipschitz`` L, the secant estimate
    |v(x_t) - v(x_t-1)| / |x_t - x_t-1| of the last step, caps tau at 1 / L, where every
    mode decays monotonically. No particle is clipped: the bound holds for the fastest one,
    and the step shrinks for everyone instead."""
    vmax = float(v.norm(dim=1).max()) if v.numel() else 0.0
    if not math.isfinite(vmax):
        raise SpectralError("flow step: the transport field is not finite")
    step = float(tau)
    if vmax > 0:
        step = min(step, max_move * math.sqrt(eps) / vmax)
    if lipschitz is not None and math.isfinite(lipschitz) and lipschitz > 0:
        step = min(step, 1.0 / lipschitz)
    return step


# ---------------------------------------------------------------------------------------
# Spectrum
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiffusionSpectrum:
    """Leading eigenpairs of P: eigenvalues (K,) descending, eigenvectors (N, K) orthonormal."""

    eigenvalues: Tensor
    eigenvectors: Tensor
    solver: str
    seconds: float
    info: dict = field(default_factory=dict)
    """Facts for the fit info; the "topk" solver gives its residuals (``EigenResult.info``)."""


def diffusion_map_spectrum(
    kernel: DiffusionMapKernel,
    n_modes: int | None = None,
    *,
    solver: SolverName = "auto",
    seed: int = 0,
    tol: float = EIG_TOL,
) -> DiffusionSpectrum:
    """Top ``n_modes`` eigenpairs of P (all of them when None), largest first.

    solver: "dense" (full LAPACK eigh, :func:`symmetric_eigh`), "topk" (block Lanczos grown
    until every pair converges, :func:`samplers.core.eigensolvers.block_lanczos_eigenpairs`:
    products with a float32 copy of P, residuals |P v - lam v| / |lam_1| measured with the
    float64 P and recorded in ``info``), "auto" = dense when N <= DENSE_MAX_N (3000), n_modes
    is None or 6 n_modes > N (the Krylov space would approach R^N), else topk. The dense
    solve holds two (N, N) float64 matrices; topk P in float64 and in float32.
    """
    n = kernel.n_targets
    k = n if n_modes is None else int(n_modes)
    if k < 1:
        raise SpectralError(f"n_modes must be >= 1, got {n_modes!r}")
    k = min(k, n)
    if solver == "auto":
        solver = "dense" if (n <= DENSE_MAX_N or n_modes is None or 6 * k > n) else "topk"
    t0 = time.perf_counter()
    if solver == "dense":
        P = kernel.markov_matrix()
        lam, vec = symmetric_eigh(P)
        del P
        lam = lam[:k]
        vec = vec[:, :k].contiguous()
    elif solver == "topk":
        P, P32 = kernel.markov_matrices((torch.float64, torch.float32))
        res = block_lanczos_eigenpairs(
            lambda v: P32 @ v.to(torch.float32),
            n,
            k,
            seed=seed,
            tol=tol,
            residual_apply=lambda v: P @ v.to(P.dtype),
            device=P.device,
        )
        del P, P32
        info = res.info()
        lam, vec = res.eigenvalues.to(kernel.X.dtype), res.eigenvectors.to(kernel.X.dtype)
        return DiffusionSpectrum(lam, vec, solver, time.perf_counter() - t0, info)
    else:
        raise SpectralError(f"unknown solver {solver!r}; use 'auto', 'dense' or 'topk'")
    return DiffusionSpectrum(lam, vec, solver, time.perf_counter() - t0)


def symmetric_eigh(A: Tensor) -> tuple[Tensor, Tensor]:
    """All eigenpairs of the symmetric A, eigenvalues descending.

    On CPU through numpy's LAPACK (syevd): measured here 2 to 3x faster than
    torch.linalg.eigh's CPU path on the same matrix; on CUDA torch.linalg.eigh.
    """
    if A.device.type == "cpu":
        import numpy as np

        lam, vec = np.linalg.eigh(A.detach().numpy())
        return (
            torch.from_numpy(np.ascontiguousarray(lam[::-1])),
            torch.from_numpy(np.ascontiguousarray(vec[:, ::-1])),
        )
    lam, vec = torch.linalg.eigh(A)
    return lam.flip(0), vec.flip(1)


def top_eigenpairs(
    P: Tensor,
    k: int,
    *,
    block_size: int | None = None,
    n_blocks: int | None = None,
    matmul_dtype: torch.dtype | None = torch.float32,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Largest-``k`` eigenpairs of the symmetric matrix P (N, N) by randomised block Krylov.

    Builds the Krylov space span[Q0, P Q0, ..., P^s Q0] from a random (N, b) start (block
    Lanczos with full re-orthogonalisation, two Gram-Schmidt passes per block), then a
    Rayleigh-Ritz step: eigh of T = Q^T P Q, (s + 1) b square. Defaults:
    b = min(32, max(4, ceil(k / 16))) and s + 1 = max(12, ceil(4 k / b)) blocks (a space of
    about 4k vectors; small blocks and a deep space converge best on the slowly decaying
    diffusion-map spectra, see ``benchmarks/eigensolvers_dmps.py``). Eigenpairs next to the
    cut converge slowest when k splits a cluster of near-equal eigenvalues; the returned
    subspace then mixes modes whose LAWGD weights are nearly equal. The products with P run in
    ``matmul_dtype`` (float32 by default: P's entries need no more; None keeps P's dtype);
    the orthogonalisation and Ritz step run in float64. Cost: (s + 1) products of P with
    (N, b) blocks, O(N^2 k) in all, plus O(N k^2); memory: two (N, (s + 1) b) bases.
    Returns eigenvalues (k,) descending and orthonormal eigenvectors (N, k) in float64.
    """
    n = P.shape[0]
    if not 1 <= k <= n:
        raise SpectralError(f"need 1 <= k <= N = {n}, got k = {k}")
    b = min(block_size or min(32, max(4, math.ceil(k / 16))), n)
    nb = n_blocks or max(12, math.ceil(4 * k / b))
    nb = min(nb, max(1, n // b))
    if nb * b < k:
        raise SpectralError(f"Krylov space {nb} x {b} is smaller than k = {k}")
    A = P if matmul_dtype is None else P.to(matmul_dtype)
    work = torch.float64
    gen = random.make_generator(seed)  # CPU: the same start on every device
    Q = torch.empty(n, nb * b, dtype=work, device=P.device)
    W = torch.empty_like(Q)  # W = P Q
    start = random.randn(n, b, generator=gen, dtype=work, device=P.device)
    Q[:, :b] = torch.linalg.qr(start).Q
    for j in range(nb):
        cols = slice(j * b, (j + 1) * b)
        W[:, cols] = (A @ Q[:, cols].to(A.dtype)).to(work)
        if j + 1 == nb:
            break
        Z = W[:, cols].clone()
        basis = Q[:, : (j + 1) * b]
        for _ in range(2):
            Z -= basis @ (basis.T @ Z)
        Q[:, (j + 1) * b : (j + 2) * b] = torch.linalg.qr(Z).Q
    T = Q.T @ W
    T = 0.5 * (T + T.T)
    theta, Y = symmetric_eigh(T)
    theta = theta[:k].to(P.device)
    Y = Y[:, :k].to(P.device)
    return theta, Q @ Y


# ---------------------------------------------------------------------------------------
# LAWGD weights
# ---------------------------------------------------------------------------------------
def lawgd_weights(
    lam: Tensor,
    eps: float,
    reg: float = 1e-3,
    tol: float = 1e-6,
    variant: Literal["intended", "notebook"] = "intended",
    *,
    drop_non_decaying: bool = False,
) -> Tensor:
    """LAWGD weights w_k = (eps / (lam_k + reg))^2 * eps / (1 - lam_k) for k >= 1, shape (K,).

    lam: eigenvalues of P in descending order (mode 0 = the constant mode, weight 0).
    Modes with lam_k < tol get weight 0. A mode k >= 1 with lam_k >= 1 has a generator
    eigenvalue >= 0, where -L^-1 does not exist: by default its factor is clamped to
    eps / machine-eps (so it dominates); ``drop_non_decaying`` gives it weight 0 instead (the
    pseudo-inverse). The symmetrised P = (A + A^T) / 2 of a row-stochastic A has
    lam_0 >= 1 (the Rayleigh quotient of the constant vector is 1) and can have more
    eigenvalues above 1 where the degrees D vary: the sparse kernel at N = 60,000 had two.
    The factor eps / (1 - lam_k) is -L^{-1} for the generator L = (P - I) / eps;
    (eps / (lam + reg))^2 undoes the two Kt factors.
    variant="notebook" reproduces the CIFAR notebook's eps / clip(lam - 1, 1e-12, None),
    which (lam < 1) sets that factor to eps * 1e12 for every mode: for comparison only.
    """
    if lam.ndim != 1:
        raise SpectralError(f"lam must be 1-D, got shape {tuple(lam.shape)}")
    if eps <= 0:
        raise SpectralError(f"eps must be positive, got {eps!r}")
    keep = lam >= tol
    if drop_non_decaying and variant == "intended":
        keep &= lam < 1.0
    keep[0] = False
    if variant == "intended":
        gap = (1.0 - lam).clamp_min(torch.finfo(lam.dtype).eps)
        inv_gen = eps / gap
    elif variant == "notebook":
        inv_gen = eps / (lam - 1.0).clamp_min(1e-12)
    else:
        raise SpectralError(f"unknown weights variant {variant!r}; use 'intended' or 'notebook'")
    w = (eps / (lam + reg)) ** 2 * inv_gen
    return torch.where(keep, w, torch.zeros_like(w))
