"""Sinkhorn-loss generator: an MLP G(z), z ~ N(0, I), trained on the debiased Sinkhorn divergence.

Training (in ``fit``, timed as ``fit_seconds``): Adam on
    L(theta) = S_eps(G_theta(z_1..z_B), x_1..x_B),
with z_i ~ N(0, I_latent) and x_i a fresh minibatch of the training split, S_eps the debiased
Sinkhorn divergence of :mod:`samplers.core.sinkhorn_loss` (log domain, gradients by the envelope
theorem). Data are whitened with the training mean/std first; eps is ``eps_fraction`` times the
median squared pairwise distance of the whitened training set. Sampling (``run``) is one
forward pass: m = x0.shape[0] particles G(z), z drawn from the run's seeded generator.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from common import random
from common.geometry import median_sq_distance
from common.progress import finish
from datasets.base import Target
from samplers.base import (
    RunRequest,
    SamplerError,
    SampleResult,
    check_deadline,
    register_sampler,
)
from samplers.core.neural_nets import (
    LR_FINAL_FRACTION,
    TRAINING_DEFAULTS,
    Adam,
    NeuralSampler,
    PlateauStopper,
    seeded_mlp,
)
from samplers.core.one_shot import one_shot_result
from samplers.core.sinkhorn_loss import sinkhorn_divergence
from samplers.params import Boolean, Interval, OneOf, Positive, Seed


@register_sampler
class SinkhornGenerator(NeuralSampler):
    """MLP generator trained by minibatch debiased-Sinkhorn descent (Genevay et al. 2018).

    Parameters (defaults in brackets):
      width [128], depth [3]: hidden layer width and number of hidden layers (SiLU).
      latent_dim [None]: size of z; None means max(4, d).
      batch_size [256]: generated and training points per step (all of train if N is smaller).
      iterations [500]: maximum Adam steps; lr [2e-3]: initial Adam learning rate, cosine
        decay to lr * lr_final_fraction [0.05] at ``iterations`` (the minibatch loss is flat
        near its minimum, so a decaying step is what brings the spread in).
      eps_fraction [0.1]: Sinkhorn eps = eps_fraction * median |z_a - z_b|^2 of whitened train
        (about 0.28 for a standardised 2D Gaussian; 0.05 costs 2-3x more Sinkhorn iterations
        for no better fit at these batch sizes).
      sinkhorn_iters [100], sinkhorn_tol [1e-2], sinkhorn_scaling [0.5]: per-solve iteration cap,
        stopping tolerance (max potential change / eps) and eps-scaling factor. The dual value
        is accurate to ~1e-5 at tol 1e-2 (it is stationary in the potentials).
      plateau_every [50], plateau_patience [6], plateau_rel_tol [0.01]: early stop when the
        EMA(0.98) of the loss has not improved by 1 % over 6 checks 50 steps apart.
      seed [0]: seeds the network initialisation and the training minibatches (CPU generator).
      dtype ["float64"]: training precision ("float32" is about twice as fast).
      fit_progress [False]: tqdm bar during training.

    The runner's ``n_steps`` is ignored: the training budget is the fit-time ``iterations``
    and sampling is one forward pass (recorded as ``info["steps"] = 0``,
    ``info["n_steps_ignored"] = n_steps``). ``x0``'s values are ignored too; only its shape,
    device and dtype are used (the noise z comes from the run's seeded generator).
    Fit info: ``train_loss`` (loss per step, a list), ``train_iterations``, ``early_stopped``,
    ``train_eps``, ``sinkhorn_unconverged_fraction``, ``fit_diverged``.
    """

    name = "sinkhorn_generator"
    needs = frozenset({"samples"})
    defaults: dict[str, Any] = {
        "width": 128,
        "depth": 3,
        "latent_dim": None,
        "batch_size": 256,
        "iterations": 500,
        "lr": 2e-3,
        "lr_final_fraction": 0.05,
        "eps_fraction": 0.1,
        "sinkhorn_iters": 100,
        "sinkhorn_tol": 1e-2,
        "sinkhorn_scaling": 0.5,
        "plateau_every": 50,
        "plateau_patience": 6,
        "plateau_rel_tol": 0.01,
        **TRAINING_DEFAULTS,
    }
    positive_int = (
        "width",
        "depth",
        "batch_size",
        "iterations",
        "sinkhorn_iters",
        "plateau_every",
        "plateau_patience",
    )
    positive_float = ("lr", "eps_fraction", "sinkhorn_tol", "plateau_rel_tol")

    param_specs = {
        **{k: Positive(int) for k in positive_int},
        **{k: Positive() for k in positive_float},
        "latent_dim": Positive(int, also=(None,)),
        "sinkhorn_scaling": Interval(0.0, 1.0, lo_open=True, hi_open=True),
        "lr_final_fraction": LR_FINAL_FRACTION,
        "seed": Seed(),
        "dtype": OneOf("float64", "float32"),
        "fit_progress": Boolean(),
    }
    #: learning rate and training length (at most the default's 500 iterations: the budget)
    search_space = {"lr": (5e-4, 1e-3, 2e-3, 5e-3), "iterations": (250, 500)}
    #: widening limits: Adam lr 1e-4-2e-2 (above, the MLP diverges at these batch sizes);
    #: at most 2,000 iterations (the training budget score_diffusion also gets)
    search_limits = {"lr": (1e-4, 2e-2), "iterations": (100, 2000)}
    uses_x0 = False

    smoke_params: dict[str, Any] = {"width": 16, "depth": 1, "batch_size": 32, "iterations": 20}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        if p["latent_dim"] is not None and (
            not isinstance(p["latent_dim"], int) or p["latent_dim"] <= 0
        ):
            raise SamplerError(
                f"{self.name}: latent_dim must be None or a positive int, got {p['latent_dim']!r}"
            )
        sc = p["sinkhorn_scaling"]
        if sc is not None and not (isinstance(sc, float) and 0.0 < sc < 1.0):
            raise SamplerError(
                f"{self.name}: sinkhorn_scaling must be None or in (0, 1), got {sc!r}"
            )

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        p = self.params
        data, gen = self._whitened_train(train)
        (n, d), dtype, device = data.shape, data.dtype, train.device
        latent = p["latent_dim"] or max(4, d)
        self.latent_dim = latent
        self.net = seeded_mlp(
            latent, d, p["width"], p["depth"], gen=gen, dtype=dtype, device=device
        )
        eps = p["eps_fraction"] * median_sq_distance(data)
        batch = min(p["batch_size"], n)
        opt = Adam(list(self.net.parameters()))
        stopper = PlateauStopper(p["plateau_every"], p["plateau_patience"], p["plateau_rel_tol"])
        losses: list[float] = []
        unconverged = 0
        diverged = False
        early = False
        best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        bar = self._training_bar()
        for it in range(1, p["iterations"] + 1):
            check_deadline(f"{self.name} training")
            idx = torch.randperm(n, generator=gen)[:batch].to(device)
            z = torch.randn(batch, latent, generator=gen, dtype=torch.float64).to(device, dtype)
            fake = self.net(z)
            if not bool(torch.isfinite(fake).all()):
                diverged = True
                break
            loss, info = sinkhorn_divergence(
                fake,
                data[idx],
                eps,
                max_iters=p["sinkhorn_iters"],
                tol=p["sinkhorn_tol"],
                scaling=p["sinkhorn_scaling"],
            )
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = True
                break
            unconverged += not info["converged"]
            self._descend(opt, loss, len(losses))
            losses.append(value)
            best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            bar.update(1)
            if stopper.update(it, value):
                early = True
                break
        finish(bar, len(losses))
        if diverged:  # keep the last finite parameters, record the failure
            self.net.load_state_dict(best_state)
        return {
            "train_loss": losses,
            "train_iterations": len(losses),
            "early_stopped": early,
            "train_eps": eps,
            "latent_dim": latent,
            "sinkhorn_unconverged_fraction": unconverged / max(1, len(losses)),
            "fit_diverged": diverged,
        }

    def _run(self, run: RunRequest) -> SampleResult:
        """One pass of m latent draws through the generator (``one_shot_result``: a zero-step
        result, read for divergence like a step)."""
        assert self.net is not None and self.whitening is not None
        x0 = run.x0
        param = next(self.net.parameters())
        net = self.net.to(x0.device)

        def draw(m: int) -> Tensor:
            with torch.no_grad():
                z = random.randn(
                    m, self.latent_dim, generator=run.gen, device=x0.device, dtype=param.dtype
                )
                return self.whitening.inverse(net(z).to(torch.float64))

        return one_shot_result(run, draw)
