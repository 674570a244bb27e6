"""Starts inside the support, and rows that blame an outside start instead of the sampler."""

from __future__ import annotations

import pytest
import torch

from benchmarks.execution.data import initial_particles, prepare
from benchmarks.execution.runner import execute_unit, plan
from benchmarks.execution.starts import OUTSIDE_STATUS, outside_support
from benchmarks.suites import INIT_SCHEMES, Suite, get_suite
from datasets.base import StandardisedTarget, get_target


@pytest.mark.parametrize("name", get_suite("bounded").targets)
def test_support_start_lies_inside_every_bounded_support(name):
    base = get_target(name)
    target = StandardisedTarget.from_samples(base, base.sample(500, seed=0))
    x0 = initial_particles(target, "support", 300, seed=3)
    assert x0.shape == (300, target.dim)
    assert outside_support(target, x0) == 0
    # and it spreads: not a copy of target samples (uniform over the support's box)
    assert torch.equal(x0, initial_particles(target, "support", 300, seed=3))


def test_bounded_suite_ranks_on_the_support_start():
    suite = get_suite("bounded")
    assert suite.inits[0] == "support" and "gaussian" in suite.inits
    assert "support" in INIT_SCHEMES


def test_manifold_support_start_is_fresh_target_samples():
    base = get_target("circle")
    target = StandardisedTarget.from_samples(base, base.sample(500, seed=0))
    x0 = initial_particles(target, "support", 50, seed=1)
    assert torch.equal(x0, target.sample(50, seed=1))


def test_score_sampler_from_outside_start_is_labelled_not_diverged():
    suite = Suite(
        name="_test_starts",
        targets=("beta_2_5x5_2",),
        n_particles=32,
        n_steps=3,
        n_train=100,
        n_reference=100,
        seeds=(0,),
        inits=("support", "gaussian"),
        metrics=("sinkhorn",),
    )
    prepare.cache_clear()
    (spec,) = [s for s in plan(suite, ["ula"]) if s.sampler == "ula"]
    rows = {r["init"]: r for r in execute_unit(spec).rows if r["metric"] == "sinkhorn"}
    assert rows["support"]["status"] == "ok"
    assert rows["gaussian"]["status"] == OUTSIDE_STATUS
    assert rows["gaussian"]["message"].startswith("start outside support")
