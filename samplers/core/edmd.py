"""EDMD: Koopman / generator spectra of overdamped Langevin dynamics from samples only.

Pipeline (the EDMD part of the DMPS/KSWGD reference notebook, sections 4-6):

1. One-step Langevin pairs with a KDE drift s = grad log KDE:
       X' = X + dt s(X) + sqrt(2 dt) xi,   xi ~ N(0, I)              (X, X': (N, d))
2. A dictionary psi: R^d -> R^M (sparse dictionary codes + constant, Gaussian RBF features on
   k-means centres, or monomials), Psi_X = psi(X), Psi_Y = psi(X')  (N, M), and
       G = Psi_X^T Psi_X / N + reg I,   A = Psi_X^T Psi_Y / N,   A v = mu G v
   (the Koopman matrix is G^-1 A); eigenfunctions on the training points phi = Psi_X v.
   Kernel EDMD (Williams, Rowley & Kevrekidis 2015) solves the same problem in Gram form with
   G_hat = k(X, X), A_hat = k(X', X) (N, N), no explicit dictionary.
3. Generator eigenvalues lambda_gen = (mu - 1) / dt (decaying modes: Re mu < 1, lambda_gen < 0).

Transport modes (what KSWGD needs): the LAWGD kernel is (-L)^-1 = sum_k phi_k phi_k / (-lambda_k),
a positive operator on non-constant modes, so the weights are w_k = -1/lambda_gen_k = dt/(1-mu_k)
> 0. (The notebook uses 1/lambda_gen < 0, which makes the transport *ascend* the KL; see
``tests/samplers/test_edmd.py``.) Complex eigenvalues (spurious for reversible Langevin dynamics,
whose generator is self-adjoint in L2(pi), but EDMD's finite-sample matrix is not symmetric) are
handled explicitly by :func:`transport_modes` (``complex_modes``), and counted.

All numerics here are float64 numpy/scipy on the CPU (the operator is small: M x M or a rank-r
Gram factor); the torch tensors of the samplers cross the boundary in :func:`langevin_pairs` and
in the sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import scipy.spatial
import torch
from torch import Tensor

from common import random
from common.geometry import median_bandwidth_sq, median_sq_distance
from samplers.core.scores import KDEScore

COMPLEX_MODES = ("pair", "real", "drop")
PAIR_BANDWIDTHS = ("median", "notebook")


class EDMDError(ValueError):
    """Bad input to the EDMD pipeline (shapes, NaN, no usable modes, unknown option)."""


# ---------------------------------------------------------------------------------------
# 1. One-step Langevin pairs
# ---------------------------------------------------------------------------------------
def pair_bandwidth(train: Tensor, bandwidth: float | str = "median") -> float:
    """KDE bandwidth h (not h^2) for the Langevin pairs.

    "median": the suite's heuristic h^2 = median|X_a - X_b|^2 / (2 log(N + 1)) (the default);
    "notebook": h^2 = median|X_a - X_b|^2, the reference notebook's choice. The notebook's h
    over-smooths: the KDE is pi * N(0, h^2 I), so for a standardised target the pairs' process
    has stationary variance 1 + h^2 (about 3 per coordinate in 2-D) and its generator spectrum is
    shrunk by ~1/(1 + h^2) (measured in ``tests/samplers/test_edmd.py``). A positive float is
    used as h.
    """
    if bandwidth == "median":
        return math.sqrt(median_bandwidth_sq(train))
    if bandwidth == "notebook":
        return math.sqrt(median_sq_distance(train) + 1e-12)
    if isinstance(bandwidth, (int, float)) and not isinstance(bandwidth, bool) and bandwidth > 0:
        return float(bandwidth)
    raise EDMDError(f"pair bandwidth must be one of {PAIR_BANDWIDTHS} or a positive float")


def langevin_pairs(
    train: Tensor,
    dt: float,
    gen: torch.Generator,
    *,
    bandwidth: float | str = "median",
) -> tuple[Tensor, float]:
    """One Euler-Maruyama step of dX = s(X) dt + sqrt(2) dW from every training point.

    X' = X + dt * s(X) + sqrt(2 dt) * xi with s the Gaussian-KDE score on ``train`` (N, d)
    (:class:`samplers.core.scores.KDEScore`, bandwidth from :func:`pair_bandwidth`) and xi drawn
    from ``gen``. Returns (X' (N, d), h).
    """
    _check_cloud(train, "train")
    if not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise EDMDError(f"dt must be a positive finite float, got {dt!r}")
    h = pair_bandwidth(train, bandwidth)
    score = KDEScore(train, bandwidth=h)
    noise = random.randn(train.shape, generator=gen, dtype=train.dtype, device=train.device)
    return train + dt * score(train) + math.sqrt(2.0 * dt) * noise, h


# ---------------------------------------------------------------------------------------
# 2. Dictionaries: fit on X (N, d) numpy, transform -> (N, M) numpy
# ---------------------------------------------------------------------------------------
class Dictionary(Protocol):
    """A dictionary psi: fitted on the training points, evaluated on any points."""

    name: str

    def fit(self, x: np.ndarray, seed: int) -> Dictionary: ...

    def transform(self, x: np.ndarray) -> np.ndarray: ...


@dataclass
class SparseDictionary:
    """Sparse dictionary-learning codes plus a constant feature: psi(x) = [1, code(x)] (M = K+1).

    Codes solve min_a |x - D a|^2/2 + alpha |a|_1 for atoms D (K, d) learnt by scikit-learn's
    ``MiniBatchDictionaryLearning`` (notebook values: K = 100 atoms, alpha = 1e-3, batch 256,
    max_iter 500, fit_algorithm "lars"). ``transform_algorithm`` is scikit-learn's default
    "omp" as in the notebook (with d < 20 that is ONE nonzero coefficient per point: the code
    is <x, d_k> on the best-matching atom k) unless set, e.g. to "lasso_lars".
    sklearn's ``random_state`` is the fit seed.
    """

    n_components: int = 100
    alpha: float = 1e-3
    batch_size: int = 256
    max_iter: int = 500
    fit_algorithm: str = "lars"
    transform_algorithm: str = "omp"
    name: str = "sparse"
    model: Any = field(default=None, repr=False)

    def fit(self, x: np.ndarray, seed: int) -> SparseDictionary:
        from sklearn.decomposition import MiniBatchDictionaryLearning

        self.model = MiniBatchDictionaryLearning(
            n_components=self.n_components,
            alpha=self.alpha,
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            fit_algorithm=self.fit_algorithm,
            transform_algorithm=self.transform_algorithm,
            transform_alpha=self.alpha,
            random_state=int(seed) % (2**32),
        )
        self.model.fit(x)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        codes = self.model.transform(x)
        return np.hstack([np.ones((x.shape[0], 1)), codes])


@dataclass
class RBFDictionary:
    """Gaussian RBF features on k-means centres plus a constant: psi(x) = [1, exp(-|x-c_j|^2/2h^2)].

    Centres c (K, d) from scikit-learn ``KMeans`` (n_init=1, seeded); h^2 = median squared
    distance between centres / (2 log(K + 1)) unless ``bandwidth`` (h) is given.
    """

    n_centres: int = 100
    bandwidth: float | None = None
    name: str = "rbf"
    centres: np.ndarray | None = field(default=None, repr=False)
    h2: float = 0.0

    def fit(self, x: np.ndarray, seed: int) -> RBFDictionary:
        from sklearn.cluster import KMeans

        k = min(self.n_centres, x.shape[0])
        km = KMeans(n_clusters=k, n_init=1, random_state=int(seed) % (2**32)).fit(x)
        self.centres = km.cluster_centers_
        if self.bandwidth is None:
            d2 = scipy.spatial.distance.pdist(self.centres, "sqeuclidean")
            self.h2 = float(np.median(d2)) / (2.0 * math.log(k + 1)) if d2.size else 1.0
        else:
            self.h2 = float(self.bandwidth) ** 2
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        d2 = scipy.spatial.distance.cdist(x, self.centres, "sqeuclidean")
        return np.hstack([np.ones((x.shape[0], 1)), np.exp(-d2 / (2.0 * self.h2))])


@dataclass
class MonomialDictionary:
    """All monomials x^a with |a| <= degree (constant included): M = C(d + degree, degree)."""

    degree: int = 4
    name: str = "monomial"
    exponents: np.ndarray | None = field(default=None, repr=False)

    def fit(self, x: np.ndarray, seed: int) -> MonomialDictionary:
        from itertools import combinations_with_replacement

        d = x.shape[1]
        rows = []
        for deg in range(self.degree + 1):
            for combo in combinations_with_replacement(range(d), deg):
                rows.append(np.bincount(np.asarray(combo, dtype=int), minlength=d))
        self.exponents = np.asarray(rows, dtype=int).reshape(-1, d)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.prod(x[:, None, :] ** self.exponents[None, :, :], axis=2)


# ---------------------------------------------------------------------------------------
# 3. Koopman spectra: dictionary EDMD and kernel EDMD
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KoopmanSpectrum:
    """EDMD spectrum sorted by decreasing Re(mu).

    mu: (M,) complex Koopman eigenvalues; efuns: (N, M) complex eigenfunctions on the training
    points; dt: the pair time step; lambda_gen = (mu - 1)/dt; method: how it was computed.
    """

    mu: np.ndarray
    efuns: np.ndarray
    dt: float
    method: str

    @property
    def lambda_gen(self) -> np.ndarray:
        return (self.mu - 1.0) / self.dt

    def n_complex(self, imag_tol: float = 1e-6) -> int:
        """Number of eigenvalues with |Im mu| > imag_tol * |mu| (they come in conjugate pairs)."""
        return int(np.sum(_is_complex(self.mu, imag_tol)))


def _is_complex(mu: np.ndarray, imag_tol: float) -> np.ndarray:
    return np.abs(mu.imag) > imag_tol * np.maximum(np.abs(mu), 1e-300)


def _sorted_spectrum(mu: np.ndarray, efuns: np.ndarray, dt: float, method: str) -> KoopmanSpectrum:
    finite = np.isfinite(mu)
    mu, efuns = mu[finite], efuns[:, finite]
    order = np.lexsort((-mu.imag, -mu.real))  # decreasing real part, +imag first within a pair
    return KoopmanSpectrum(mu=mu[order], efuns=efuns[:, order], dt=float(dt), method=method)


def edmd_matrices(psi_x: np.ndarray, psi_y: np.ndarray, reg: float) -> tuple[np.ndarray, ...]:
    """G = Psi_X^T Psi_X / N + reg I and A = Psi_X^T Psi_Y / N, both (M, M)."""
    if psi_x.shape != psi_y.shape or psi_x.ndim != 2:
        raise EDMDError(f"Psi_X {psi_x.shape} and Psi_Y {psi_y.shape} must be equal (N, M)")
    if not (np.isfinite(psi_x).all() and np.isfinite(psi_y).all()):
        raise EDMDError("dictionary features contain NaN or inf")
    n, m = psi_x.shape
    g = psi_x.T @ psi_x / n + reg * np.eye(m)
    a = psi_x.T @ psi_y / n
    return g, a


def edmd_spectrum(
    psi_x: np.ndarray, psi_y: np.ndarray, dt: float, reg: float = 1e-3
) -> KoopmanSpectrum:
    """Dictionary EDMD: solve A v = mu G v (scipy.linalg.eig); eigenfunctions Psi_X v (N, M)."""
    g, a = edmd_matrices(psi_x, psi_y, reg)
    mu, v = scipy.linalg.eig(a, g)
    return _sorted_spectrum(mu, psi_x @ v, dt, "dictionary")


def gaussian_gram(x: np.ndarray, y: np.ndarray, h2: float) -> np.ndarray:
    """k(x_i, y_j) = exp(-|x_i - y_j|^2 / (2 h^2)), shape (n, m)."""
    return np.exp(-scipy.spatial.distance.cdist(x, y, "sqeuclidean") / (2.0 * h2))


def polynomial_gram(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    """k(x_i, y_j) = (1 + <x_i, y_j>)^degree, shape (n, m) (feature space: monomials <= degree)."""
    return (1.0 + x @ y.T) ** degree


def kernel_edmd_spectrum(
    x: np.ndarray,
    y: np.ndarray,
    dt: float,
    *,
    kernel: str = "gaussian",
    bandwidth: float | None = None,
    degree: int = 4,
    rank: int = 200,
    rtol: float = 1e-2,
) -> KoopmanSpectrum:
    """Kernel EDMD (Williams, Rowley & Kevrekidis 2015), no explicit dictionary.

    G_hat = k(X, X) = Q S^2 Q^T (eigh, keep the ``rank`` largest with S^2 > rtol max S^2),
    A_hat_ij = k(x'_i, x_j); K_hat = S^-1 Q^T A_hat Q S^-1 (r, r) equals the EDMD matrix G^+ A of
    the kernel's feature map restricted to the span of the data; K_hat v = mu v and the
    eigenfunctions on the training points are Q S v (N, r). Gaussian kernel bandwidth h: the
    suite's median heuristic unless given; polynomial kernel (1 + <x, y>)^degree.
    The truncation is the regularisation: Gaussian Gram matrices are numerically singular and
    S^-1 amplifies the noise of A_hat; measured on 1-D OU pairs (N = 1000, dt = 0.1), rtol =
    1e-4..1e-10 produced spurious growing modes (mu up to ~65) in some seeds, rtol = 1e-2
    (r ~ 18) none, hence the default.
    """
    if kernel == "gaussian":
        if bandwidth is None:
            h2 = median_bandwidth_sq(torch.from_numpy(x))
        else:
            h2 = float(bandwidth) ** 2
        gram, cross = gaussian_gram(x, x, h2), gaussian_gram(y, x, h2)
    elif kernel == "polynomial":
        gram, cross = polynomial_gram(x, x, degree), polynomial_gram(y, x, degree)
    else:
        raise EDMDError(f"unknown kernel {kernel!r}; known: 'gaussian', 'polynomial'")
    s2, q = np.linalg.eigh(gram)
    s2, q = s2[::-1], q[:, ::-1]
    keep = s2 > rtol * s2[0]
    keep[rank:] = False
    s = np.sqrt(s2[keep])
    q = q[:, keep]
    k_hat = (q.T @ cross @ q) / s[:, None] / s[None, :]
    mu, v = scipy.linalg.eig(k_hat)
    return _sorted_spectrum(mu, (q * s[None, :]) @ v, dt, f"kernel-{kernel}(r={s.size})")


# ---------------------------------------------------------------------------------------
# 4. From a spectrum to transport modes (Phi, w)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransportModes:
    """Real transport modes: phi (N, K) with unit Euclidean columns, weights w (K,) > 0.

    S = phi diag(w) phi^T approximates the symmetric part of (-L)^-1 on the kept modes.
    facts: n_modes, n_complex (complex eigenvalues among the candidates), n_dropped_*.
    """

    phi: np.ndarray
    weights: np.ndarray
    mu: np.ndarray
    facts: dict[str, Any]


def transport_modes(
    spectrum: KoopmanSpectrum,
    *,
    mode_skip: int = 1,
    mu_threshold: float = 1e-6,
    complex_modes: str = "pair",
    imag_tol: float = 1e-6,
    max_modes: int | None = None,
    center: bool = True,
) -> TransportModes:
    """Select modes and weights w = -1/lambda_gen = dt/(1 - mu) for the LAWGD/KSWGD transport.

    Candidates: all modes but the ``mode_skip`` eigenvalues nearest to mu = 1 (the constant
    mode; the notebook's mode_skip_edmd = 1 skips the first in decreasing Re mu, the same mode
    unless a spurious Re mu > 1 appears, as in kernel EDMD), with mu_threshold < Re mu and
    |lambda_gen| = (1 - Re mu)/dt > 1e-6 with Re mu < 1 (Re mu <= threshold: noise, notebook's
    eig_threshold_edmd; Re mu >= 1: non-decaying, its weight would be infinite or negative).
    An eigenvalue is *complex* when |Im mu| > imag_tol |mu| (they come in conjugate pairs);
    nearly-real ones use Re(phi) with weight dt/(1 - Re mu). ``complex_modes``:
      "pair": each conjugate pair (phi, conj phi) becomes the real functions Re phi, Im phi
              spanning its real invariant subspace, both weighted Re(dt/(1 - mu)) > 0: this is
              the symmetric part of w phi(x) conj phi(y) + conj(w phi(x)) phi(y);
      "real": keep only Re phi, once per pair, weight dt/(1 - Re mu) (the notebook's np.real
              without its double counting of the pair);
      "drop": discard complex pairs.
    ``center`` (default True) subtracts each eigenfunction's mean over the training points
    first: (-L)^-1 acts on mean-zero functions (eigenfunctions of the self-adjoint generator
    with lambda != 0 are orthogonal to constants in L2(pi)), but finite-sample EDMD
    eigenfunctions are not (measured: mean/rms up to 0.86 on a 2-D mixture), and then the
    target is not a zero of the transport's energy sum_k w_k (E_rho Kt phi_k)^2; uncentred
    modes sent particles away in half the seeds (energy distance 1.3 vs 0.1 centred).
    Each returned column is then scaled to unit Euclidean norm over the N training points (as
    diffusion-map eigenvectors from eigh); a pair's two columns share the scale of the complex
    phi. ``max_modes`` keeps the slowest modes first.
    """
    if complex_modes not in COMPLEX_MODES:
        raise EDMDError(f"complex_modes must be one of {COMPLEX_MODES}, got {complex_modes!r}")
    mu, efuns, dt = spectrum.mu, spectrum.efuns, spectrum.dt
    if mode_skip < 0:
        raise EDMDError(f"mode_skip must be >= 0, got {mode_skip!r}")
    skipped = np.argsort(np.abs(mu - 1.0), kind="stable")[:mode_skip]
    idx = np.setdiff1d(np.arange(mu.size), skipped)
    decaying = (mu.real[idx] > mu_threshold) & ((1.0 - mu.real[idx]) / dt > 1e-6)
    n_dropped_threshold = int(np.sum(~decaying))
    idx = idx[decaying]
    cplx = _is_complex(mu[idx], imag_tol)
    n_complex = int(np.sum(cplx))
    cols: list[np.ndarray] = []
    weights: list[float] = []
    mus: list[complex] = []
    for i, is_c in zip(idx, cplx, strict=True):
        if is_c and mu[i].imag < 0:
            continue  # the conjugate partner (Im > 0) represents the pair
        f = efuns[:, i]
        if center:
            f = f - f.mean()
        if not is_c:
            # real eigenvalue: eigenvector real up to a complex phase; remove it, then Re.
            f = f * np.exp(-1j * np.angle(f[np.argmax(np.abs(f))]))
            cols.append(_unit(f.real))
            weights.append(dt / (1.0 - mu[i].real))
            mus.append(mu[i])
        elif complex_modes == "pair":
            nrm = np.linalg.norm(f)
            w = (dt / (1.0 - mu[i])).real
            cols += [math.sqrt(2.0) * f.real / nrm, math.sqrt(2.0) * f.imag / nrm]
            weights += [w, w]
            mus += [mu[i], np.conj(mu[i])]
        elif complex_modes == "real":
            cols.append(_unit(f.real))
            weights.append(dt / (1.0 - mu[i].real))
            mus.append(mu[i])
    if max_modes is not None:
        cols, weights, mus = cols[:max_modes], weights[:max_modes], mus[:max_modes]
    if not cols:
        raise EDMDError(
            f"no EDMD mode survived selection (mode_skip={mode_skip}, mu_threshold={mu_threshold},"
            f" complex_modes={complex_modes!r}); leading mu: {np.round(mu[:6], 4)}"
        )
    facts = {
        "n_modes": len(cols),
        "n_complex": n_complex,
        "n_complex_total": spectrum.n_complex(imag_tol),
        "n_dropped_threshold": n_dropped_threshold,
        "complex_modes": complex_modes,
        "centered": bool(center),
    }
    return TransportModes(
        phi=np.stack(cols, axis=1),
        weights=np.asarray(weights, dtype=float),
        mu=np.asarray(mus),
        facts=facts,
    )


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def _check_cloud(x: Tensor, what: str) -> None:
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[0] < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise EDMDError(f"{what} must be an (N >= 2, d) tensor, got {shape}")
    if not x.dtype.is_floating_point or not bool(torch.isfinite(x).all()):
        raise EDMDError(f"{what} must be a finite floating tensor")
