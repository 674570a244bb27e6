"""Truncated symmetric eigensolvers with every returned pair's residual checked.

:func:`sparse_top_eigenpairs` returns the largest ``k`` eigenpairs of a symmetric sparse
matrix P (N, N) (the kNN diffusion-map operator of :mod:`samplers.core.sparse_diffusion_map`)
by implicitly restarted Lanczos (ARPACK through ``scipy.sparse.linalg.eigsh``; each product
with P costs O(nnz) = O(N k)), or by densifying P and calling LAPACK (``method="dense"``,
small N and tests). Whatever the method, the residual of every returned pair is measured
afterwards, not taken from the solver's own estimate:

    res_j = |P v_j - lam_j v_j|_2 / |lam_1|,   |v_j|_2 = 1,

relative to |lam_1| (the largest returned eigenvalue, ~ |P|_2 = 1 for diffusion operators,
whose spectra lie in about [-1, 1]). The fit is ``converged`` when max_j res_j <= ``tol``
(default :data:`EIG_TOL` = 1e-6); otherwise :attr:`EigenResult.warning` says so.

:func:`block_lanczos_eigenpairs` does the same for a symmetric operator given only by its
product with (N, b) blocks (a dense torch matrix, possibly multiplied in float32): block
Lanczos with full re-orthogonalisation, grown until the Ritz residual estimates of the top
``k`` pairs pass, so every product is a matrix-matrix product (BLAS-3).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from samplers.core.errors import SpectralError

EIG_TOL = 1e-6
"""Largest accepted relative residual of a returned eigenpair. At 1e-6 the eigenvalue
error is below 1e-6 and, for a gap g to the next eigenvalue, the eigenvector error below
1e-6 / g; the dense LAPACK solve reaches ~1e-13, the one-shot block Krylov 1.85e-2 at
N = 20,000 and the block Lanczos of :func:`block_lanczos_eigenpairs` 2.2e-7 there."""

ARPACK_SHIFT = 1.0
"""Lanczos runs on P + I (same eigenvectors, same Krylov spaces, eigenvalues in about
[0, 2]). ARPACK's stopping test |r_j| <= tol |theta_j| is relative to each Ritz value:
on P itself the modes of a fast-decaying spectrum (the dense bandwidth on a circle: all
but ~20 eigenvalues below 1e-15) would need |r| ~ 1e-18 and never converge. On P + I,
theta_j >= ~1, so the test becomes the absolute one that the residual check applies."""

ARPACK_TOL_FACTOR = 0.1
"""ARPACK stops on its own Ritz estimate |r_j| <= tol_arpack |lam_j|; asking for 0.1 tol
leaves a factor 10 for the eigenvalues below lam_1 and for rounding in the final check."""


@dataclass(frozen=True)
class EigenResult:
    """Top eigenpairs: eigenvalues (k,) descending, eigenvectors (N, k) orthonormal,
    residuals (k,) as in the module docstring, and how they were obtained."""

    eigenvalues: Tensor
    eigenvectors: Tensor
    residuals: Tensor
    method: str
    seconds: float
    tol: float
    n_requested: int

    @property
    def max_residual(self) -> float:
        return float(self.residuals.max())

    @property
    def converged(self) -> bool:
        return self.max_residual <= self.tol and self.residuals.numel() == self.n_requested

    @property
    def warning(self) -> str | None:
        """None when converged, else a sentence for the result row."""
        if self.converged:
            return None
        parts = []
        n = self.residuals.numel()
        if n < self.n_requested:
            parts.append(f"only {n} of {self.n_requested} eigenpairs converged in ARPACK")
        bad = int((self.residuals > self.tol).sum())
        if bad:
            parts.append(
                f"{bad} of {n} eigenpairs exceed the residual tolerance {self.tol:g} "
                f"(largest {self.max_residual:.3g})"
            )
        return "; ".join(parts)

    def info(self) -> dict[str, object]:
        """Facts for a sampler's fit info (the harness stores them in the row)."""
        return {
            "eig_method": self.method,
            "eig_seconds": self.seconds,
            "eig_tol": self.tol,
            "eig_max_residual": self.max_residual,
            "eig_converged": self.converged,
            "eig_n_returned": int(self.residuals.numel()),
            "eig_warning": self.warning,
            "eig_residuals": [float(r) for r in self.residuals],
        }


def relative_residuals(P: sp.spmatrix | np.ndarray, lam: np.ndarray, V: np.ndarray) -> np.ndarray:
    """|P v_j - lam_j v_j| / (|lam_1| |v_j|) for eigenvalues lam (k,) and vectors V (N, k)."""
    R = P @ V - V * lam[None, :]
    scale = max(abs(float(lam[0])), np.finfo(np.float64).tiny)
    return np.linalg.norm(R, axis=0) / (scale * np.linalg.norm(V, axis=0))


def sparse_top_eigenpairs(
    P: sp.spmatrix,
    k: int,
    *,
    method: str = "lanczos",
    tol: float = EIG_TOL,
    seed: int = 0,
    ncv: int | None = None,
    maxiter: int | None = None,
    arpack_tol: float | None = None,
    max_dim: int | None = None,
    device: torch.device | str = "cpu",
) -> EigenResult:
    """Largest-``k`` eigenpairs of the symmetric sparse P (N, N), in float64.

    method: "lanczos" (ARPACK ``eigsh(which="LA")`` on P + I, start vector from ``seed``,
    ``ncv`` Lanczos vectors, default min(N, 2 k + 1)), "block" (:func:`block_lanczos_eigenpairs`
    with products by a float32 copy of P, residuals with P in float64; at most ``max_dim``
    Krylov vectors, default :data:`SPARSE_BLOCK_MAX_DIM_FACTOR` k + b) or "dense" (LAPACK on
    P.toarray(); O(N^2) memory, for small N). ``arpack_tol`` (default
    ``ARPACK_TOL_FACTOR * tol``) is ARPACK's own stopping tolerance; ``tol`` is what the
    measured residuals are held to.
    ``device``: where "block" keeps P (torch CSR), the Krylov basis and the products (a GPU
    for CUDA particles); ARPACK and LAPACK run on the CPU.
    ARPACK failing to converge within ``maxiter`` restarts returns the pairs it converged
    (fewer than k; the result's ``warning`` says so) or raises if there are none.
    """
    n = P.shape[0]
    if P.shape != (n, n):
        raise SpectralError(f"P must be square, got {P.shape}")
    if not 1 <= k <= n:
        raise SpectralError(f"need 1 <= k <= N = {n}, got k = {k}")
    t0 = time.perf_counter()
    if method == "dense" or k >= n - 1:  # ARPACK needs k < N
        lam, V = np.linalg.eigh(P.toarray() if sp.issparse(P) else np.asarray(P))
        lam, V = lam[::-1][:k].copy(), V[:, ::-1][:, :k].copy()
        method = "dense"
    elif method == "lanczos":
        from scipy.sparse.linalg import ArpackNoConvergence, eigsh

        v0 = np.random.default_rng(seed).standard_normal(n)
        ncv = min(n, ncv or 2 * k + 1)
        shifted = (P + ARPACK_SHIFT * sp.identity(n, dtype=P.dtype, format="csr")).tocsr()
        try:
            lam, V = eigsh(
                shifted,
                k=k,
                which="LA",
                tol=arpack_tol or ARPACK_TOL_FACTOR * tol,
                v0=v0,
                ncv=ncv,
                maxiter=maxiter,
            )
        except ArpackNoConvergence as err:
            lam, V = err.eigenvalues, err.eigenvectors
            if lam.size == 0:
                raise SpectralError(f"ARPACK returned no eigenpair: {err}") from err
        del shifted
        order = np.argsort(lam)[::-1]
        lam, V = lam[order] - ARPACK_SHIFT, V[:, order]
    elif method == "block":
        p32 = torch_csr(P, torch.float32).to(device)
        p64 = torch_csr(P, torch.float64).to(device)
        return block_lanczos_eigenpairs(
            lambda Q: p32 @ Q.to(torch.float32),
            n,
            k,
            tol=tol,
            seed=seed,
            max_dim=max_dim or SPARSE_BLOCK_MAX_DIM_FACTOR * k + BLOCK_LANCZOS_BLOCK,
            residual_apply=lambda V: p64 @ V,
            device=device,
        )
    else:
        raise SpectralError(f"unknown eigensolver {method!r}; use 'lanczos', 'block' or 'dense'")
    seconds = time.perf_counter() - t0
    res = relative_residuals(P, lam, V)
    return EigenResult(
        eigenvalues=torch.from_numpy(np.ascontiguousarray(lam)),
        eigenvectors=torch.from_numpy(np.ascontiguousarray(V)),
        residuals=torch.from_numpy(res),
        method=method,
        seconds=seconds,
        tol=float(tol),
        n_requested=int(k),
    )


SPARSE_BLOCK_MAX_DIM_FACTOR = 12
"""Krylov-space cap (12 k + b vectors) of the "block" method on a sparse P. Fashion-MNIST
latents, N = 60,000, k = 416 neighbours with the tail rule, K = 500: at the default cap of
the dense kernel (10 K + b = 5,064 vectors, 156 s) 449 of the 500 pairs had converged and
the largest residual was 7.7e-6; the basis holds 8 N bytes a vector (2.9 GB at 6,064)."""


def torch_csr(P: sp.spmatrix, dtype: torch.dtype) -> Tensor:
    """scipy sparse P as a torch CSR tensor in ``dtype`` (int32 indices: the products cost the
    same as with int64 on this machine, and the indices take half the memory)."""
    P = P.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(P.indptr.astype(np.int32)),
            torch.from_numpy(P.indices.astype(np.int32)),
            torch.from_numpy(P.data).to(dtype),
            size=P.shape,
            check_invariants=False,  # scipy's CSR is valid by construction
        )


BLOCK_LANCZOS_BLOCK = 64
"""Block size of :func:`block_lanczos_eigenpairs`. Dense kernel at N = 20,000, d = 16,
K = 500, float32 products, 2 threads: blocks of 64 converged at 3,264 vectors in 48.7 s
(solve and float64 residual check), blocks of 96 needed 3,744 vectors and 52.9 s; a
product costs 6.9 ms a vector with 64 columns, 5.9 with 96 and 5.6 with 128, but wider
blocks need a larger Krylov space."""

BLOCK_LANCZOS_FIRST_CHECK = 4
"""The first convergence check of :func:`block_lanczos_eigenpairs` comes at a Krylov space of
4 k vectors (on the dense diffusion-map kernel at N = 5,000 and 20,000, d = 16, K = 500, the
top 500 pairs converged between 4 k and 7 k). Each check costs an eigensolve of T, so the
next one is placed half-way to where the log of the largest residual estimate, extrapolated
linearly from the last two checks, reaches the target (between one block and k vectors
ahead): the estimates fall faster than linearly (N = 20,000: 2.1e-3 at 2,560 vectors,
2.3e-6 at 3,072, 2.1e-10 at 3,584), so the full extrapolation overshoots by several blocks,
each costing more than a check."""


def _top_ritz_pairs(T: Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``k`` eigenpairs of the symmetric T (m, m), eigenvalues descending: LAPACK's
    dsyevr for a subset (m = 3,000, k = 500: 1.5 s here, against 2.1 s for all pairs and 7.8 s
    for the banded solver, which forms the whole reduction matrix)."""
    from scipy.linalg import eigh

    m = T.shape[0]
    theta, Y = eigh(T.numpy(), subset_by_index=(m - k, m - 1), driver="evr")
    return theta[::-1].copy(), Y[:, ::-1].copy()


REFINE_STEPS = 3
"""Most float64 Rayleigh-Ritz steps of :func:`_refine_in_float64` after a block Lanczos
whose low-precision products left some pairs above tolerance."""


def _residuals(AV: Tensor, V: Tensor, lam: Tensor) -> Tensor:
    """|A v_j - lam_j v_j| / (|lam_1| |v_j|), (k,)."""
    res = torch.linalg.norm(AV - V * lam, dim=0) / max(abs(float(lam[0])), 1e-300)
    return res / torch.linalg.norm(V, dim=0)


def _refine_in_float64(
    apply64: Callable[[Tensor], Tensor],
    lam: Tensor,
    V: Tensor,
    AV: Tensor,
    res: Tensor,
    tol: float,
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Rayleigh-Ritz on span[V, R, A R], R = A V - V diag(lam) (a two-block Krylov space
    around the current vectors), with float64 products (``apply64``),
    repeated while some residual exceeds ``tol`` (at most REFINE_STEPS times; a step is kept
    only if it lowers the largest residual). Products in float32 (or TF32 on a GPU) bound how
    far the Lanczos residuals fall: the dense kernel at N = 20,000 on an H200 left 1 of 500
    pairs at 4.2e-6 > 1e-6; a step costs float64 products with (N, 4 k) columns in all.
    Returns (lam, V, residuals, steps taken)."""
    k = V.shape[1]
    steps = 0
    for _ in range(REFINE_STEPS):
        if float(res.max()) <= tol:
            break
        R = torch.linalg.qr(AV - V * lam).Q
        AR = apply64(R).to(torch.float64)
        S = torch.linalg.qr(torch.cat([V, R, AR - V @ (V.T @ AR) - R @ (R.T @ AR)], dim=1)).Q
        AS = apply64(S).to(torch.float64)
        T = S.T @ AS
        theta, Y = torch.linalg.eigh(0.5 * (T + T.T))
        theta, Y = theta.flip(0)[:k], Y.flip(1)[:, :k]
        V_new, AV_new = S @ Y, AS @ Y
        res_new = _residuals(AV_new, V_new, theta)
        steps += 1
        if float(res_new.max()) >= float(res.max()):
            break
        lam, V, AV, res = theta, V_new, AV_new, res_new
    return lam, V, res, steps


def block_lanczos_eigenpairs(
    apply: Callable[[Tensor], Tensor],
    n: int,
    k: int,
    *,
    block_size: int = BLOCK_LANCZOS_BLOCK,
    tol: float = EIG_TOL,
    max_dim: int | None = None,
    seed: int = 0,
    residual_apply: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
) -> EigenResult:
    """Largest-``k`` eigenpairs of a symmetric operator A (N, N), given by ``apply`` (an (N, b)
    float64 block -> A @ block, float64), by block Lanczos in float64.

    Krylov space span[Q_0, A Q_0, A^2 Q_0, ...] from a random orthonormal (N, b) start
    (``seed``); each new block is A Q_j minus its three-term recurrence part, then made
    orthogonal to the whole basis by one pass of block Gram-Schmidt, so T = Q^T A Q is
    block tridiagonal: T_jj = Q_j^T A Q_j and T_j+1,j = R_j from the QR of the new
    block. At checks (the first at
    BLOCK_LANCZOS_FIRST_CHECK k vectors, then where the estimates should pass) the Ritz
    pairs (theta_i, y_i) of T give the residual estimates |R_j y_i[last block]| / |theta_1|
    (Lanczos identity A Q = Q T + Q_j+1 R_j E_j^T). Growth stops when all k estimates are
    below tol / 10, or at ``max_dim`` (default min(N, 10 k + b)) vectors. The Ritz vectors
    Q Y are then checked against ``residual_apply`` (default ``apply``; pass the float64
    operator when ``apply`` multiplies in float32) as in :func:`relative_residuals`; a
    result above ``tol`` after up to REFINE_STEPS float64 Rayleigh-Ritz steps on
    span[V, R, A R], R = A V - V diag(lam) (only when ``residual_apply`` is given and some
    pair is above ``tol``: method "block_lanczos+rr64xS") says so in its ``warning``. The
    basis and T live on ``device`` (where ``apply`` works); the eigensolves of T run on the
    CPU. Cost: about dim / b products with (N, b) blocks plus O(N dim^2) for the
    orthogonalisation; memory (N, dim) float64.
    """
    if not 1 <= k <= n:
        raise SpectralError(f"need 1 <= k <= N = {n}, got k = {k}")
    b = max(1, min(int(block_size), n))
    cap = min(n, max_dim or 10 * k + b)
    cap = max(b, cap - cap % b)
    if cap < k:
        raise SpectralError(f"max_dim {cap} is smaller than k = {k}")
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    basis = torch.empty(n, cap, dtype=torch.float64, device=device)
    T = torch.zeros(cap, cap, dtype=torch.float64, device=device)
    start = torch.randn(n, b, generator=gen, dtype=torch.float64).to(device)
    basis[:, :b] = torch.linalg.qr(start).Q
    next_check = max(k, BLOCK_LANCZOS_FIRST_CHECK * k)
    last: tuple[int, float] | None = None  # (dim, largest estimate) at the previous check
    hi = b
    while True:
        lo = hi - b
        Q = basis[:, lo:hi]
        W = apply(Q).to(torch.float64)
        A_jj = Q.T @ W
        T[lo:hi, lo:hi] = 0.5 * (A_jj + A_jj.T)
        done = hi + b > cap
        if not done:
            # the three-term recurrence removes the large components, then one full pass of
            # classical Gram-Schmidt the small ones left by rounding (full re-orthogonalisation)
            W -= Q @ T[lo:hi, lo:hi]
            if lo:
                W -= basis[:, lo - b : lo] @ T[lo - b : lo, lo:hi]
            V = basis[:, :hi]
            W -= V @ (V.T @ W)
            Q_next, R = torch.linalg.qr(W)
            if float(R.diagonal().abs().min()) < 1e-10 * float(T[:hi, :hi].abs().max()):
                # (nearly) invariant subspace: continue from fresh random directions
                Z = torch.randn(n, b, generator=gen, dtype=torch.float64).to(device)
                for _ in range(2):
                    Z -= V @ (V.T @ Z)
                Q_next = torch.linalg.qr(Z).Q
                R = Q_next.T @ W
        if done or hi >= next_check:
            theta, Y = _top_ritz_pairs(T[:hi, :hi].cpu(), min(k, hi))
            if done:
                break
            est = float((np.linalg.norm(R.cpu().numpy() @ Y[lo:hi], axis=0) / abs(theta[0])).max())
            if theta.size == k and est <= 0.1 * tol:
                break
            ahead = k
            if last is not None and 0 < est < last[1]:
                slope = (math.log(last[1]) - math.log(est)) / (hi - last[0])
                ahead = math.ceil(0.5 * math.log(est / (0.1 * tol)) / slope)
            next_check = hi + min(max(ahead, b), k)
            last = (hi, est)
        basis[:, hi : hi + b] = Q_next
        T[hi : hi + b, lo:hi] = R
        T[lo:hi, hi : hi + b] = R.T
        hi += b
    vec = basis[:, :hi] @ torch.from_numpy(Y).to(device)
    del basis
    lam = torch.from_numpy(theta).to(device)
    seconds = time.perf_counter() - t0
    check = residual_apply or apply
    AV = check(vec).to(torch.float64)
    res = _residuals(AV, vec, lam)
    method = "block_lanczos"
    if residual_apply is not None and float(res.max()) > tol:
        lam, vec, res, steps = _refine_in_float64(check, lam, vec, AV, res, tol)
        method = f"block_lanczos+rr64x{steps}"
    return EigenResult(
        eigenvalues=lam,
        eigenvectors=vec,
        residuals=res.cpu(),
        method=method,
        seconds=seconds,
        tol=float(tol),
        n_requested=int(k),
    )
