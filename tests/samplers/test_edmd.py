"""EDMD Koopman spectra against closed forms (Ornstein-Uhlenbeck, rotations) and kernel EDMD.

1-D OU: dX = -X dt + sqrt(2) dW, stationary N(0, 1), exact transitions
X' = e^{-dt} X + sqrt(1 - e^{-2dt}) xi. Polynomials of degree <= n are invariant under its
Koopman operator, with eigenvalues mu_k = exp(-k dt) (Hermite eigenfunctions He_k), so a
monomial dictionary of degree 4 recovers lambda_gen_k = (mu_k - 1)/dt = (exp(-k dt) - 1)/dt up
to finite-sample error ~ c_k / sqrt(N dt). Tolerances are ~5 standard deviations measured over
20 seeds at N = 100000 (std of lambda_gen_1..3: dt = 0.1: 0.013, 0.045, 0.13; dt = 0.5: 0.005,
0.012, 0.025); each test also checks that the wrong sign or a missing 1/dt would fail it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.random import make_generator
from samplers.core.edmd import (
    EDMDError,
    KoopmanSpectrum,
    MonomialDictionary,
    RBFDictionary,
    SparseDictionary,
    edmd_spectrum,
    kernel_edmd_spectrum,
    langevin_pairs,
    pair_bandwidth,
    transport_modes,
)


def ou_pairs(n: int, dt: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1))
    y = math.exp(-dt) * x + math.sqrt(1 - math.exp(-2 * dt)) * rng.normal(size=(n, 1))
    return x, y


def monomial_spectrum(x: np.ndarray, y: np.ndarray, dt: float, degree: int) -> KoopmanSpectrum:
    d = MonomialDictionary(degree).fit(x, seed=0)
    return edmd_spectrum(d.transform(x), d.transform(y), dt, reg=0.0)


def wrong_conventions_would_fail(lam_theory: np.ndarray, tol: np.ndarray, dt: float) -> None:
    """The tolerance must exclude +lambda (sign) and lambda * dt (no 1/dt scaling)."""
    k = np.arange(1, lam_theory.size)
    assert np.all(np.abs(-lam_theory[k] - lam_theory[k]) > tol[k])
    assert np.all(np.abs(lam_theory[k] * dt - lam_theory[k]) > tol[k])


# ---------------------------------------------------------------------------------------
# Exact OU transitions
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dt", "tol"),
    [(0.1, np.array([1e-9, 0.07, 0.25, 0.65])), (0.5, np.array([1e-9, 0.025, 0.06, 0.125]))],
)
def test_ou_exact_transitions_recover_koopman_spectrum(dt: float, tol: np.ndarray) -> None:
    x, y = ou_pairs(100_000, dt, seed=1)
    spec = monomial_spectrum(x, y, dt, degree=4)
    k = np.arange(4)
    mu_theory = np.exp(-k * dt)
    lam_theory = (mu_theory - 1.0) / dt
    assert np.all(np.abs(spec.mu[:4].imag) < 1e-12), spec.mu[:4]
    err = np.abs(spec.lambda_gen[:4].real - lam_theory)
    assert np.all(err < tol), f"lambda_gen {spec.lambda_gen[:4].real} vs {lam_theory}"
    # decaying modes have mu < 1 and lambda_gen < 0; the constant mode is exact
    assert abs(spec.mu[0] - 1.0) < 1e-10
    assert np.all(spec.lambda_gen[1:4].real < 0)
    wrong_conventions_would_fail(lam_theory, tol, dt)


def test_ou_eigenfunctions_are_hermite() -> None:
    """Mode k's eigenfunction on the data is proportional to He_k (He_1 = x, He_2 = x^2 - 1,
    He_3 = x^3 - 3x); Hermite polynomials are orthogonal under N(0,1), so a wrong mode would
    correlate ~0 with He_k (checked: |corr| < 0.2 with the others)."""
    x, y = ou_pairs(100_000, 0.5, seed=2)
    spec = monomial_spectrum(x, y, 0.5, degree=4)
    t = x[:, 0]
    hermite = {1: t, 2: t**2 - 1, 3: t**3 - 3 * t}
    for k, he in hermite.items():
        f = spec.efuns[:, k].real
        corr = abs(np.corrcoef(f, he)[0, 1])
        assert corr > 0.98, f"mode {k}: |corr with He_{k}| = {corr:.4f}"
        for j, other in hermite.items():
            if j != k:
                assert abs(np.corrcoef(f, other)[0, 1]) < 0.2


# ---------------------------------------------------------------------------------------
# KDE-drift Langevin pairs (what the sampler uses)
# ---------------------------------------------------------------------------------------
def test_langevin_pairs_are_seeded_and_follow_the_kde_drift() -> None:
    x = torch.randn(500, 2, generator=make_generator(0), dtype=torch.float64)
    y1, h = langevin_pairs(x, 0.1, make_generator(7))
    y2, _ = langevin_pairs(x, 0.1, make_generator(7))
    y3, _ = langevin_pairs(x, 0.1, make_generator(8))
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    # conditional mean over the noise = x + dt * score(x): average 400 noise draws
    from samplers.core.scores import KDEScore

    # (replicating the points 400 times leaves the KDE, hence the drift, unchanged)
    gen = make_generator(3)
    draws, _ = langevin_pairs(x[:20].repeat(400, 1), 0.1, gen, bandwidth=h)
    mean = draws.reshape(400, 20, 2).mean(0)
    drift = x[:20] + 0.1 * KDEScore(x[:20], bandwidth=h)(x[:20])
    assert torch.allclose(mean, drift, atol=4 * math.sqrt(0.2 / 400))
    with pytest.raises(EDMDError, match="dt"):
        langevin_pairs(x, -0.1, make_generator(0))
    with pytest.raises(EDMDError, match="finite"):
        langevin_pairs(torch.full((5, 2), float("nan"), dtype=torch.float64), 0.1, gen)


def test_ou_kde_drift_pairs_recover_spectrum_loosely() -> None:
    """Pairs from N(0,1) samples with the KDE drift (median bandwidth h, h^2 ~ 0.05).

    With infinitely many samples the KDE score is -x/(1 + h^2), so the Euler pairs have the
    Koopman eigenvalues mu_k = (1 - dt/(1 + h^2))^k on polynomials exactly; this is within
    0.01 of the OU values (exp(-k dt) - 1)/dt at dt = 0.1. Degree 3: with degree 4 the KDE's
    self-term (isolated tail points get zero drift, only diffusion) creates a spurious growing
    x^4 mode (measured mu_0 up to 1.08). Measured over 6 seeds at N = 4000 (std 0.07, 0.19,
    0.30 for k = 1, 2, 3); N = 6000 here, tolerances ~3-4 std.
    """
    dt = 0.1
    x = torch.randn(6000, 1, generator=make_generator(11), dtype=torch.float64)
    y, h = langevin_pairs(x, dt, make_generator(12))
    spec = monomial_spectrum(x.numpy(), y.numpy(), dt, degree=3)
    k = np.arange(4)
    theta = 1.0 / (1.0 + h * h)
    lam_theory = ((1.0 - theta * dt) ** k - 1.0) / dt
    lam_ou = (np.exp(-k * dt) - 1.0) / dt
    assert np.all(np.abs(lam_theory - lam_ou) < 0.02)
    tol = np.array([1e-9, 0.2, 0.5, 0.8])
    err = np.abs(spec.lambda_gen[:4].real - lam_theory)
    assert np.all(err < tol), f"lambda_gen {spec.lambda_gen[:4].real} vs {lam_theory}"
    wrong_conventions_would_fail(lam_theory, tol, dt)


def test_notebook_bandwidth_shrinks_the_generator_spectrum() -> None:
    """h^2 = median|X_a - X_b|^2 (notebook) smooths N(0,1) into N(0, 1 + h^2), h^2 ~ 0.9: the
    pairs' first generator eigenvalue is ~ -1/(1 + h^2) ~ -0.52, not the target's -0.95.
    This is why the sampler defaults to the suite's median heuristic."""
    dt = 0.1
    x = torch.randn(4000, 1, generator=make_generator(21), dtype=torch.float64)
    y, h = langevin_pairs(x, dt, make_generator(22), bandwidth="notebook")
    assert abs(h - pair_bandwidth(x, "notebook")) < 1e-12 and 0.8 < h * h < 1.05
    lam1 = monomial_spectrum(x.numpy(), y.numpy(), dt, degree=3).lambda_gen[1].real
    assert abs(lam1 + 1.0 / (1.0 + h * h)) < 0.2
    assert abs(lam1 - (math.exp(-dt) - 1) / dt) > 0.25


# ---------------------------------------------------------------------------------------
# Kernel EDMD
# ---------------------------------------------------------------------------------------
def test_polynomial_kernel_edmd_equals_monomial_edmd() -> None:
    """(1 + xy)^4 spans the monomials of degree <= 4: Gram-form EDMD = dictionary EDMD."""
    x, y = ou_pairs(1000, 0.5, seed=3)
    a = monomial_spectrum(x, y, 0.5, degree=4)
    b = kernel_edmd_spectrum(x, y, 0.5, kernel="polynomial", degree=4, rtol=1e-13)
    assert b.mu.size == 5
    np.testing.assert_allclose(b.mu, a.mu, atol=1e-8)
    # same eigenfunctions on the data up to scale
    for k in range(1, 5):
        corr = abs(np.corrcoef(a.efuns[:, k].real, b.efuns[:, k].real)[0, 1])
        assert corr > 1 - 1e-8


def test_gaussian_kernel_edmd_on_ou() -> None:
    """Gaussian kernel EDMD (median bandwidth, rtol 1e-2): over 10 seeds at N = 1500 the
    max errors of lambda_gen_1, _2 were 0.11, 0.20 (bias ~ -0.05); tolerance 0.2, 0.35."""
    dt = 0.5
    x, y = ou_pairs(1000, dt, seed=4)
    spec = kernel_edmd_spectrum(x, y, dt)
    k = np.arange(3)
    lam_theory = (np.exp(-k * dt) - 1.0) / dt
    tol = np.array([0.02, 0.2, 0.35])
    assert np.all(np.abs(spec.lambda_gen[:3].real - lam_theory) < tol), spec.lambda_gen[:3]
    wrong_conventions_would_fail(lam_theory, tol, dt)


# ---------------------------------------------------------------------------------------
# Complex eigenvalues and mode selection
# ---------------------------------------------------------------------------------------
def rotation_pairs(n: int = 5000, rho: float = 0.9, angle: float = 0.5, seed: int = 0):
    """X' = rho R(angle) X + small noise: on monomials of degree <= 2 the Koopman eigenvalues
    are 1, rho e^{+-i angle} (linear), rho^2 (|x|^2) and rho^2 e^{+-2i angle}."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    c, s = math.cos(angle), math.sin(angle)
    y = rho * x @ np.array([[c, -s], [s, c]]).T + 1e-3 * rng.normal(size=(n, 2))
    return x, y


def test_rotation_gives_complex_pairs_recovered() -> None:
    rho, angle, dt = 0.9, 0.5, 0.1
    x, y = rotation_pairs(rho=rho, angle=angle)
    spec = monomial_spectrum(x, y, dt, degree=2)
    expected = np.array(
        [
            1,
            rho * np.exp(0.5j),
            rho * np.exp(-0.5j),
            rho**2,
            rho**2 * np.exp(1j),
            rho**2 * np.exp(-1j),
        ]
    )
    # match each expected eigenvalue to its nearest computed one (one-to-one)
    dist = np.abs(spec.mu[:, None] - expected[None, :])
    assert sorted(dist.argmin(0).tolist()) == list(range(6))
    assert dist.min(0).max() < 1e-3, spec.mu
    assert spec.n_complex() == 4


def test_complex_modes_pair_real_drop() -> None:
    rho, dt = 0.9, 0.1
    x, y = rotation_pairs(n=400, rho=rho)
    spec = monomial_spectrum(x, y, dt, degree=2)
    pair = transport_modes(spec, complex_modes="pair", center=False)
    real = transport_modes(spec, complex_modes="real", center=False)
    drop = transport_modes(spec, complex_modes="drop", center=False)
    assert pair.facts["n_complex"] == real.facts["n_complex"] == drop.facts["n_complex"] == 4
    assert pair.phi.shape[1] == 5 and real.phi.shape[1] == 3 and drop.phi.shape[1] == 1
    assert np.all(pair.weights > 0) and np.all(real.weights > 0)
    # drop keeps only the real mode rho^2, weight dt / (1 - rho^2)
    assert abs(drop.weights[0] - dt / (1 - rho**2)) < 1e-3
    # pair: S = sum_cols w c c^T equals the symmetric part of the complex spectral sum over
    # both members of each conjugate pair, each eigenfunction scaled to unit norm.
    s_pair = (pair.phi * pair.weights) @ pair.phi.T
    s_ref = np.zeros_like(s_pair)
    for i, m in enumerate(spec.mu):
        if abs(m - 1) < 1e-6:
            continue
        f = spec.efuns[:, i] / np.linalg.norm(spec.efuns[:, i])
        b = (dt / (1 - m)) * np.outer(f, f.conj())
        s_ref += ((b + b.T) / 2).real
    np.testing.assert_allclose(s_pair, s_ref, atol=1e-10 * np.abs(s_ref).max())
    # every column has unit norm except pair columns, whose squares sum to 2 per pair
    norms = np.linalg.norm(real.phi, axis=0)
    np.testing.assert_allclose(norms, 1.0, atol=1e-12)
    with pytest.raises(EDMDError, match="complex_modes"):
        transport_modes(spec, complex_modes="cast")
    # centring (the default) removes each eigenfunction's training mean before scaling
    centred = transport_modes(spec, complex_modes="pair")
    np.testing.assert_allclose(centred.phi.mean(0), 0.0, atol=1e-12)
    assert centred.facts["centered"] and not pair.facts["centered"]


def test_mode_selection_skips_constant_and_spurious_growing_modes() -> None:
    dt = 0.1
    mu = np.array([1.3, 1.0, 0.9, 0.5, -0.2, 1e-9], dtype=complex)
    efuns = np.random.default_rng(0).normal(size=(50, 6)).astype(complex)
    spec = KoopmanSpectrum(mu=mu, efuns=efuns, dt=dt, method="synthetic")
    modes = transport_modes(spec)
    np.testing.assert_allclose(modes.mu.real, [0.9, 0.5])
    np.testing.assert_allclose(modes.weights, dt / (1 - np.array([0.9, 0.5])))
    assert modes.facts["n_dropped_threshold"] == 3
    with pytest.raises(EDMDError, match="no EDMD mode"):
        transport_modes(KoopmanSpectrum(mu=mu[:2], efuns=efuns[:, :2], dt=dt, method="s"))


# ---------------------------------------------------------------------------------------
# Dictionaries
# ---------------------------------------------------------------------------------------
def test_dictionaries_shapes_seeds_and_constant() -> None:
    x = np.random.default_rng(0).normal(size=(300, 2))
    sp1 = SparseDictionary(n_components=12, max_iter=20).fit(x, seed=5).transform(x)
    sp2 = SparseDictionary(n_components=12, max_iter=20).fit(x, seed=5).transform(x)
    assert sp1.shape == (300, 13) and np.all(sp1[:, 0] == 1) and np.array_equal(sp1, sp2)
    rbf = RBFDictionary(n_centres=10).fit(x, seed=0).transform(x)
    assert rbf.shape == (300, 11) and np.all((rbf[:, 1:] > 0) & (rbf[:, 1:] <= 1))
    mono = MonomialDictionary(3).fit(x, seed=0).transform(x)
    assert mono.shape == (300, 10)  # C(2 + 3, 3)
    np.testing.assert_allclose(mono[:, 0], 1.0)
    assert any(np.allclose(mono[:, j], x[:, 0] ** 2 * x[:, 1]) for j in range(10))
    with pytest.raises(EDMDError, match="Psi_X"):
        edmd_spectrum(sp1, sp1[:, :5], 0.1)
    with pytest.raises(EDMDError, match="NaN"):
        edmd_spectrum(np.full((5, 2), np.nan), np.ones((5, 2)), 0.1)
