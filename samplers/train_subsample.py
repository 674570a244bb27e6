"""Trivial baseline: m training points drawn without replacement.

A method that does not beat this copies the training split at best; its score is the
sampling noise of m points from N, below fresh i.i.d. samples when m is close to N.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from datasets.base import Target
from samplers.base import RunRequest, Sampler, SamplerError, SampleResult, register_sampler
from samplers.core.one_shot import one_shot_result


@register_sampler
class TrainSubsample(Sampler):
    """x = train[perm[:m]], perm a uniform permutation from the run's seeded generator.

    No parameters. Ignores x0's values (``uses_x0 = False``) and ``n_steps``; needs m <= N.
    """

    name = "train_subsample"
    needs = frozenset({"samples"})
    defaults: dict[str, Any] = {}
    role = "baseline"
    uses_x0 = False

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        return {"n_train": int(train.shape[0])}

    def _run(self, run: RunRequest) -> SampleResult:
        train = self.train
        m, n = run.x0.shape[0], train.shape[0]
        if m > n:
            raise SamplerError(f"train_subsample: m = {m} particles exceed the {n} training points")

        def draw(m: int) -> Tensor:
            idx = torch.randperm(n, generator=run.gen, device=run.gen.device)[:m]
            return train[idx.to(train.device)]

        return one_shot_result(run, draw)
