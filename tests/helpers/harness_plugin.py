"""Test-local plug-in for the harness tests: a 2-D Gaussian target, an energy-distance
metric and a deliberately slow sampler. ``--import tests.helpers.harness_register`` registers them
(here and in every worker process); importing this module registers nothing, so the
contract tests, parametrised over the registries at collection, never see them.

Independent of the target catalogue and of the Sinkhorn metric, so the harness tests do
not depend on other modules' numerics. In-process tests wrap themselves in
``with use_in_process(monkeypatch):`` (a fixture), which removes the registrations
afterwards (so contract tests never see them).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datasets.base import TARGETS, Target, TargetEntry
from metrics.base import METRICS, Metric, MetricContext, MetricResult, check_clouds
from samplers.base import SAMPLERS, RunRequest, Sampler, SampleResult, check_deadline
from tests.helpers.gaussian import GaussianTarget

TARGET = "harness_gauss"
METRIC = "harness_energy"


def energy_distance(x: Tensor, y: Tensor) -> float:
    """E = 2 E|X - Y| - E|X - X'| - E|Y - Y'| (V-statistics), >= 0, = 0 iff same law."""
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def harness_gauss() -> GaussianTarget:
    return GaussianTarget(
        torch.tensor([1.0, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]), name=TARGET
    )


#: the harness target's registry entry (one object: registering it again is a no-op)
HARNESS_TARGET = TargetEntry(harness_gauss, "mixtures")


def harness_energy(ctx: MetricContext) -> MetricResult:
    x, y = check_clouds(ctx.particles, ctx.reference)
    return MetricResult(energy_distance(x, y), True, {"n": x.shape[0]})


SLOW = "harness_slow"


class HarnessSlow(Sampler):
    """A deliberately slow sampler for budget and kill tests: x <- 0.9 x each step, after
    sleeping ``step_sleep`` seconds; ``fit_sleep`` seconds of fitting in 0.01 s slices that
    call ``check_deadline``; ``cooperative = False`` fits without checking the deadline and
    sleeps outside ``iterate`` (a sampler that ignores the deadline)."""

    name = SLOW
    needs = frozenset({"samples"})
    defaults = {"step_sleep": 0.15, "fit_sleep": 0.0, "cooperative": True}

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        end = time.perf_counter() + float(self.params["fit_sleep"])
        while time.perf_counter() < end:
            if self.params["cooperative"]:
                check_deadline("harness_slow fit")
            time.sleep(0.01)
        return {}

    def _run(self, run: RunRequest) -> SampleResult:
        pause, n_steps = float(self.params["step_sleep"]), run.n_steps
        if not self.params["cooperative"]:
            time.sleep(pause * n_steps)
            x = run.x0 * 0.9**n_steps
            return SampleResult(x, None, np.array([pause * n_steps]), {"steps": n_steps})
        return super()._run(run)

    def _step(self, x: Tensor, t: int, gen: torch.Generator) -> Tensor:
        time.sleep(float(self.params["step_sleep"]))
        return 0.9 * x


CRASH = "harness_crash"


class HarnessCrash(Sampler):
    """A sampler whose fit kills its process (``os._exit(3)``, as a segfault or the OOM
    killer would) when it runs in a process other than ``host_pid`` (so never the test's
    own process): always, or, with ``once_file``, only when that file does not exist yet
    (it is created first, so the retry succeeds). Otherwise x <- 0.9 x each step."""

    name = CRASH
    needs = frozenset({"samples"})
    defaults = {"host_pid": 0, "once_file": ""}

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        if os.getpid() != int(self.params["host_pid"]):
            once = str(self.params["once_file"])
            if not once:
                os._exit(3)
            if not os.path.exists(once):
                open(once, "w").close()
                os._exit(3)
        return {}

    def _step(self, x: Tensor, t: int, gen: torch.Generator) -> Tensor:
        return 0.9 * x


#: registry -> (key, value) entries this plug-in adds (besides the target in ``TARGETS``)
ENTRIES = ((METRICS.entries, METRIC, Metric(METRIC, harness_energy)),)


def register() -> None:
    """Add the entries (idempotent)."""
    TARGETS.add(TARGET, HARNESS_TARGET)
    for registry, key, value in ENTRIES:
        registry.setdefault(key, value)
    SAMPLERS.add(SLOW, HarnessSlow)
    SAMPLERS.add(CRASH, HarnessCrash)


@contextlib.contextmanager
def use_in_process(monkeypatch: Any) -> Iterator[None]:
    """Within the block, register the entries for one test (the metric with pytest's
    ``monkeypatch``; the target and the sampler in scopes of their registries): undone
    afterwards, also when an earlier import registered them for good."""
    for registry, key, _ in ENTRIES:
        registry.pop(key, None)
    for registry, key, value in ENTRIES:
        monkeypatch.setitem(registry, key, value)
    with TARGETS.scoped(), SAMPLERS.scoped():
        TARGETS.add(TARGET, HARNESS_TARGET)
        SAMPLERS.add(SLOW, HarnessSlow)
        SAMPLERS.add(CRASH, HarnessCrash)
        yield


#: the tiny suite of the harness tests: 1 target, ula + svgd, 2 seeds, 16 particles, 5 steps
TINY_SPEC: dict[str, Any] = {
    "name": "tiny",
    "targets": [TARGET],
    "samplers": ["ula", "svgd"],
    "seeds": [0, 1],
    "n_particles": 16,
    "n_steps": 5,
    "n_train": 64,
    "n_reference": 64,
    "inits": ["gaussian"],
    "metrics": [METRIC],
}


def tiny_suite(**overrides: Any) -> Any:
    """The tiny suite (:data:`TINY_SPEC`, ``overrides`` replacing its fields) as a Suite."""
    from benchmarks.suites import Suite

    spec = {**TINY_SPEC, **overrides}
    return Suite(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})


def tiny_suite_file(path: Any, **overrides: Any) -> Any:
    """Write the tiny suite (:data:`TINY_SPEC` with ``overrides``) as JSON to ``path`` and
    return it."""
    import json

    path.write_text(json.dumps({**TINY_SPEC, **overrides}), encoding="utf-8")
    return path
