"""The Koopman-Markov construction of EDMD-KSWGD (the method's origin code, sphere experiments).

Training points X (N, d) and their one-step Langevin images Y (N, d) (see
:func:`samplers.core.edmd.langevin_pairs`). Kernel EDMD in Gram form, no dictionary:

    G_ab = k(X_a, X_b),   C_ab = k(Y_a, X_b)                                  (N, N)
    K = C (G + ridge I)^-1                                                    (N, N)

(row a of K: (K f)_a = sum_b C_ab c_b with c = (G + ridge I)^-1 f, the kernel interpolant of f
evaluated at Y_a, i.e. the Koopman operator E[f(X_{t+dt}) | X_t = X_a] on the data). NaNs are
set to 0; if min K < 0 the whole matrix is shifted, K <- K - min K (entries >= 0). Then the
diffusion-map normalisation is applied to K as to a kernel matrix:

    p_a = sum_b K_ab,   A = K / sqrt(p p^T),   D_b = sum_a A_ab,
    P = (A / D[None, :] + A / D[:, None]) / 2,   P <- (P + P^T) / 2           (symmetric)

and P = Phi diag(s) Phi^T (eigh, s descending). Weights as DMPS
(:func:`samplers.core.spectral.lawgd_weights`): w_k = (eps / (s_k + reg))^2 eps / (1 - s_k), the
constant mode (k = 0) and modes with s_k < tol get weight 0.

Note on p: the issue's p = sqrt(row sums) and A = K / (p p^T) is the same matrix A; here ``p``
holds the row sums themselves, the convention of :class:`samplers.core.spectral.DiffusionMapKernel`
(whose out-of-sample kernel divides by sqrt(p_a)). The out-of-sample kernel of this
construction is DMPS's Gaussian one with (p, D) replaced by the Koopman (p, D) above
(:func:`koopman_markov_kernel`), so the LAWGD particle update is unchanged.

Kernels k of the Gram matrices: "gaussian" exp(-|x - y|^2 / (2 eps_K)) (eps_K the suite's median
heuristic unless given) or "polynomial" (1 + <x, y>)^degree (the origin script: degree 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from common.geometry import capped_median_bandwidth_sq
from samplers.core.spectral import (
    DiffusionMapKernel,
    SpectralError,
    lawgd_weights,
    squared_distances,
    symmetric_eigh,
)

GramKernel = Literal["gaussian", "polynomial"]
GRAM_KERNELS = ("gaussian", "polynomial")


def gram_matrices(
    X: Tensor,
    Y: Tensor,
    *,
    kernel: GramKernel = "gaussian",
    eps: float | None = None,
    degree: int = 10,
) -> tuple[Tensor, Tensor]:
    """G = k(X, X) and C = k(Y, X), both (N, N), for the Gram-form Koopman matrix.

    X (N, d); Y (N, d) one image per point, or (R, N, d) R independent images per point, in
    which case C = (1/R) sum_r k(Y_r, X) (a Monte Carlo average of E[k(X_{t+dt}, X_b) | X_a]).
    "gaussian": k(x, y) = exp(-|x - y|^2 / (2 eps)), eps = median heuristic on X when None;
    "polynomial": k(x, y) = (1 + <x, y>)^degree.
    """
    Ys = Y if Y.ndim == 3 else Y[None]
    if X.ndim != 2 or Ys.shape[1:] != X.shape:
        raise SpectralError(f"Y {tuple(Y.shape)} must be (N, d) or (R, N, d), X {tuple(X.shape)}")
    if kernel == "gaussian":
        e = capped_median_bandwidth_sq(X) if eps is None else float(eps)
        if not (math.isfinite(e) and e > 0):
            raise SpectralError(f"Gram bandwidth must be positive and finite, got {e!r}")

        def k(a: Tensor) -> Tensor:
            return squared_distances(a, X).mul_(-0.5 / e).exp_()

    elif kernel == "polynomial":

        def k(a: Tensor) -> Tensor:
            return (1.0 + a @ X.T) ** int(degree)

    else:
        raise SpectralError(f"unknown Gram kernel {kernel!r}; use one of {GRAM_KERNELS}")
    C = k(Ys[0])
    for y in Ys[1:]:
        C += k(y)
    return k(X), C / Ys.shape[0]


def koopman_gram_matrix(G: Tensor, C: Tensor, ridge: float = 1e-6) -> Tensor:
    """K = C (G + ridge I)^-1 (N, N), NaNs set to 0.

    Computed as K^T = (G + ridge I)^-1 C^T (G symmetric) by one LU solve.
    """
    n = G.shape[0]
    eye = torch.eye(n, dtype=G.dtype, device=G.device)
    K = torch.linalg.solve(G + ridge * eye, C.T).T
    return torch.nan_to_num(K, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class KoopmanMarkov:
    """The symmetric Markov matrix P (N, N) built from a Koopman matrix, and its degrees.

    p (N,): row sums of the (shifted) Koopman matrix; D (N,): column sums of
    A = K / sqrt(p p^T); shift: the amount added to every entry of K (0 when min K >= 0).
    """

    P: Tensor
    p: Tensor
    D: Tensor
    shift: float


def koopman_markov_matrix(K: Tensor) -> KoopmanMarkov:
    """Shift K to non-negative entries, then the diffusion-map normalisation (module doc)."""
    K = torch.nan_to_num(K, nan=0.0, posinf=0.0, neginf=0.0)
    k_min = float(K.min())
    shift = -k_min if k_min < 0 else 0.0
    if shift:
        K = K + shift
    p = K.sum(1)
    if not bool((p > 0).all()):
        raise SpectralError("Koopman matrix has a zero row after the shift; no Markov matrix")
    inv_sqrt_p = p.rsqrt()
    A = K * inv_sqrt_p[:, None] * inv_sqrt_p[None, :]
    D = A.sum(0)
    if not bool((D > 0).all()):
        raise SpectralError("Koopman matrix has a zero column after the shift; no Markov matrix")
    P = 0.5 * (A / D[None, :] + A / D[:, None])
    P = 0.5 * (P + P.T)
    return KoopmanMarkov(P=P, p=p, D=D, shift=shift)


@dataclass(frozen=True)
class KoopmanMarkovModes:
    """Transport modes Phi (N, K) (orthonormal columns), weights w (K,) > 0, eigenvalues s
    (K,) of the kept modes, and the leading eigenvalue s_0 (the constant mode's, ~1)."""

    Phi: Tensor
    w: Tensor
    s: Tensor
    s0: float


def koopman_markov_modes(
    P: Tensor, eps: float, *, n_modes: int | None = 500, reg: float = 1e-3, tol: float = 1e-6
) -> KoopmanMarkovModes:
    """Eigenpairs of the symmetric P (descending), DMPS weights; mode 0 and s_k < tol dropped,
    then at most ``n_modes`` modes kept (slowest first)."""
    lam, vec = symmetric_eigh(P)
    lam, vec = lam.to(P.device), vec.to(P.device)
    w = lawgd_weights(lam, eps, reg=reg, tol=tol)
    keep = torch.nonzero(w > 0).squeeze(1)
    if n_modes is not None:
        keep = keep[: int(n_modes)]
    if keep.numel() == 0:
        raise SpectralError("no Koopman-Markov mode passed the tolerance")
    return KoopmanMarkovModes(
        Phi=vec[:, keep].contiguous(), w=w[keep], s=lam[keep], s0=float(lam[0])
    )


def koopman_markov_kernel(X: Tensor, eps: float, km: KoopmanMarkov) -> DiffusionMapKernel:
    """DMPS's out-of-sample kernel on X with bandwidth eps and the Koopman (p, D).

    Kt_a(x) = (M_a(x) / D_a + M_a(x) / sum_b M_b(x)) / 2, M_a(x) = k_a(x) / sqrt(p(x) p_a),
    k_a(x) = exp(-|x - X_a|^2 / (2 eps)), p(x) = sum_a k_a(x), p_a and D_a from ``km``.
    """
    return DiffusionMapKernel(X=X, eps=float(eps), p=km.p.to(X.dtype), D=km.D.to(X.dtype))
