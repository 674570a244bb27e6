"""Test-only samplers and a Gaussian target for the tuner's tests (tests/benchmarks/
test_tuning*.py): one-shot samplers whose best setting is known in advance."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

import datasets.base as dbase
import samplers.base as sbase
from benchmarks.execution.data import prepare, validation_split
from benchmarks.suites import Suite
from samplers.core.one_shot import one_shot_result
from samplers.params import Number
from tests.helpers.gaussian import GaussianTarget

TARGET = "_test_gauss_tune"
"""A standard 2-d Gaussian, registered by :func:`toy_registry`."""


class ShiftedTrain(sbase.Sampler):
    """Training points + shift; its default shift is deliberately bad, and shift 0 returns
    training points: the best validation score there is, and copies."""

    name = "_test_shifted"
    defaults = {"shift": 3.0}
    param_specs = {"shift": Number()}
    search_space = {"shift": (3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0)}
    uses_x0 = False

    def _fit(self, train, target):
        return None

    def _run(self, run):
        return one_shot_result(run, lambda m: self.train[:m] + float(self.params["shift"]))


class EdgeShift(ShiftedTrain):
    """Training points + shift, whose best shift, 0, lies below the space it declares: the
    tuner must widen past the low edge (geometric: 2 -> 1 -> 0.5 ...) until interior, or stop
    at the declared limit."""

    name = "_test_edge"
    defaults = {"shift": 8.0}
    search_space = {"shift": (8.0, 4.0, 2.0)}
    search_limits = {"shift": (0.25, 16.0)}


class SelfFlagging(sbase.Sampler):
    """Fresh target draws times ``scale``; a run with scale < 1 flags itself, as a step
    safeguard that decided it would."""

    name = "_test_self_flagging"
    defaults = {"scale": 2.0}
    param_specs = {"scale": Number()}
    search_space = {"scale": (2.0, 1.0, 0.9)}
    uses_x0 = False

    def _fit(self, train, target):
        return None

    def _run(self, run):
        scale = float(self.params["scale"])
        result = one_shot_result(
            run, lambda m: scale * torch.randn(m, self.train.shape[1], generator=run.gen)
        )
        return result.with_info(flags=["decided by a safeguard"] if scale < 1 else [])


class BlurredTrain(sbase.Sampler):
    """Training points plus Gaussian noise of sd ``blur``: the smaller the blur, the nearer
    the training points (blur 0 copies them); a larger blur over-disperses."""

    name = "_test_blurred"
    defaults = {"blur": 2.0}
    param_specs = {"blur": Number()}
    search_space = {"blur": (2.0, 0.6, 0.25, 0.2, 0.15, 0.1)}
    uses_x0 = False

    def _fit(self, train, target):
        return None

    def _run(self, run):
        blur = float(self.params["blur"])
        return one_shot_result(
            run,
            lambda m: (
                self.train[:m]
                + blur
                * torch.randn(m, self.train.shape[1], generator=run.gen, dtype=self.train.dtype)
            ),
        )


class BlurredTight(BlurredTrain):
    """:class:`BlurredTrain` confined to small blurs (no widening past 0.2): every setting
    pulls towards the training points, some more than others."""

    name = "_test_blurred_tight"
    defaults = {"blur": 0.2}
    search_space = {"blur": (0.2, 0.15, 0.1)}
    search_limits = {"blur": (0.1, 0.2)}


class StayAtStart(sbase.Sampler):
    """Returns its start x0 unchanged (``pull`` = 0) or moved towards the training points'
    mean by the fraction ``pull``: its ``pull=0`` trial scores what the start itself scores."""

    name = "_test_stay"
    defaults = {"pull": 0.0}
    param_specs = {"pull": Number()}
    search_space = {"pull": (0.0, 0.5)}

    def _fit(self, train, target):
        return None

    def _run(self, run):
        pull = float(self.params["pull"])
        centre = self.train.mean(0).to(run.x0)
        return one_shot_result(run, lambda m: run.x0 + pull * (centre - run.x0))


def guard_suite(name: str) -> Suite:
    """A 3-repetition suite on :data:`TARGET` whose flag metric is the copying test:
    data_copying is listed, so train_proximity (which joins it) is the suite's flag metric."""
    return Suite(
        name=name,
        targets=(TARGET,),
        n_particles=40,
        n_steps=3,
        n_train=60,
        n_reference=60,
        seeds=(0, 1, 2),
        inits=("gaussian",),
        metrics=("sinkhorn", "data_copying"),
    )


@contextlib.contextmanager
def toy_registry() -> Iterator[None]:
    """:data:`TARGET` and the samplers above registered for the block only (data caches
    cleared on entry and exit)."""

    def gauss():
        return GaussianTarget(torch.zeros(2), torch.eye(2), name=TARGET)

    prepare.cache_clear()
    validation_split.cache_clear()
    with dbase.TARGETS.scoped(), sbase.SAMPLERS.scoped() as samplers:
        dbase.register_target(TARGET, "mixtures")(gauss)
        for cls in (ShiftedTrain, EdgeShift, SelfFlagging, BlurredTrain, BlurredTight, StayAtStart):
            samplers.add(cls.name, cls)
        yield
    prepare.cache_clear()
    validation_split.cache_clear()
