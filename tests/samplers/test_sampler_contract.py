"""Contract tests run on every registered sampler (a new module is picked up unedited)."""

from __future__ import annotations

import functools

import pytest
import torch

from samplers import SamplerError, available_samplers, sampler_class
from tests.helpers.gaussian import correlated_gaussian_2d

SAMPLERS = available_samplers()


@functools.cache
def _fitted_once(name: str):
    """A fitted sampler shared by tests that only check input validation (run() rejects
    bad input before touching the sampler's state)."""
    return _fitted(name)


def _fitted(name: str):
    target = correlated_gaussian_2d()
    cls = sampler_class(name)
    sampler = cls(**cls.smoke_params)
    return sampler.fit(target.sample(120, seed=0), target)


def _x0(m: int = 16, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(m, 2, generator=torch.Generator().manual_seed(7), dtype=dtype)


def test_registry_has_the_foundation_samplers():
    assert {"ula", "svgd"} <= set(SAMPLERS)


@pytest.mark.parametrize("name", SAMPLERS)
def test_shapes_dtype_device_and_trajectory(name):
    res = _fitted(name).run(_x0(), 6, seed=0, record_every=2)
    assert res.particles.shape == (16, 2)
    assert res.particles.dtype == torch.float64
    assert res.particles.device.type == "cpu"
    assert bool(torch.isfinite(res.particles).all())
    if res.trajectory is not None:
        assert res.trajectory.ndim == 3 and res.trajectory.shape[1:] == (16, 2)
        assert len(res.times) == res.trajectory.shape[0]
    assert (res.times >= 0).all()
    for key in ("sampler", "params", "fit_seconds", "sample_seconds"):
        assert key in res.info


@pytest.mark.parametrize("name", SAMPLERS)
def test_deterministic_for_a_fixed_seed(name):
    a = _fitted(name).run(_x0(), 5, seed=11).particles
    b = _fitted(name).run(_x0(), 5, seed=11).particles
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.full((4, 2), float("nan"), dtype=torch.float64), "NaN"),
        (torch.zeros(4, 3, dtype=torch.float64), "dimension"),
        (torch.zeros(0, 2, dtype=torch.float64), "zero particles"),
        (torch.zeros(4, 2, dtype=torch.int64), "float"),
        (torch.zeros(4, 2, dtype=torch.float16), "float32 or float64, got dtype torch.float16"),
        (torch.zeros(8, dtype=torch.float64), "shape"),
    ],
)
def test_bad_input_gives_a_clear_error(name, bad, message):
    sampler = _fitted_once(name)
    with pytest.raises(SamplerError, match=message):
        sampler.run(bad, 3, seed=0)


@pytest.mark.parametrize("name", SAMPLERS)
def test_unfitted_and_unknown_parameters_are_rejected(name):
    cls = sampler_class(name)
    with pytest.raises(SamplerError, match="fit"):
        cls().run(_x0(), 2, seed=0)
    with pytest.raises(SamplerError, match="unknown parameter"):
        cls(not_a_parameter=1)


@pytest.mark.parametrize("name", SAMPLERS)
def test_nan_training_data_rejected(name):
    target = correlated_gaussian_2d()
    train = target.sample(50, seed=0)
    train[3, 1] = float("nan")
    with pytest.raises(SamplerError, match="NaN"):
        sampler_class(name)(**sampler_class(name).smoke_params).fit(train, target)


@pytest.mark.parametrize("name", SAMPLERS)
def test_training_data_without_spread_rejected(name):
    """All-equal training points used to fail deep inside (a zero median bandwidth named a
    parameter the user never set, or an eps of 0); every sampler now says what is wrong."""
    target = correlated_gaussian_2d()
    train = target.sample(1, seed=0).expand(50, 2).clone()
    with pytest.raises(SamplerError, match="all 50 training points are equal"):
        sampler_class(name)(**sampler_class(name).smoke_params).fit(train, target)


@pytest.mark.parametrize("name", SAMPLERS)
def test_documented_defaults(name):
    cls = sampler_class(name)
    assert cls.__doc__ and len(cls.__doc__) > 40
    assert set(cls.smoke_params) <= set(cls.defaults)
