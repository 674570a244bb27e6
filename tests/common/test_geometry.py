"""The shared geometry floor against direct (difference-form) computations."""

from __future__ import annotations

import pytest
import torch

from common.geometry import (
    FORMS,
    median_bandwidth_sq,
    median_sq_distance,
    nearest_neighbour_distances,
    pairwise_sq_distances,
)
from common.random import make_generator


def _cloud(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=make_generator(seed), dtype=torch.float64)


def _direct(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


@pytest.mark.parametrize("form", FORMS)
def test_every_form_matches_the_difference_form(form):
    x, y = _cloud(70, 3, 0), _cloud(50, 3, 1) + 0.5
    # the expanded forms lose ~1e-15 relative to |x|^2 + |y|^2 ~ 10 by cancellation
    torch.testing.assert_close(
        pairwise_sq_distances(x, y, form=form), _direct(x, y), atol=1e-12, rtol=0
    )
    assert bool((pairwise_sq_distances(x, x, form=form) >= 0).all())


@pytest.mark.parametrize("form", FORMS)
def test_chunking_gives_the_same_values(form):
    x, y = _cloud(103, 4, 2), _cloud(40, 4, 3)
    assert torch.equal(
        pairwise_sq_distances(x, y, form=form, chunk=16), pairwise_sq_distances(x, y, form=form)
    )


def test_unknown_form_is_refused():
    with pytest.raises(ValueError, match="form must be one of"):
        pairwise_sq_distances(_cloud(3, 2, 0), _cloud(3, 2, 1), form="fast")  # type: ignore[arg-type]


def test_median_sq_distance_against_all_pairs():
    z = _cloud(60, 2, 4)
    d2 = _direct(z, z)
    iu = torch.triu_indices(60, 60, offset=1)
    expected = float(d2[iu[0], iu[1]].median())
    assert median_sq_distance(z) == pytest.approx(expected, rel=1e-12)
    assert median_sq_distance(
        z, subset="random", centre=True, form="product_first"
    ) == pytest.approx(expected, rel=1e-12)
    # above max_points the first rows are the rule; a random subset depends on its seed
    big = _cloud(500, 2, 5)
    assert median_sq_distance(big, 100) == median_sq_distance(big[:100])
    assert median_sq_distance(big, 100, subset="random", seed=1) != median_sq_distance(
        big, 100, subset="random", seed=2
    )
    assert median_bandwidth_sq(z) == pytest.approx(
        expected / (2 * torch.log(torch.tensor(61.0)).item())
    )


def test_nearest_neighbour_distances_brute_force():
    x, pool = _cloud(37, 3, 6), _cloud(90, 3, 7)
    expected = _direct(x, pool).min(1).values.sqrt()
    torch.testing.assert_close(
        nearest_neighbour_distances(x, pool, chunk=8), expected, atol=1e-12, rtol=0
    )


def test_make_generator_is_reproducible_and_isolated():
    state = torch.random.get_rng_state()
    a = torch.randn(5, generator=make_generator(11))
    b = torch.randn(5, generator=make_generator(11))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched


def test_gemm_form_fills_a_given_buffer_with_the_same_values() -> None:
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(60, 5, generator=gen, dtype=torch.float64)
    buf = torch.full((40, 60), float("nan"), dtype=torch.float64)
    got = pairwise_sq_distances(x, y, form="gemm", out=buf)
    assert got.data_ptr() == buf.data_ptr()
    assert torch.equal(got, pairwise_sq_distances(x, y, form="gemm"))  # bit for bit
    with pytest.raises(ValueError, match="out= is supported"):
        pairwise_sq_distances(x, y, form="cdist", out=buf)


def test_reference_bandwidth_is_a_property_of_the_target() -> None:
    """DMPS's reference rule eps = median|X_a - X_b|^2 / (2 log 1001) estimates one number of
    the target: fitted on 1,000 and on 10,000 N(0, I_2) points it agrees within the median's
    sampling error (a few % from 1,000 points; 10 % allowed), while the median heuristic
    divides by 2 log(N + 1) and shrinks by log(1001) / log(10001) = 0.75. At N = 1,000
    the two rules are equal."""
    import math

    from common.geometry import median_bandwidth_sq, reference_bandwidth_sq
    from common.random import make_generator

    small = torch.randn(1000, 2, generator=make_generator(1), dtype=torch.float64)
    large = torch.randn(10000, 2, generator=make_generator(2), dtype=torch.float64)
    assert reference_bandwidth_sq(small) == median_bandwidth_sq(small)
    ratio = reference_bandwidth_sq(large) / reference_bandwidth_sq(small)
    assert abs(ratio - 1) < 0.1, ratio
    shrink = median_bandwidth_sq(large) / median_bandwidth_sq(small)
    assert shrink == pytest.approx(ratio * math.log(1001) / math.log(10001), rel=1e-12)


def test_capped_median_bandwidth_stops_shrinking_at_1000_points() -> None:
    """DMPS's default eps = median|X_a - X_b|^2 / (2 log(min(N, 1000) + 1)): the median
    heuristic bit for bit up to N = 1,000 (so the suites' fits at N <= 1,000 are unchanged)
    and the reference rule from there (eps of the target, not of N). Repeating every point
    of a 1,000-point set 10 times leaves it within 1 % (the duplicates add 1,000 zero pairs
    among the ~2 million of the first 2,000 rows the median reads), while the median
    heuristic shrinks by log(1001) / log(10001) = 0.75."""
    import math

    from common.geometry import (
        capped_median_bandwidth_sq,
        median_bandwidth_sq,
        reference_bandwidth_sq,
    )
    from common.random import make_generator

    gen = make_generator(5)
    for n in (2, 50, 1000):
        z = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        assert capped_median_bandwidth_sq(z) == median_bandwidth_sq(z)
    z = torch.randn(1000, 3, generator=gen, dtype=torch.float64)
    copies = z.repeat(10, 1)
    assert capped_median_bandwidth_sq(copies) == reference_bandwidth_sq(copies)
    assert capped_median_bandwidth_sq(copies) == pytest.approx(
        capped_median_bandwidth_sq(z), rel=0.01
    )
    shrink = median_bandwidth_sq(copies) / capped_median_bandwidth_sq(copies)
    assert shrink == pytest.approx(math.log(1001) / math.log(10001), rel=1e-12)
