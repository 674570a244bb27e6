"""Parameter range checks when a sampler is made (samplers/params.py, Sampler.__init__)."""

from __future__ import annotations

import math

import pytest

from samplers import SamplerError, available_samplers, get_sampler, sampler_class
from samplers.params import Interval, OneOf, Positive

SAMPLERS = available_samplers()


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_parameter_has_a_spec_and_the_defaults_pass_it(name):
    cls = sampler_class(name)
    assert set(cls.param_specs) == set(cls.defaults)
    cls()  # defaults are valid
    cls(**cls.smoke_params)


@pytest.mark.parametrize("name", SAMPLERS)
def test_search_space_values_pass_the_specs(name):
    cls = sampler_class(name)
    assert set(cls.search_space) <= set(cls.defaults)
    for key, values in cls.search_space.items():
        for v in values:
            cls(**{key: v})


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("svgd", "step_size", -1),
        ("svgd", "step_size", 0.0),
        ("svgd", "bandwidth", 0),
        ("svgd", "bandwidth", -0.5),
        ("svgd", "step_size", "fast"),
        ("svgd", "step_size", math.nan),
        ("svgd", "step_size", True),
        ("svgd", "optimizer", "adam"),
        ("ula", "step_size", -0.01),
        ("ula", "kde_scale", 0),
        ("mala", "target_accept", 1.0),
        ("mmd_flow", "momentum", 1.0),
        ("mmd_flow", "n_projections", 2.5),
        ("ksd_descent", "bandwidth", 0.0),
        ("dmps", "step_size", -1.0),
        ("dmps", "bandwidth", 0.0),
        ("dmps", "n_modes", 0),
        ("edmd_kswgd", "max_step", -1.0),
        ("score_diffusion", "lr", -1e-3),
    ],
)
def test_bad_values_raise_a_sampler_error_naming_the_parameter(name, key, value):
    with pytest.raises(SamplerError, match=f"^{name}: {key} must"):
        get_sampler(name, **{key: value})


def test_specs_accept_their_literals_and_reject_the_rest():
    assert Positive(also=("auto", None)).check("auto") is None
    assert Positive(also=("auto", None)).check(None) is None
    assert Positive(also=("auto",)).check("other") is not None
    assert Positive(int).check(3) is None and Positive(int).check(3.0) is not None
    assert Interval(0, 1, hi_open=True).check(1) is not None
    assert Interval(0, 1, hi_open=True).check(0) is None
    assert OneOf("a", "b").check("a") is None and OneOf("a", "b").check("c") is not None
    assert OneOf(1).check(True) is not None  # bools are not ints here
