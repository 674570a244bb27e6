"""Score-based diffusion baseline: VP-SDE (Song et al. 2021), denoising score matching, reverse SDE.

Forward (in whitened data space z): dz = -beta(t) z / 2 dt + sqrt(beta(t)) dW, t in [0, 1],
beta(t) = beta_min + t (beta_max - beta_min), so z_t | z_0 ~ N(alpha_t z_0, sigma_t^2 I) with
log alpha_t = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2, sigma_t^2 = 1 - alpha_t^2.
Training (``fit``): the MLP eps_theta(z, t) minimises E || eps_theta(alpha_t z_0 + sigma_t xi, t)
- xi ||^2, t ~ U(t_min, 1), xi ~ N(0, I) (denoising score matching with weight sigma_t^2);
the score is s_theta(z, t) = -eps_theta(z, t) / sigma_t.
Sampling (``run``): z_1 ~ N(0, I), then Euler-Maruyama on the reverse SDE
dz = [-beta z / 2 - beta s_theta] dt + sqrt(beta) dW_bar from t = 1 to t_min (last step without
noise), or Euler on the probability-flow ODE dz = [-beta z / 2 - beta s_theta / 2] dt.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from common import random
from common.progress import finish
from datasets.base import Target
from samplers.base import RunRequest, SamplerError, SampleResult, check_deadline, register_sampler
from samplers.core.neural_nets import (
    LR_FINAL_FRACTION,
    TRAINING_DEFAULTS,
    Adam,
    NeuralSampler,
    seeded_mlp,
)
from samplers.params import Boolean, OneOf, Positive, Seed


class VPSchedule:
    """The VP-SDE noise schedule: beta(t), alpha_t, sigma_t (t a tensor of any shape)."""

    def __init__(self, beta_min: float, beta_max: float) -> None:
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_alpha(self, t: Tensor) -> Tensor:
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sqrt(-torch.expm1(2.0 * self.log_alpha(t)))


class TimeConditionedMLP(nn.Module):
    """eps_theta(z, t): MLP on [z, sin(pi k t), cos(pi k t) for k = 1..n_freq]; (m, d) -> (m, d)."""

    def __init__(
        self,
        dim: int,
        width: int,
        depth: int,
        n_freq: int,
        *,
        gen: torch.Generator,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "freqs", math.pi * torch.arange(1, n_freq + 1, dtype=dtype, device=device)
        )
        self.body = seeded_mlp(
            dim + 2 * n_freq, dim, width, depth, gen=gen, dtype=dtype, device=device
        )

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        phase = t.reshape(-1, 1) * self.freqs
        return self.body(torch.cat([z, torch.sin(phase), torch.cos(phase)], dim=1))


@register_sampler
class ScoreDiffusion(NeuralSampler):
    """Score-based diffusion model (VP-SDE, denoising score matching, Euler-Maruyama sampler).

    Parameters (defaults in brackets):
      width [128], depth [3], n_freq [8]: MLP hidden width / hidden layers (SiLU) and the number
        of sin/cos time frequencies fed with z.
      iterations [2000], batch_size [256], lr [2e-3], lr_final_fraction [0.05]: Adam steps on
        minibatches of the whitened training split, cosine decay of the learning rate to
        lr * lr_final_fraction. No early stop (the DSM loss is noisy and has a non-zero floor).
      beta_min [0.1], beta_max [20.0], t_min [1e-3]: VP schedule (Song et al. 2021) and the
        smallest time trained on and integrated to.
      solver ["sde"]: "sde" (reverse-time Euler-Maruyama, last step noise-free) or "ode"
        (probability-flow ODE, Euler).
      sample_steps [None]: reverse steps; None uses the runner's ``n_steps`` (which must then
        be >= 1).
      seed [0]: seeds network initialisation and training minibatches/noise (CPU generator).
      dtype ["float64"]: training and sampling precision; fit_progress [False]: tqdm bar.

    Data are whitened with the training mean/std (the schedule assumes unit scale) and samples
    mapped back. ``x0``'s values are ignored, only its shape/device/dtype are used: the start
    z_1 ~ N(0, I) comes from the run's seeded generator. One step = one score evaluation of
    all particles (``info["n_score_evals"]`` = steps * m). Fit info: ``train_loss`` (a list),
    ``train_iterations``, ``fit_diverged``.
    """

    name = "score_diffusion"
    needs = frozenset({"samples"})
    defaults: dict[str, Any] = {
        "width": 128,
        "depth": 3,
        "n_freq": 8,
        "iterations": 2000,
        "batch_size": 256,
        "lr": 2e-3,
        "lr_final_fraction": 0.05,
        "beta_min": 0.1,
        "beta_max": 20.0,
        "t_min": 1e-3,
        "solver": "sde",
        "sample_steps": None,
        **TRAINING_DEFAULTS,
    }
    positive_int = ("width", "depth", "n_freq", "iterations", "batch_size")
    positive_float = ("lr", "beta_min", "beta_max", "t_min")

    param_specs = {
        **{k: Positive(int) for k in positive_int},
        **{k: Positive() for k in positive_float},
        "lr_final_fraction": LR_FINAL_FRACTION,
        "solver": OneOf("sde", "ode"),
        "sample_steps": Positive(int, also=(None,)),
        "seed": Seed(),
        "dtype": OneOf("float64", "float32"),
        "fit_progress": Boolean(),
    }
    #: learning rate and training length (at most the default's 2000 iterations: the budget)
    search_space = {
        "lr": (5e-4, 1e-3, 2e-3, 5e-3),
        "iterations": (1000, 2000),
        "solver": ("sde", "ode"),
    }
    #: widening limits: Adam lr 1e-4-2e-2; iterations at most 2,000 (the training budget)
    search_limits = {"lr": (1e-4, 2e-2), "iterations": (250, 2000)}
    uses_x0 = False

    #: cheap settings that still give in-scale samples: with 30 steps at the default lr the
    #: score net is untrained and the reverse SDE reached ~190x the data's radius (measured);
    #: 100 steps at lr 1e-2 and t_min 0.02 stay within ~2x (tests/samplers/test_smoke_scale.py)
    smoke_params: dict[str, Any] = {
        "width": 16,
        "depth": 1,
        "iterations": 100,
        "batch_size": 64,
        "lr": 1e-2,
        "t_min": 0.02,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        if p["beta_max"] <= p["beta_min"]:
            raise SamplerError(
                f"{self.name}: beta_max must exceed beta_min, got "
                f"{p['beta_max']} <= {p['beta_min']}"
            )
        if p["t_min"] >= 1.0:
            raise SamplerError(f"{self.name}: t_min must be in (0, 1), got {p['t_min']}")
        if p["solver"] not in ("sde", "ode"):
            raise SamplerError(f"{self.name}: solver must be 'sde' or 'ode', got {p['solver']!r}")
        steps = p["sample_steps"]
        if steps is not None and (not isinstance(steps, int) or steps <= 0):
            raise SamplerError(
                f"{self.name}: sample_steps must be None or a positive int, got {steps!r}"
            )
        self.schedule = VPSchedule(p["beta_min"], p["beta_max"])

    # -- training --------------------------------------------------------------------------
    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        p = self.params
        data, gen = self._whitened_train(train)
        (n, d), dtype, device = data.shape, data.dtype, train.device
        self.net = TimeConditionedMLP(
            d, p["width"], p["depth"], p["n_freq"], gen=gen, dtype=dtype, device=device
        )
        opt = Adam(list(self.net.parameters()))
        batch = min(p["batch_size"], n)
        losses: list[float] = []
        diverged = False
        bar = self._training_bar()
        for _ in range(p["iterations"]):
            check_deadline(f"{self.name} training")
            idx = torch.randperm(n, generator=gen)[:batch].to(device)
            t = p["t_min"] + (1 - p["t_min"]) * torch.rand(
                batch, generator=gen, dtype=torch.float64
            )
            xi = torch.randn(batch, d, generator=gen, dtype=torch.float64)
            t, xi = t.to(device, dtype), xi.to(device, dtype)
            zt = self.schedule.alpha(t)[:, None] * data[idx] + self.schedule.sigma(t)[:, None] * xi
            loss = ((self.net(zt, t) - xi) ** 2).sum(1).mean()
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = True
                break
            self._descend(opt, loss, len(losses))
            losses.append(value)
            bar.update(1)
        finish(bar, len(losses))
        return {"train_loss": losses, "train_iterations": len(losses), "fit_diverged": diverged}

    # -- the learned score -----------------------------------------------------------------
    def score(self, z: Tensor, t: float | Tensor) -> Tensor:
        """Learned score s_theta(z, t) = -eps_theta(z, t)/sigma_t in whitened space, (m, d)."""
        if self.net is None:
            raise SamplerError(f"{self.name}: call fit(train, target) before score()")
        param = next(self.net.parameters())
        tt = torch.as_tensor(t, dtype=param.dtype, device=param.device).expand(z.shape[0])
        with torch.no_grad():
            return -self.net(z.to(param), tt) / self.schedule.sigma(tt)[:, None]

    # -- sampling --------------------------------------------------------------------------
    def _run(self, run: RunRequest) -> SampleResult:
        assert self.net is not None and self.whitening is not None
        p, x0, gen = self.params, run.x0, run.gen
        steps = p["sample_steps"] or run.n_steps
        if steps < 1:
            raise SamplerError(
                f"{self.name}: needs n_steps >= 1 reverse steps (or set "
                f"sample_steps), got {run.n_steps}"
            )
        param = next(self.net.parameters())
        net = self.net.to(x0.device)
        dtype = param.dtype
        m, d = x0.shape
        grid = torch.linspace(1.0, p["t_min"], steps + 1, dtype=dtype, device=x0.device)
        ode = p["solver"] == "ode"
        sch = self.schedule

        def step(z: Tensor, i: int) -> Tensor:
            t, dt = grid[i], grid[i] - grid[i + 1]
            tt = t.expand(m)
            beta = sch.beta(t)
            with torch.no_grad():
                s = -net(z, tt) / sch.sigma(t)
            drift = 0.5 * beta * z + (0.5 if ode else 1.0) * beta * s
            z = z + drift * dt
            if not ode and i < steps - 1:
                noise = random.randn(m, d, generator=gen, device=z.device, dtype=dtype)
                z = z + torch.sqrt(beta * dt) * noise
            return z

        z1 = random.randn(m, d, generator=gen, device=x0.device, dtype=dtype)
        res = run.iterate(step, z1, steps)
        x = self.whitening.inverse(res.particles.to(torch.float64)).to(x0.dtype)
        traj = None
        if res.trajectory is not None:
            traj = self.whitening.inverse(res.trajectory.to(torch.float64)).to(x0.dtype)
        info = {
            **res.info,
            "n_score_evals": res.info["steps"] * m,
            "solver": p["solver"],
            "reverse_steps": steps,
        }
        return SampleResult(x, traj, res.times, info)
