"""Smoke-sized settings of every sampler give finite, in-scale output on the smoke targets
(the smoke suite must exercise samplers, not the runner's scale guard)."""

from __future__ import annotations

import pytest

from benchmarks.execution.data import prepare
from benchmarks.execution.runner import SCALE_GUARD, scale_excess
from benchmarks.suites import get_suite
from samplers import available_samplers, get_sampler, sampler_class

SMOKE = get_suite("smoke")


@pytest.mark.parametrize("name", available_samplers())
@pytest.mark.parametrize("target", SMOKE.targets)
def test_smoke_settings_stay_in_scale(name, target):
    data = prepare(
        target,
        0,
        SMOKE.n_train,
        SMOKE.n_reference,
        SMOKE.n_particles,
        ("gaussian",),
        SMOKE.suite_seed,
    )
    cls = sampler_class(name)
    if cls.unmet_needs(data.target):
        pytest.skip(f"{name} cannot run on {target}")
    sampler = get_sampler(name, **cls.smoke_params).fit(data.train, data.target)
    result = sampler.run(data.x0["gaussian"], SMOKE.n_steps, seed=0)
    assert not result.diverged
    # in scale: within 1.5x the reach of the N(0, I) start itself (about 2x the reference's
    # radius on these targets) and far below the runner's guard; measured <= 1.02x the start
    start = scale_excess(data.x0["gaussian"], data.reference)
    excess = scale_excess(result.particles, data.reference)
    assert excess < min(1.5 * start, SCALE_GUARD / 2), (excess, start)
