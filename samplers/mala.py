"""Metropolis-adjusted Langevin algorithm (MALA), one independent chain per particle.

Proposal  x' = x + h s(x) + sqrt(2 h) xi,  xi ~ N(0, I),  s = grad log p, i.e.
q(x' | x) = N(x'; x + h s(x), 2 h I); accept with probability
min(1, exp(log p(x') - log p(x) + log q(x | x') - log q(x' | x))).
The chain leaves p invariant for every h > 0 (Roberts & Tweedie 1996), which makes MALA the
exact-in-the-limit reference of the suite on targets with a log density.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from common import random
from datasets.base import Target
from samplers.base import RunRequest, Sampler, SampleResult, register_sampler
from samplers.params import Interval, Positive

#: score source recorded for targets with a log density but no score (e.g. uniform ones)
ZERO_DRIFT = "none: zero drift (random-walk Metropolis)"


def mala_log_accept_ratio(
    x: Tensor,
    x_new: Tensor,
    logp_x: Tensor,
    logp_new: Tensor,
    score_x: Tensor,
    score_new: Tensor,
    step_size: float,
) -> Tensor:
    """log of the Metropolis-Hastings ratio for MALA proposals, shape (m,).

    log r = log p(x') - log p(x) + log q(x | x') - log q(x' | x), with
    log q(b | a) = -|b - a - h s(a)|^2 / (4 h) (the Gaussian normalisers cancel).
    x, x_new, score_x, score_new: (m, d); logp_x, logp_new: (m,).
    """
    h = float(step_size)
    fwd = ((x_new - x - h * score_x) ** 2).sum(1)
    bwd = ((x - x_new - h * score_new) ** 2).sum(1)
    return logp_new - logp_x + (fwd - bwd) / (4.0 * h)


def mala_accept_mask(log_ratio: Tensor, logp_x: Tensor, logp_new: Tensor, u: Tensor) -> Tensor:
    """Accept decisions from log ratios and uniforms u (m,), robust to -inf log densities.

    A proposal outside the support (log p(x') = -inf, or any NaN in the ratio) is rejected;
    a finite proposal from a current state outside the support is accepted (the chain enters
    the support and never leaves it again).
    """
    ok_new = torch.isfinite(logp_new)
    ok_old = torch.isfinite(logp_x)
    lr = torch.where(torch.isnan(log_ratio), torch.full_like(log_ratio, -math.inf), log_ratio)
    accept = torch.log(u) < lr
    accept = accept & ok_new
    return accept | (ok_new & ~ok_old)


@register_sampler
class MALA(Sampler):
    """Metropolis-adjusted Langevin, vectorised over particles (each one an independent chain).

    Needs the target's log density. The drift uses the target's score (analytic or by
    autograd of log p); a target with a log density but no score (the uniform targets,
    whose score is a boundary delta) gets zero drift, i.e. random-walk Metropolis with
    N(x, 2h I) proposals, which is still an exact MH chain (score_source records it).

    Parameters (defaults):
        step_size = 0.1       initial h of x' = x + h s(x) + sqrt(2h) xi (standardised targets).
        adapt_fraction = 0.5  the first fraction of the steps is burn-in during which log h is
                              adapted by Robbins-Monro towards ``target_accept`` using the
                              acceptance averaged over chains (gain 1/sqrt(t+1)); h is frozen
                              afterwards, so the remaining steps are exact MALA. 0 = fixed h.
        target_accept = 0.574 the optimal MALA acceptance rate (Roberts & Rosenthal 1998).

    info: ``accept_rate`` (after adaptation; over all steps when adapt_fraction = 0),
    ``accept_rate_burnin``, ``final_step_size``, ``n_log_prob_evals``, ``n_score_evals``,
    ``n_outside_support_init`` (particles of x0 with log p = -inf), ``score_source``.
    """

    name = "mala"
    needs = frozenset({"log_prob"})
    defaults: dict[str, Any] = {"step_size": 0.1, "adapt_fraction": 0.5, "target_accept": 0.574}
    param_specs = {
        "step_size": Positive(),
        "adapt_fraction": Interval(0.0, 1.0),
        "target_accept": Interval(0.0, 1.0, lo_open=True, hi_open=True),
    }
    #: the initial h (adapted during burn-in) and how much of the budget is burn-in
    search_space = {"step_size": (0.01, 0.03, 0.1, 0.3, 1.0), "adapt_fraction": (0.5, 0.25, 0.0)}
    #: widening limits: step 1e-3-3 (the burn-in adaptation covers the rest), adaptation
    #: at most 3/4 of the steps (the rest must be sampled with a frozen step)
    search_limits = {"step_size": (1e-3, 3.0), "adapt_fraction": (0.0, 0.75)}

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        self.use_score = target.has_score
        self.score_source = "exact" if self.use_score else ZERO_DRIFT
        return {"score_source": self.score_source}

    def _score(self, x: Tensor, finite: Tensor) -> Tensor:
        """Score at x, zeroed where log p(x) is not finite (those points are rejected);
        all zeros (random-walk Metropolis) for targets without a score."""
        if not self.use_score:
            return torch.zeros_like(x)
        s = self.target.score(x)
        s = torch.where(finite[:, None], s, torch.zeros_like(s))
        return torch.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)

    def _run(self, run: RunRequest) -> SampleResult:
        target, x0, gen = self.target, run.x0, run.gen
        m = x0.shape[0]
        n_adapt = int(round(float(self.params["adapt_fraction"]) * run.n_steps))
        goal = float(self.params["target_accept"])
        state: dict[str, Any] = {
            "log_h": math.log(float(self.params["step_size"])),
            "accepted_burnin": 0.0,
            "accepted": 0.0,
            "n_lp": 1,
            "n_score": 1,
        }
        logp = target.log_prob(x0)
        state["n_outside"] = int((~torch.isfinite(logp)).sum())
        cache = {"logp": logp, "score": self._score(x0, torch.isfinite(logp))}

        def step(x: Tensor, t: int) -> Tensor:
            h = math.exp(state["log_h"])
            lp, s = cache["logp"], cache["score"]
            noise = random.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
            prop = x + h * s + math.sqrt(2.0 * h) * noise
            valid = torch.isfinite(prop).all(1)
            prop = torch.where(valid[:, None], prop, x)
            lp_new = target.log_prob(prop)
            lp_new = torch.where(valid, lp_new, torch.full_like(lp_new, -math.inf))
            s_new = self._score(prop, torch.isfinite(lp_new))
            state["n_lp"] += 1
            state["n_score"] += 1
            log_r = mala_log_accept_ratio(x, prop, lp, lp_new, s, s_new, h)
            u = random.rand(m, generator=gen, dtype=x.dtype, device=x.device)
            acc = mala_accept_mask(log_r, lp, lp_new, u)
            rate = float(acc.to(x.dtype).mean())
            if t < n_adapt:
                state["accepted_burnin"] += rate
                state["log_h"] += (rate - goal) / math.sqrt(t + 1.0)
            else:
                state["accepted"] += rate
            cache["logp"] = torch.where(acc, lp_new, lp)
            cache["score"] = torch.where(acc[:, None], s_new, s)
            return torch.where(acc[:, None], prop, x)

        res = run.iterate(step)
        done = res.info["steps"]
        n_burn = min(done, n_adapt)
        n_main = done - n_burn
        return res.with_info(
            accept_rate=state["accepted"] / n_main if n_main else float("nan"),
            accept_rate_burnin=state["accepted_burnin"] / n_burn if n_burn else float("nan"),
            final_step_size=math.exp(state["log_h"]),
            n_log_prob_evals=state["n_lp"],
            n_score_evals=state["n_score"],
            n_outside_support_init=state["n_outside"],
            score_source=self.score_source,
        )
