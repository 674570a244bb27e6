"""Prepared data for one (target, repetition): splits, standardisation, x0 and the exact row.

Everything here is a pure function of (target name, repetition, sizes, suite seed), so any
worker process rebuilds exactly the same tensors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from benchmarks.execution.seeding import derive_seed
from benchmarks.execution.starts import support_start
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
    """``n`` fresh i.i.d. points of one split of a sampling target (finite-pool targets
    draw rows through :func:`finite_pool_rows`)."""
    if n == "all":
        raise ValueError(f"n_train='all' needs a finite-pool target, {target.name} is not")
    return target.sample_split(n, split=split, seed=seed)


def initial_particles(target: StandardisedTarget, scheme: str, n: int, seed: int) -> Tensor:
    """x0 (n, d) in the standardised space: ``gaussian`` = N(0, I) (a stress test on bounded
    targets: it starts outside the support); ``cap`` = fresh target samples restricted to the
    target's cap region (``Target.cap_mask``); ``support`` = inside the support
    (:func:`benchmarks.execution.starts.support_start`)."""
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
    if base.finite_pool:
        rows = finite_pool_rows(base, rep, n_train, n_reference, n_particles, suite_seed)
        train_raw, ref_raw, exact_raw = (
            gather_rows(base, rows[k]) for k in ("train", "reference", "exact")
        )
    else:
        train_seed = derive_seed(suite_seed, target_name, rep, "train")
        train_raw = _draw(base, n_train, train_seed, "train")
        ref_seed = derive_seed(suite_seed, target_name, rep, "reference")
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


def finite_pool_rows(
    base: Target,
    rep: int,
    n_train: int | str,
    n_reference: int,
    n_particles: int,
    suite_seed: int,
    n_validation: int = 0,
) -> dict[str, dict[str, Tensor]]:
    """Which rows of a finite-pool target's pools each split of one (target, repetition)
    takes: split ("train", "reference", "exact", and "validation" when ``n_validation`` >
    0) -> pool -> row indices.

    train: ``n_train`` rows of the train pool (``"all"``: every row, in pool order) drawn
    by the seed ``(suite_seed, target, rep, "train")``; reference and exact: one draw
    without replacement of ``n_reference + n_particles`` held-out rows (seed "reference"),
    so they never share a code; validation: the target's
    :meth:`~datasets.latents.LatentTarget.validation_indices` from the rows those three
    leave (seed "validation"), so the four are pairwise disjoint and adding validation
    changes no other split."""
    name = base.name
    if n_train == "all":
        train_idx = torch.arange(base.pool("train").shape[0])
    else:
        seed = derive_seed(suite_seed, name, rep, "train")
        train_idx = base.split_indices(n_train, split="train", seed=seed)
    seed = derive_seed(suite_seed, name, rep, "reference")
    held = base.split_indices(n_reference + n_particles, split="reference", seed=seed)
    rows = {
        "train": {"train": train_idx},
        "reference": {"reference": held[:n_reference]},
        "exact": {"reference": held[n_reference:]},
    }
    if n_validation > 0:
        rows["validation"] = base.validation_indices(
            n_validation,
            seed=derive_seed(suite_seed, name, rep, "validation"),
            taken={"train": train_idx, "reference": held},
        )
    return rows


def gather_rows(base: Target, rows: dict[str, Tensor]) -> Tensor:
    """The codes ``(n, d)`` at ``rows`` (pool -> row indices), pools in the given order."""
    return torch.cat([base.pool(pool)[idx] for pool, idx in rows.items()])


@functools.lru_cache(maxsize=8)
def validation_split(
    target_name: str,
    rep: int,
    n_train: int | str,
    n_reference: int,
    n_particles: int,
    n_validation: int,
    suite_seed: int,
) -> Tensor:
    """The validation split (n_validation, d) of one (target, repetition), standardised
    like :func:`prepare`'s splits, under its own seed
    ``derive_seed(suite_seed, target, rep, "validation")``: a fresh i.i.d. draw, so it is
    independent of train, reference, exact and x0; for finite-pool targets (image latents)
    the pool rows that train, reference and exact leave (:func:`finite_pool_rows`; fewer
    than ``n_validation`` where the pools run short, with a warning). Adding it changes
    none of the other draws. Tuning scores against it and never against the reference."""
    base = get_target(target_name)
    if base.finite_pool:
        rows = finite_pool_rows(
            base, rep, n_train, n_reference, n_particles, suite_seed, n_validation
        )
        train_raw, val_raw = gather_rows(base, rows["train"]), gather_rows(base, rows["validation"])
    else:
        seed = derive_seed(suite_seed, target_name, rep, "train")
        train_raw = _draw(base, n_train, seed, "train")
        seed = derive_seed(suite_seed, target_name, rep, "validation")
        val_raw = _draw(base, n_validation, seed, "validation")
    target = StandardisedTarget.from_samples(base, train_raw)
    return target.to_standard(val_raw)
