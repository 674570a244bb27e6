"""Equal-budget tuning on a validation split: ``python -m benchmarks tune --suite NAME``.

Every sampler declares a small ``search_space`` (parameter -> candidate values). For each
(sampler, target) the tuner draws the same number of settings, the *budget* (default 8): the
default setting (no overrides) plus ``budget - 1`` distinct combinations of the sampler's
:meth:`~samplers.base.Sampler.tuning_space` on that target (its space without knobs that are
inert there, such as a KDE bandwidth on a target with an exact score) drawn without
replacement with a seed fixed by (suite seed, sampler); a space with fewer combinations is
tried in full. Each setting runs on every (target, repetition, init) of the suite with the
suite's training split, x0 and step budget, and is scored by the suite's headline metric
against the **validation split** (:func:`benchmarks.data.validation_split`: own seeds,
disjoint from train and reference), with the Sinkhorn scale taken from the validation split
too: tuning never reads the test reference. The chosen setting per (sampler, target, init)
has the best mean score over repetitions (a failed or diverged run scores +inf; ties keep
the earlier setting, the default first).

Targets whose data are absent (image data sets without their files) are left out with a
line in the log and listed in ``tuned.json`` (``skipped_targets``). Image-latent targets
(finite pools) take their validation split from the pool rows that train, reference and
exact leave; ``validation_sizes`` records its size per target (smaller than
``n_validation`` only where a pool runs short, as digits' does: see
:func:`benchmarks.data.finite_pool_rows`).

Fits run serially or in ``--jobs`` processes with one torch/BLAS thread each (the
runner's backend and thread rule), so the scores do not depend on ``--jobs``.

Outputs in ``<out>/<suite>/``: ``tuning_trials.jsonl`` (one line per trial, so an
interrupted tuning resumes where it stopped) and ``tuned.json`` (chosen settings, every
trial's score, budget, seed, commit). ``run`` reads ``tuned.json`` (see :func:`load_tuned`).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.data import prepare, validation_split
from benchmarks.environment import environment
from benchmarks.options import DEFAULT_BUDGET, TUNED_FILE
from benchmarks.runner import _params
from benchmarks.seeding import derive_seed
from benchmarks.shared_runs import run_inits
from benchmarks.store import atomic_write_text
from benchmarks.suites import Suite
from common.geometry import relative_eps
from datasets.base import DataMissingError, get_target
from metrics.base import MetricContext, get_metric
from samplers.base import sampler_class

TRIALS_FILE = "tuning_trials.jsonl"


def draw_settings(
    sampler: str, budget: int, seed: int, space: dict[str, tuple[Any, ...]] | None = None
) -> list[dict[str, Any]]:
    """``min(budget, n)`` settings of ``sampler`` (n = distinct settings of ``space``, default
    its whole ``search_space``): the default ``{}`` first, then distinct combinations drawn
    with ``seed``, each given as its overrides of the defaults only."""
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    cls = sampler_class(sampler)
    space = cls.search_space if space is None else space
    keys = sorted(space)
    seen = {json.dumps({}, sort_keys=True)}
    others: list[dict[str, Any]] = []
    for values in itertools.product(*(space[k] for k in keys)):
        combo = {k: v for k, v in zip(keys, values, strict=True) if v != cls.defaults[k]}
        key = json.dumps(combo, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            others.append(combo)
    rng = np.random.default_rng(seed)
    picked = sorted(rng.permutation(len(others))[: budget - 1].tolist())
    return [{}] + [others[i] for i in picked]


def settings_for(suite: Suite, sampler: str, target: str, budget: int) -> list[dict[str, Any]]:
    """The settings ``sampler`` is tried with on ``target``: drawn from its
    :meth:`~samplers.base.Sampler.tuning_space` there (knobs inert on this target left out),
    with a seed fixed by (suite seed, sampler)."""
    cls = sampler_class(sampler)
    space = cls.tuning_space(get_target(target), _params(suite, sampler))
    return draw_settings(sampler, budget, derive_seed(suite.suite_seed, "tune", sampler), space)


def trial_key(sampler: str, target: str, init: str, rep: int, params: dict[str, Any]) -> str:
    return json.dumps([sampler, target, init, rep, params], sort_keys=True, default=str)


def score_setting(
    suite: Suite, sampler: str, target: str, rep: int, params: dict[str, Any], n_validation: int
) -> dict[str, tuple[float, str]]:
    """Fit ``sampler`` with ``params`` on the training split of (target, rep), run it from
    each init's x0 and score against the validation split: init -> (score, status)."""
    data = prepare(
        target,
        rep,
        suite.n_train,
        suite.n_reference,
        suite.n_particles,
        suite.inits,
        suite.suite_seed,
    )
    val = validation_split(
        target,
        rep,
        suite.n_train,
        suite.n_reference,
        suite.n_particles,
        n_validation,
        suite.suite_seed,
    )
    scale = relative_eps(val, data.target.metric_eps_fraction)
    metric = get_metric(suite.headline_metric)
    sign = 1.0 if metric.lower_is_better else -1.0
    ran = run_inits(sampler, suite.inits)
    out: dict[str, tuple[float, str]] = {}
    try:
        s = sampler_class(sampler)(**{**_params(suite, sampler), **params})
        s.fit(data.train, data.target)
    except Exception as exc:
        return {i: (math.inf, f"fit failed: {type(exc).__name__}: {exc}") for i in suite.inits}
    for init in ran:
        try:
            res = s.run(
                data.x0[init],
                suite.n_steps,
                seed=derive_seed(suite.suite_seed, target, sampler, rep),
            )
            x = res.particles.to(torch.float64)
            if res.diverged or not bool(torch.isfinite(x).all()):
                out[init] = (math.inf, "diverged")
                continue
            ctx = MetricContext(
                particles=x,
                reference=val,
                train=data.train,
                scale=scale,
                seed=derive_seed(suite.suite_seed, "tune-metric", target, rep),
                target=data.target,
            )
            value = float(metric(ctx).value)
            out[init] = (sign * value if math.isfinite(value) else math.inf, "ok")
        except Exception as exc:
            out[init] = (math.inf, f"failed: {type(exc).__name__}: {exc}")
    for init in suite.inits:
        out.setdefault(init, out[ran[0]])
    return out


TrialUnit = tuple[str, str, int, dict[str, Any]]
"""(sampler, target, rep, overrides): one fit scored from every init of the suite."""


def _scored_units(
    suite: Suite, units: list[TrialUnit], n_validation: int, jobs: int, threads: int
) -> Iterator[tuple[TrialUnit, dict[str, tuple[float, str]]]]:
    """Scores of ``units`` as they complete, each computed with ``threads`` torch and BLAS
    threads like the runner's units: serially in order, or in ``jobs`` local processes
    (the runner's backend) in completion order."""
    from benchmarks.parallel import local_unordered, with_threads

    pinned = functools.partial(with_threads, score_setting, threads=threads)
    calls = [(suite, *unit, n_validation) for unit in units]
    if jobs <= 1 or len(units) <= 1:
        for unit, call in zip(units, calls, strict=True):
            yield unit, pinned(*call)
        return
    for i, scores in local_unordered(pinned, calls, jobs):
        yield units[i], scores


def tune_suite(
    suite: Suite,
    samplers: list[str],
    out_dir: Path,
    *,
    budget: int = DEFAULT_BUDGET,
    n_validation: int | None = None,
    jobs: int = 1,
    threads: int = 1,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Tune every sampler of ``samplers`` on ``suite`` (see the module docstring); write and
    return the ``tuned.json`` content. Trials already in ``tuning_trials.jsonl`` are reused;
    the missing ones run serially or in ``jobs`` processes, with ``threads`` torch/BLAS
    threads each either way (so the scores do not depend on ``jobs``). The file records
    ``command`` (the command line), the wall time, the load average at the end, jobs and
    threads."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    n_val = n_validation or suite.n_reference
    skipped = missing_targets(suite.targets)
    for target, message in skipped.items():
        log(f"tuning {suite.name}: skipping {target} ({message})")
    suite = suite.with_overrides(targets=tuple(t for t in suite.targets if t not in skipped))
    val_sizes = {
        target: min(
            validation_split(
                target,
                rep,
                suite.n_train,
                suite.n_reference,
                suite.n_particles,
                n_val,
                suite.suite_seed,
            ).shape[0]
            for rep in suite.seeds
        )
        for target in suite.targets
    }
    trials_path = out_dir / TRIALS_FILE
    done: dict[str, dict[str, Any]] = {}
    if trials_path.exists():
        for line in trials_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["key"]] = rec
    plan = {
        (sampler, target): settings_for(suite, sampler, target, budget)
        for sampler in samplers
        for target in suite.targets
    }
    todo: list[TrialUnit] = [
        (sampler, target, rep, params)
        for (sampler, target), settings in plan.items()
        for params in settings
        for rep in suite.seeds
        if not all(trial_key(sampler, target, i, rep, params) in done for i in suite.inits)
    ]
    log(f"tuning {suite.name}: {len(todo)} fits to run ({len(done)} trials reused), jobs={jobs}")
    with trials_path.open("a", encoding="utf-8") as fh:
        for n, (unit, res) in enumerate(_scored_units(suite, todo, n_val, jobs, threads), 1):
            sampler, target, rep, params = unit
            for init in suite.inits:
                score, status = res[init]
                key = trial_key(sampler, target, init, rep, params)
                rec = {
                    "key": key,
                    "sampler": sampler,
                    "target": target,
                    "init": init,
                    "rep": rep,
                    "params": params,
                    "score": score,
                    "status": status,
                }
                done[key] = rec
                fh.write(json.dumps(rec, default=str) + "\n")
            fh.flush()
            log(f"[{n}/{len(todo)}] {sampler} {target} rep {rep} {params}")
    trials: list[dict[str, Any]] = []
    chosen: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (sampler, target), settings in plan.items():
        for init in suite.inits:
            means = []
            for params in settings:
                recs = [done[trial_key(sampler, target, init, r, params)] for r in suite.seeds]
                trials.extend(recs)
                means.append(float(np.mean([r["score"] for r in recs])))
            best = int(np.argmin(means))  # first minimum: the default wins ties
            chosen.setdefault(sampler, {}).setdefault(target, {})[init] = settings[best]
            log(
                f"tune {sampler} {target}/{init}: {settings[best]} "
                f"(score {means[best]:.4g}, default {means[0]:.4g}, {len(settings)} settings)"
            )
    result = {
        "suite": suite.name,
        "metric": suite.headline_metric,
        "budget": budget,
        "n_validation": n_val,
        "validation_sizes": val_sizes,
        "skipped_targets": skipped,
        "seeds": list(suite.seeds),
        "inits": list(suite.inits),
        "commit": environment("cpu")["commit"],
        "command": command,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average": list(os.getloadavg()),
        "jobs": jobs,
        "threads": threads,
        "note": "scores are sign-adjusted (lower is better) means over seeds on the "
        "validation split; settings are overrides of each sampler's defaults",
        "chosen": chosen,
        "trials": [{k: v for k, v in t.items() if k != "key"} for t in trials],
    }
    atomic_write_text(out_dir / TUNED_FILE, json.dumps(result, indent=1, default=str) + "\n")
    return result


def missing_targets(targets: tuple[str, ...]) -> dict[str, str]:
    """The targets of ``targets`` whose data are absent (target -> the loader's message):
    tuning leaves them out, as ``run`` records them as skipped."""
    out = {}
    for target in targets:
        try:
            get_target(target)
        except DataMissingError as exc:
            out[target] = f"data missing: {exc}"
    return out


def load_tuned(path: Path) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """The chosen settings of a ``tuned.json``: sampler -> target -> init -> overrides."""
    return json.loads(path.read_text(encoding="utf-8"))["chosen"]
