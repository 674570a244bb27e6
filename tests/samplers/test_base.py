"""The base-class loop (a method that is only a step), RunRequest and the sampler registry."""

from __future__ import annotations

import pytest
import torch

from samplers import SAMPLERS, RunRequest, Sampler, SamplerError, available_samplers, iterate
from samplers.base import sampler_class
from tests.helpers.gaussian import correlated_gaussian_2d


class _NoisyContraction(Sampler):
    """x <- 0.5 x + 0.1 xi, xi ~ N(0, I): a step-only method (test-local, never registered)."""

    name = "_test_noisy_contraction"
    defaults = {"rate": 0.5}

    def _fit(self, train, target):
        return {"fitted": True}

    def _step(self, x, t, gen):
        xi = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        return self.params["rate"] * x + 0.1 * xi


class _NoStep(Sampler):
    name = "_test_no_step"

    def _fit(self, train, target):
        return None


def _fitted(cls: type[Sampler]) -> Sampler:
    target = correlated_gaussian_2d()
    return cls().fit(target.sample(50, seed=0), target)


def test_step_only_method_runs_the_shared_loop_bit_for_bit():
    x0 = torch.randn(20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    res = _fitted(_NoisyContraction).run(x0, 7, seed=3, record_every=2)
    gen = torch.Generator().manual_seed(3)

    def step(x, t):
        return 0.5 * x + 0.1 * torch.randn(x.shape, generator=gen, dtype=x.dtype)

    ref = iterate(step, x0, 7, record_every=2)
    assert torch.equal(res.particles, ref.particles)
    assert torch.equal(res.trajectory, ref.trajectory)
    assert res.info["record_steps"] == [0, 2, 4, 6, 7]
    assert res.info["steps"] == 7 and res.info["fitted"] is True


def test_run_request_iterate_uses_its_settings_unless_overridden():
    x0 = torch.ones(3, 2)
    run = RunRequest(x0, 4, torch.Generator(), record_every=1, sampler="x")
    res = run.iterate(lambda x, t: x + 1)
    assert res.trajectory.shape == (5, 3, 2) and float(res.particles[0, 0]) == 5.0
    other = run.iterate(lambda x, t: x * 2, torch.zeros(3, 2) + 3, 2)
    assert other.info["steps"] == 2 and float(other.particles[0, 0]) == 12.0


def test_method_without_step_or_run_says_so():
    with pytest.raises(SamplerError, match="_step"):
        _fitted(_NoStep).run(torch.zeros(4, 2), 1, seed=0)


def test_registry_lists_methods_only_and_scopes_test_entries():
    names = available_samplers()
    assert "core" not in names and {"dmps", "ula", "svgd"} <= set(names)
    with SAMPLERS.scoped() as scope:
        scope.add(_NoisyContraction.name, _NoisyContraction)
        assert sampler_class(_NoisyContraction.name) is _NoisyContraction
        with pytest.raises(SamplerError, match="registered twice"):
            scope.add(_NoisyContraction.name, _NoStep)
    assert _NoisyContraction.name not in available_samplers()
    with pytest.raises(SamplerError, match="unknown sampler"):
        sampler_class(_NoisyContraction.name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": None}, "seed must be an int in"),
        ({"seed": 1.5}, "seed must be an int in"),  # was silently read as 1
        ({"seed": True}, "seed must be an int in"),
        ({"seed": -1}, "seed must be an int in"),
        ({"seed": 2**40}, "seed must be an int in"),
        ({"seed": 0, "n_steps": True}, "n_steps must be an int >= 0"),  # was 1 step
        ({"seed": 0, "record_every": "a"}, "record_every must be an int >= 0"),
    ],
)
def test_run_arguments_are_checked(kwargs, message):
    target = correlated_gaussian_2d()
    train = target.sample(30, seed=0)
    sampler = sampler_class("ula")().fit(train, target)
    kwargs = {"n_steps": 2, **kwargs}
    with pytest.raises(SamplerError, match=message):
        sampler.run(train[:4], **kwargs)


def test_numpy_scalars_are_read_as_the_numbers_they_hold():
    """np.float32(0.1) was refused as "must be a positive finite number, got np.float32(0.1)";
    it is a number, and the sampler keeps the Python float (rows record plain JSON)."""
    import numpy as np

    sampler = sampler_class("ula")(step_size=np.float32(0.25))
    assert type(sampler.params["step_size"]) is float and sampler.params["step_size"] == 0.25
    target = correlated_gaussian_2d()
    train = target.sample(30, seed=0)
    a = sampler.fit(train, target).run(train[:4], 3, seed=np.int64(7)).particles
    b = sampler_class("ula")(step_size=0.25).fit(train, target).run(train[:4], 3, seed=7)
    assert torch.equal(a, b.particles)
    with pytest.raises(SamplerError, match="seed must be an int >= 0 and <= 4294967295"):
        sampler_class("kmeans")(seed=2**63)  # scikit-learn's limit, refused when made


def test_fit_needs_a_target_and_rules_cover_schedules_and_solvers():
    """fit(train, None) raised AttributeError; lr_final_fraction > 1 made the learning rate
    grow (particles reached ~4e7); solver 'lanczos' on the dense kernel said only "unknown
    solver" although the sparse kernel takes it."""
    target = correlated_gaussian_2d()
    train = target.sample(40, seed=0)
    with pytest.raises(SamplerError, match="target must be a Target, got NoneType"):
        sampler_class("ula")().fit(train, None)
    for name in ("sinkhorn_generator", "score_diffusion"):
        with pytest.raises(SamplerError, match="lr_final_fraction must be .* <= 1"):
            sampler_class(name)(lr_final_fraction=2.0)
    with pytest.raises(SamplerError, match="runs on the sparse kernel"):
        sampler_class("dmps")(solver="lanczos", kernel="dense").fit(train, target)
