"""Shared frame of samplers that produce their particles in one shot (no steps).

The trivial baselines (train_subsample, kmeans, kde) return m points computed from the
training split and the run's seeded generator; x0 supplies only m, the device and the dtype.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import Tensor

from samplers.base import RunRequest, Sampler, SamplerError, SampleResult, divergence_reason


def one_shot_result(run: RunRequest, draw: Callable[[int], Tensor], **info: Any) -> SampleResult:
    """Call ``draw(m)`` -> (m, d) once and wrap it as a zero-step result on x0's device and
    dtype (trajectory: the one state when recording; ``info["n_steps_ignored"]``)."""
    t0 = time.perf_counter()
    x = draw(run.x0.shape[0]).to(device=run.x0.device, dtype=run.x0.dtype)
    elapsed = time.perf_counter() - t0
    traj = x[None].clone() if run.record_every > 0 else None
    why = divergence_reason(x)
    out = {
        "steps": 0,
        "n_steps_ignored": run.n_steps,
        "diverged": why is not None,
        "step_seconds": elapsed,
        **info,
    }
    if why is not None:
        out["diverged_reason"] = f"{why} drawn"
    return SampleResult(x, traj, np.asarray([elapsed], dtype=float), out)


def generator_seed(run: RunRequest) -> int:
    """A 31-bit seed drawn from the run's generator (for libraries with their own RNG)."""
    import torch

    return int(torch.randint(0, 2**31 - 1, (1,), generator=run.gen, device=run.gen.device))


class TrainingSplitBaseline(Sampler):
    """Frame of the trivial baselines: data-driven, particles from the training split in one
    shot, x0's values ignored (``uses_x0 = False``), ``role = "baseline"`` (the leaderboard
    marks methods that do not beat the best baseline)."""

    needs = frozenset({"samples"})
    role = "baseline"
    uses_x0 = False

    @classmethod
    def unmet_budget(cls, n_train: int, n_particles: int) -> list[str]:
        """m <= N: the particles are training points or their centroids, so a generation
        budget (m > N) cannot be met without repeating points."""
        if n_particles > n_train:
            return [f"m <= N ({n_particles} particles from {n_train} training points)"]
        return []

    def _fit(self, train: Tensor, target: Any) -> dict[str, Any]:
        return {"n_train": int(train.shape[0])}

    def _training_split(self, run: RunRequest, what: str) -> Tensor:
        """The training split (N, d), checking that the run's m <= N (``what``: the noun
        in the error message)."""
        m, n = run.x0.shape[0], self.train.shape[0]
        if m > n:
            raise SamplerError(f"{self.name}: m = {m} {what} exceed the {n} training points")
        return self.train
