"""Shared pieces of the neural baselines: their frame (:class:`NeuralSampler`), seeded MLPs,
data whitening, parameter checks, Adam and the cosine learning-rate schedule.

No global RNG state is touched: networks are built on the ``meta`` device (so PyTorch's
default initialisation draws nothing) and then initialised from an explicit generator.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from common.random import make_generator
from samplers.base import Sampler, SamplerError
from samplers.params import Interval

DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: the last defaults of every neural baseline: training seed, precision, training bar
TRAINING_DEFAULTS: dict[str, Any] = {"seed": 0, "dtype": "float64", "fit_progress": False}
#: the cosine schedule decays lr to lr * lr_final_fraction (:func:`cosine_lr`): in (0, 1],
#: above 1 the rate would grow through training
LR_FINAL_FRACTION = Interval(0.0, 1.0, lo_open=True)


def seeded_mlp(
    in_dim: int,
    out_dim: int,
    width: int,
    depth: int,
    *,
    gen: torch.Generator,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """MLP in_dim -> [width, SiLU] x depth -> out_dim, PyTorch's Linear init drawn from ``gen``.

    Weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the nn.Linear default law),
    drawn on the CPU from ``gen`` in layer order, so the network depends only on the seed.
    """
    dims = [in_dim] + [width] * depth + [out_dim]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1], device="meta", dtype=dtype))
        if i < len(dims) - 2:
            layers.append(nn.SiLU())
    net = nn.Sequential(*layers).to_empty(device=device)
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                for p in (layer.weight, layer.bias):
                    u = torch.rand(p.shape, generator=gen, dtype=torch.float64)
                    p.copy_(((2.0 * u - 1.0) * bound).to(device=device, dtype=dtype))
    return net


class Whitening:
    """Coordinatewise affine map z = (x - mean) / std with training statistics (std >= 1e-12).

    Both networks work in z (unit scale, where the default eps/noise schedule make sense);
    particles are mapped back by x = mean + std * z.
    """

    def __init__(self, train: Tensor) -> None:
        self.mean = train.mean(0)
        self.std = train.std(0).clamp_min(1e-12)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)

    def inverse(self, z: Tensor) -> Tensor:
        return self.mean.to(z) + self.std.to(z) * z


def check_params(
    name: str,
    params: dict[str, Any],
    positive_int: tuple[str, ...],
    positive_float: tuple[str, ...],
) -> None:
    """Raise :class:`SamplerError` for a parameter of the wrong type or sign."""
    for key in positive_int:
        v = params[key]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise SamplerError(f"{name}: {key} must be a positive int, got {v!r}")
    for key in positive_float:
        v = params[key]
        if (
            not isinstance(v, (int, float))
            or isinstance(v, bool)
            or not (math.isfinite(v) and v > 0)
        ):
            raise SamplerError(f"{name}: {key} must be a positive finite number, got {v!r}")
    if params.get("dtype", "float64") not in DTYPES:
        raise SamplerError(
            f"{name}: dtype must be one of {sorted(DTYPES)}, got {params['dtype']!r}"
        )
    seed = params.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SamplerError(f"{name}: seed must be an int, got {seed!r}")


class PlateauStopper:
    """Early stop when the EMA of the training loss stops improving.

    Every ``every`` iterations the EMA (factor ``ema``) is compared with the best EMA seen; if it
    has not dropped by more than ``rel_tol`` * |best| for ``patience`` checks in a row, stop.
    """

    def __init__(self, every: int, patience: int, rel_tol: float, ema: float = 0.98) -> None:
        self.every, self.patience, self.rel_tol, self.ema_factor = every, patience, rel_tol, ema
        self.ema: float | None = None
        self.best = math.inf
        self.bad_checks = 0

    def update(self, it: int, loss: float) -> bool:
        """Feed iteration ``it`` (1-based) and its loss; True when training should stop."""
        a = self.ema_factor
        self.ema = loss if self.ema is None else a * self.ema + (1 - a) * loss
        if it % self.every:
            return False
        if self.best == math.inf or self.ema < self.best - self.rel_tol * abs(self.best):
            self.best = self.ema
            self.bad_checks = 0
        else:
            self.bad_checks += 1
        return self.bad_checks >= self.patience


def cosine_lr(lr: float, t: int, iterations: int, final_fraction: float) -> float:
    """lr_t = lr * (f + (1 - f) (1 + cos(pi t / T)) / 2): cosine decay from lr to f * lr."""
    c = 0.5 * (1.0 + math.cos(math.pi * min(t, iterations) / iterations))
    return lr * (final_fraction + (1.0 - final_fraction) * c)


class Adam:
    """Adam (Kingma & Ba 2015) on a list of tensors, no weight decay:
    m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, p <- p - lr m_hat / (sqrt(v_hat) + eps).

    Same update as ``torch.optim.Adam`` (checked in tests); written here because the first
    ``torch.optim.Optimizer`` of a process imports torch._dynamo (about 6 s on this machine),
    which would be billed to the first fit's ``fit_seconds``.
    """

    def __init__(
        self, params: list[Tensor], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.params = list(params)
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.t += 1
        c1 = 1.0 - self.b1**self.t
        c2 = 1.0 - self.b2**self.t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(self.b1).add_(g, alpha=1.0 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1.0 - self.b2)
            denom = (v / c2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / c1)


class NeuralSampler(Sampler):
    """Frame of the neural baselines: a network ``net`` trained in ``fit`` by Adam on the
    whitened training split, sampled in ``run``.

    Subclasses name their ``positive_int`` and ``positive_float`` parameters, checked at
    construction with ``dtype`` and ``seed`` (:func:`check_params`); their defaults end with
    :data:`TRAINING_DEFAULTS` and include ``iterations``, ``lr`` and ``lr_final_fraction``.
    """

    positive_int: ClassVar[tuple[str, ...]] = ()
    positive_float: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_params(self.name, self.params, self.positive_int, self.positive_float)
        self.net: nn.Module | None = None
        self.whitening: Whitening | None = None

    def _whitened_train(self, train: Tensor) -> tuple[Tensor, torch.Generator]:
        """Fit ``self.whitening`` on ``train`` (N, d); return the whitened split (N, d) in the
        ``dtype`` parameter and a CPU generator seeded with ``seed`` (initialisation, batches)."""
        self.whitening = Whitening(train.to(torch.float64))
        data = self.whitening.forward(train.to(torch.float64)).to(DTYPES[self.params["dtype"]])
        return data, make_generator(self.params["seed"])

    def _training_bar(self) -> tqdm:
        """A tqdm bar over the ``iterations``, shown when ``fit_progress`` (and bars are
        allowed: ``common.progress``); close it with ``common.progress.finish``."""
        from common.progress import show

        p = self.params
        return tqdm(
            total=p["iterations"],
            desc=self.name,
            disable=not show(p["fit_progress"]),
            leave=False,
            unit="it",
        )

    def _descend(self, opt: Adam, loss: Tensor, it: int) -> None:
        """Backpropagate ``loss`` and take one Adam step at the cosine learning rate of
        iteration ``it`` (0-based) of ``iterations``."""
        p = self.params
        opt.zero_grad()
        loss.backward()
        opt.step(cosine_lr(p["lr"], it, p["iterations"], p["lr_final_fraction"]))
