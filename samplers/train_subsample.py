"""Trivial baseline: m training points drawn without replacement.

A method that does not beat this copies the training split at best; its score is the
sampling noise of m points from N, below fresh i.i.d. samples when m is close to N.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from samplers.base import RunRequest, SampleResult, register_sampler
from samplers.core.one_shot import TrainingSplitBaseline, one_shot_result


@register_sampler
class TrainSubsample(TrainingSplitBaseline):
    """x = train[perm[:m]], perm a uniform permutation from the run's seeded generator.

    No parameters. Ignores x0's values (``uses_x0 = False``) and ``n_steps``; needs m <= N.
    """

    name = "train_subsample"
    defaults: dict[str, Any] = {}

    def _run(self, run: RunRequest) -> SampleResult:
        train = self._training_split(run, "particles")

        def draw(m: int) -> Tensor:
            idx = torch.randperm(train.shape[0], generator=run.gen, device=run.gen.device)[:m]
            return train[idx.to(train.device)]

        return one_shot_result(run, draw)
