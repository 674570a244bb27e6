"""Prepared data for one (target, repetition): splits, standardisation, x0 and the exact row.

Everything here is a pure function of (target name, repetition, sizes, suite seed), so any
worker process rebuilds exactly the same tensors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from benchmarks.seeding import derive_seed
from benchmarks.starts import support_start
from common.geometry import relative_eps
from common.random import make_generator
from datasets.base import StandardisedTarget, Target, get_target


@dataclass(frozen=True)
class PreparedTarget:
    """Standardised target, splits and initial particles (all float64, standardised space).

    train: (n_train, d) what samplers see; reference: (n_reference, d) what metrics compare
    against; exact: (n_particles, d) fresh i.i.d. target samples (the noise floor row);
    x0: init scheme -> (n_particles, d); scale: the Sinkhorn eps for this target.
    """

    target: StandardisedTarget
    train: Tensor
    reference: Tensor
    exact: Tensor
    x0: dict[str, Tensor]
    scale: float


def _draw(target: Target, n: int | str, seed: int, split: str) -> Tensor:
    """Sample ``n`` points of one split; finite-pool targets (image latents) keep the
    train/reference pools disjoint through their ``sample_split``."""
    if n == "all":  # n_train = "all": the whole pool, in pool order
        if not target.finite_pool:
            raise ValueError(f"n_train='all' needs a finite-pool target, {target.name} is not")
        return target.pool(split)
    return target.sample_split(n, split=split, seed=seed)


def initial_particles(target: StandardisedTarget, scheme: str, n: int, seed: int) -> Tensor:
    """x0 (n, d) in the standardised space: ``gaussian`` = N(0, I) (a stress test on bounded
    targets: it starts outside the support); ``cap`` = fresh target samples restricted to the
    target's cap region (``Target.cap_mask``); ``support`` = inside the support
    (:func:`benchmarks.starts.support_start`)."""
    if scheme == "gaussian":
        return torch.randn(n, target.dim, generator=make_generator(seed), dtype=torch.float64)
    if scheme == "cap":
        return target.sample_cap(n, seed=seed)
    if scheme == "support":
        return support_start(target, n, seed)
    raise ValueError(f"unknown init scheme {scheme!r}; expected 'gaussian', 'cap' or 'support'")


@functools.lru_cache(maxsize=8)
def prepare(
    target_name: str,
    rep: int,
    n_train: int | str,
    n_reference: int,
    n_particles: int,
    inits: tuple[str, ...],
    suite_seed: int,
) -> PreparedTarget:
    """Build the splits and x0 of one (target, repetition); cached per process."""
    base = get_target(target_name)
    train_raw = _draw(base, n_train, derive_seed(suite_seed, target_name, rep, "train"), "train")
    ref_seed = derive_seed(suite_seed, target_name, rep, "reference")
    if base.finite_pool:
        # image latents: reference and exact rows come from one draw without replacement
        # of the held-out pool, so they never share a point (nor with the train pool)
        both = _draw(base, n_reference + n_particles, ref_seed, "reference")
        ref_raw, exact_raw = both[:n_reference], both[n_reference:]
    else:
        ref_raw = _draw(base, n_reference, ref_seed, "reference")
        exact_raw = _draw(
            base, n_particles, derive_seed(suite_seed, target_name, rep, "exact"), "reference"
        )
    target = StandardisedTarget.from_samples(base, train_raw)
    reference = target.to_standard(ref_raw)
    x0 = {
        scheme: initial_particles(
            target, scheme, n_particles, derive_seed(suite_seed, target_name, rep, "x0", scheme)
        )
        for scheme in inits
    }
    scale = relative_eps(reference, target.metric_eps_fraction)
    return PreparedTarget(
        target=target,
        train=target.to_standard(train_raw),
        reference=reference,
        exact=target.to_standard(exact_raw),
        x0=x0,
        scale=scale,
    )


@functools.lru_cache(maxsize=8)
def validation_split(
    target_name: str, rep: int, n_train: int, n_validation: int, suite_seed: int
) -> Tensor:
    """The validation split (n_validation, d) of one (target, repetition), standardised
    like :func:`prepare`'s splits: a fresh i.i.d. draw under its own seed
    ``derive_seed(suite_seed, target, rep, "validation")``, so it is independent of train,
    reference, exact and x0, and adding it changes none of their draws. Tuning scores
    against it and never against the reference. Finite-pool targets (image latents) have
    no third disjoint pool: :class:`ValueError`."""
    base = get_target(target_name)
    if base.finite_pool:
        raise ValueError(f"{target_name}: finite-pool targets have no validation split")
    train_raw = _draw(base, n_train, derive_seed(suite_seed, target_name, rep, "train"), "train")
    target = StandardisedTarget.from_samples(base, train_raw)
    seed = derive_seed(suite_seed, target_name, rep, "validation")
    return target.to_standard(_draw(base, n_validation, seed, "validation"))
