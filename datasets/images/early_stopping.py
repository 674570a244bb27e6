"""Early stopping with best-weight restore, shared by the autoencoder and classifier loops.

After each epoch the loop reports its validation score s_e; ``better(s_e, best)`` decides
whether it improves on the best so far. An improvement stores a copy of the weights and
resets the count of stale epochs; ``patience`` stale epochs in a row stop training.
:meth:`EarlyStopping.restore` loads the best weights back (if any epoch improved).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import nn


class EarlyStopping:
    """Tracks ``best`` (score), ``best_epoch`` (1-based, 0 if none) and the best weights.

    ``start``: the score every first epoch beats (inf for a loss, -1 for an accuracy);
    ``better(score, best) -> bool``: the improvement rule.
    """

    def __init__(self, patience: int, start: float, better: Callable[[float, float], bool]):
        self.patience = patience
        self.better = better
        self.best = start
        self.best_epoch = 0
        self.best_state: dict[str, Any] | None = None
        self.stale = 0

    def step(self, model: nn.Module, epoch: int, score: float) -> bool:
        """Record epoch ``epoch`` (0-based) with validation ``score``; True means stop."""
        if self.better(score, self.best):
            self.best, self.best_epoch, self.stale = score, epoch + 1, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights into ``model`` (if an epoch improved) and set eval mode."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        model.eval()
