"""A test-local Gaussian target with closed-form log density and score (independent of
``datasets/``, so algorithm tests do not depend on the target catalogue)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from datasets.base import Target


class GaussianTarget(Target):
    """N(mean, cov) in R^d; log p = -1/2 (x-mu)^T S^-1 (x-mu) - 1/2 log|2 pi S|."""

    def __init__(self, mean: Tensor, cov: Tensor, name: str = "test_gaussian") -> None:
        mean = torch.as_tensor(mean, dtype=torch.float64)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        super().__init__(name=name, dim=mean.numel(), family="mixtures")
        self.mean = mean
        self.cov = cov
        self.chol = torch.linalg.cholesky(cov)
        self.prec = torch.linalg.inv(cov)

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        z = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        return self.mean + z @ self.chol.T

    def _log_prob(self, x: Tensor) -> Tensor:
        r = x - self.mean.to(x)
        quad = ((r @ self.prec.to(x)) * r).sum(1)
        logdet = 2 * torch.log(torch.diagonal(self.chol)).sum()
        return -0.5 * quad - 0.5 * (self.dim * math.log(2 * math.pi) + logdet.to(x))

    def _score(self, x: Tensor) -> Tensor:
        return -(x - self.mean.to(x)) @ self.prec.to(x)


def correlated_gaussian_2d() -> GaussianTarget:
    return GaussianTarget(torch.tensor([1.0, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]))
