"""The Koopman-Markov construction of EDMD-KSWGD (``variant="koopman_markov"``) and the
other variants: matrix properties, rotation invariance of the transport kernel on the circle,
spreading from a cap.

Circle data are in the standardised space of the unit circle (radius sqrt(2): each
coordinate of the uniform measure on the unit circle has variance 1/2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.random import make_generator
from datasets.base import StandardisedTarget, get_target
from samplers import SamplerError, get_sampler
from samplers.core.edmd import langevin_pairs
from samplers.core.koopman_markov import (
    gram_matrices,
    koopman_gram_matrix,
    koopman_markov_matrix,
)
from samplers.core.spectral import lawgd_weights
from samplers.edmd_kswgd import reweighted_weights
from tests.helpers.gaussian import GaussianTarget

TARGET = GaussianTarget(torch.zeros(2), torch.eye(2))  # only its dim is used (needs samples)
CIRCLE = get_target("circle")


def circle_data(n: int, seed: int) -> tuple[torch.Tensor, StandardisedTarget]:
    raw = CIRCLE.sample(n, seed=seed)
    target = StandardisedTarget.from_samples(CIRCLE, raw)
    return target.to_standard(raw).double(), target


def equispaced_circle(n: int) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return math.sqrt(2.0) * torch.stack([t.cos(), t.sin()], 1)


def transport_kernel_diagonal(sampler, x: torch.Tensor) -> torch.Tensor:
    """K(x, x) = sum_ab Kt_a(x) S_ab Kt_b(x), S = Phi diag(w) Phi^T, for x (m, d) -> (m,)."""
    return ((sampler.kernel.evaluate(x) @ sampler.Phi) ** 2 * sampler.w).sum(1)


@pytest.mark.parametrize("kernel", ["gaussian", "polynomial"])
@pytest.mark.parametrize("seed", [0, 1])
def test_koopman_markov_matrix_symmetric_nonnegative_leading_one(kernel: str, seed: int) -> None:
    """On 400 circle points with dt = 0.05 pairs (the origin code's set-up):

    - the raw Gram-form Koopman matrix has negative entries (measured min -0.6 .. -2.4), so
      the shift is -min K and the shifted matrix's smallest entry is exactly 0;
    - P is exactly symmetric (it is symmetrised) and non-negative entrywise;
    - its leading eigenvalue is 1: measured |s_0 - 1| <= 1e-5 (N = 600, 3 seeds, both kernels)
      while the next eigenvalue is ~0.01, so the 1e-3 bound pins the constant mode at 1 and
      any missing normalisation (eigenvalues ~ N * shift) fails it.
    """
    X, _ = circle_data(400, seed)
    Y, _ = langevin_pairs(X, 0.05, make_generator(seed + 100))
    G, C = gram_matrices(X, Y, kernel=kernel)
    K = koopman_gram_matrix(G, C, ridge=1e-6)
    assert float(K.min()) < 0
    km = koopman_markov_matrix(K)
    assert km.shift == pytest.approx(-float(K.min()))
    assert float((K + km.shift).min()) == 0.0
    assert torch.equal(km.P, km.P.T)
    assert float(km.P.min()) >= 0.0
    lam = torch.linalg.eigvalsh(km.P)
    assert abs(float(lam[-1]) - 1.0) < 1e-3, float(lam[-1])
    assert float(lam[-2]) < 0.5


def test_koopman_markov_matrix_of_a_uniform_kernel() -> None:
    """K = all ones (no shift needed): A = 1/N, D = 1, P = 1/N: one eigenvalue 1, rest 0."""
    km = koopman_markov_matrix(torch.ones(5, 5, dtype=torch.float64))
    assert km.shift == 0.0
    torch.testing.assert_close(km.P, torch.full((5, 5), 0.2, dtype=torch.float64))
    torch.testing.assert_close(km.p, torch.full((5,), 5.0, dtype=torch.float64))


def test_pair_draws_average_the_cross_gram() -> None:
    """C of (R, N, d) images is the mean of the R single-image C's; G is unchanged."""
    X = equispaced_circle(20)
    Y = X + 0.1 * torch.randn(3, 20, 2, generator=make_generator(0), dtype=torch.float64)
    G, C = gram_matrices(X, Y)
    singles = [gram_matrices(X, y) for y in Y]
    torch.testing.assert_close(C, sum(c for _, c in singles) / 3)
    torch.testing.assert_close(G, singles[0][0])


@pytest.mark.parametrize("fit_seed", [0, 1, 2, 3])
def test_transport_kernel_rotation_invariant_on_circle(fit_seed: int) -> None:
    """K(theta, theta) on the circle of the data, 360 angles, training points equispaced (so
    the only anisotropy is the construction's: DMPS gives max/min = 1.000 there).
    Koopman-Markov: max/min <= 1.2 (the issue's 20%); measured with the default
    pair_draws = 1: 1.150, 1.102, 1.199, 1.140 for fit seeds 0-3 (seed 2 within 0.1% of the
    bound: the anisotropy is the Monte Carlo noise of one Langevin image per point;
    pair_draws = 4 gives 1.12 .. 1.14). The same bound rejects the notebook variant:
    measured 2.28, 1.68, 2.16, 1.48."""
    X = equispaced_circle(1000)
    theta = torch.arange(360, dtype=torch.float64) * (2 * math.pi / 360) + 1e-3
    ring = math.sqrt(2.0) * torch.stack([theta.cos(), theta.sin()], 1)
    sampler = get_sampler("edmd_kswgd", variant="koopman_markov", fit_seed=fit_seed)
    diag = transport_kernel_diagonal(sampler.fit(X, TARGET), ring)
    assert bool((diag > 0).all())
    ratio = float(diag.max() / diag.min())
    assert ratio <= 1.2, f"koopman_markov max/min K(theta, theta) = {ratio:.3f}"
    notebook = get_sampler("edmd_kswgd", variant="notebook", fit_seed=fit_seed).fit(X, TARGET)
    diag_nb = transport_kernel_diagonal(notebook, ring)
    assert float(diag_nb.max() / diag_nb.min()) > 1.2


@pytest.mark.parametrize("seed", [0, 1])
def test_particles_spread_from_a_cap_on_the_circle(seed: int) -> None:
    """1000 training points on the circle, 300 particles from the cap x_2 > 0.9 (an arc of
    52 degrees), 300 steps. Chi-square of the 12-bin angle histogram against uniform
    (expected 25 per bin): the cap scores ~1500; an i.i.d. uniform sample stays below 31.3
    with probability 0.999 (chi-square, 11 dof), which is the bound. Measured (N = 600,
    3 seeds): koopman_markov 3.0 .. 6.3, notebook 77 .. 154."""
    X, target = circle_data(1000, seed)
    cap = target.to_standard(CIRCLE.sample_cap(300, seed=seed + 50)).double()
    sampler = get_sampler("edmd_kswgd", variant="koopman_markov", fit_seed=seed)
    result = sampler.fit(X, target).run(cap, 300, seed=0)
    assert not result.diverged

    def chi2(x: torch.Tensor) -> float:
        angle = torch.atan2(x[:, 1], x[:, 0])
        hist = torch.histc(angle, bins=12, min=-math.pi, max=math.pi)
        expected = x.shape[0] / 12
        return float(((hist - expected) ** 2 / expected).sum())

    assert chi2(cap) > 1000
    final = chi2(result.particles)
    assert final < 31.3, f"chi-square {final:.1f}"


def test_reweighted_weights_are_dmps_weights_of_the_mapped_spectrum() -> None:
    """w_k(mu) = lawgd_weights(l) with l_k = exp(eps (Re mu_k - 1) / dt) (constant mode first),
    positive, and fast modes get more weight than with dt / (1 - mu) (relative to mode 1)."""
    mu = np.array([0.95, 0.8 + 0.05j, 0.8 - 0.05j, 0.3])
    dt, eps = 0.1, 0.3
    w = reweighted_weights(mu, dt, eps, reg=1e-3)
    lam = torch.from_numpy(np.concatenate([[1.0], np.exp(eps * (mu.real - 1) / dt)]))
    np.testing.assert_allclose(w, lawgd_weights(lam, eps, reg=1e-3).numpy()[1:], rtol=1e-12)
    assert np.all(w > 0) and w[1] == w[2]
    plain = dt / (1 - mu.real)
    assert w[3] / w[0] > plain[3] / plain[0]


def test_variant_facts_and_bad_variant() -> None:
    X, target = circle_data(300, 0)
    sampler = get_sampler("edmd_kswgd", variant="koopman_markov").fit(X, target)
    info = sampler.fit_info
    assert info["variant"] == "koopman_markov" and info["dt"] == 0.05
    assert info["koopman_shift"] > 0 and abs(info["markov_leading"] - 1) < 1e-3
    assert 0 < info["n_modes"] == sampler.Phi.shape[1] <= 500
    assert bool((sampler.w > 0).all())
    reweighted = get_sampler("edmd_kswgd", variant="reweighted", dictionary="rbf", n_atoms=30)
    assert reweighted.fit(X, target).fit_info["dt"] == 0.1
    with pytest.raises(SamplerError, match="variant"):
        get_sampler("edmd_kswgd", variant="markov").fit(X, target)


@pytest.mark.parametrize("fit_seed", [0, 2])
def test_koopman_markov_descends_from_a_cap_and_flipped_sign_ascends(fit_seed: int) -> None:
    """The two-Gaussian mixture of ``tests/test_edmd_kswgd.py`` (400 training points, 100
    particles in a cap of the right mode, energy distance to 600 reference points; the cap
    scores 0.744). Measured over fit seeds 0-3, 150 steps: 0.038 .. 0.127 with 25-35% of the
    particles in the left mode; with the weights negated (the notebook's sign convention)
    6.2 .. 10.6. Bounds: below 0.2 x the start, at least 15% in the left mode, flipped above
    the start."""
    from tests.samplers.test_edmd_kswgd import CAP, REFERENCE, TRAIN, energy_distance

    sampler = get_sampler("edmd_kswgd", variant="koopman_markov", fit_seed=fit_seed)
    sampler.fit(TRAIN, TARGET)
    start = energy_distance(CAP, REFERENCE)
    result = sampler.run(CAP, 150, seed=0)
    assert not result.diverged
    final = energy_distance(result.particles, REFERENCE)
    assert final < 0.2 * start, f"energy distance {start:.3f} -> {final:.3f}"
    assert float((result.particles[:, 0] < 0).double().mean()) > 0.15
    sampler.w = -sampler.w
    assert energy_distance(sampler.run(CAP, 150, seed=0).particles, REFERENCE) > start
