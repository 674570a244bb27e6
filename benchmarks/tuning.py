"""Equal-budget tuning on a validation split: ``python -m benchmarks tune --suite NAME``.

Every sampler declares a small ``search_space`` (parameter -> candidate values). For each
(sampler, target) the tuner draws the same number of settings, the *budget* (default 8): the
default setting (no overrides) plus ``budget - 1`` distinct combinations of the sampler's
:meth:`~samplers.base.Sampler.tuning_space` on that target (its space without knobs that are
inert there, such as a KDE bandwidth on a target with an exact score) drawn without
replacement with a seed fixed by (suite seed, sampler); a space with fewer combinations is
tried in full. Each setting runs on every (target, repetition, init) of the suite with the
suite's training split, x0 and step budget, and is scored by the suite's headline metric
against the **validation split** (:func:`benchmarks.execution.data.validation_split`: own seeds,
disjoint from train and reference), with the Sinkhorn scale taken from the validation split
too: tuning never reads the test reference. The chosen setting per (sampler, target, init)
has the best mean score over repetitions (a failed or diverged run scores +inf; ties keep
the earlier setting, the default first) among the settings the **guard** lets through
(:mod:`benchmarks.tuning_guard`): a setting whose runs are flagged (copying the training
split by the suite's flag metric on the validation split, read over the repetitions by the
metric's guard rule, or a run flag such as a binding step cap in a majority of repetitions)
is chosen only when every setting is; then the best setting the leaderboard's own rule lets
through is chosen, else the best-scoring one. A setting whose mean score is above its start
ceiling (the start clouds' own validation score, at least 5 x the exact row's:
:func:`start_scores`, :func:`benchmarks.tuning_guard.start_ceiling`) is guarded too, unless
every setting is.

Tuning runs on its own repetitions (:data:`TUNING_REPS`, seeds that no leaderboard
evaluates): the training splits, starts and sampler seeds a setting is chosen on are never
the ones it is scored on, so a setting that fits the evaluated draws cannot be chosen.
A chosen setting on an edge of its knob's values is then widened past that edge and scored
again (``benchmarks.search_widening``: same rule for every sampler, up to each sampler's
declared ``search_limits``), until interior or at the limit; ``tuned.json`` records each
choice's edge state and how many settings of its (widened) space were tried.

Targets whose data are absent (image data sets without their files) are left out with a
line in the log and listed in ``tuned.json`` (``skipped_targets``). Image-latent targets
(finite pools) take their validation split from the pool rows that train, reference and
exact leave; ``validation_sizes`` records its size per target (smaller than
``n_validation`` only where a pool runs short, as digits' does: see
:func:`benchmarks.execution.data.finite_pool_rows`).

Fits run serially or in ``--jobs`` processes with one torch/BLAS thread each (the
runner's backend and thread rule), so the scores do not depend on ``--jobs``.

Outputs in ``<out>/<suite>/``: ``tuning_trials.jsonl`` (one line per trial, so an
interrupted tuning resumes where it stopped) and ``tuned.json`` (chosen settings, every
trial's score, budget, seed, commit). ``run`` reads ``tuned.json`` (see :func:`load_tuned`).

``tune --retune SAMPLERS`` tunes only samplers whose code changed since ``tuned.json`` was
made, with the same budget and repetitions; the other samplers' trials and choices are
taken from that file, and it keeps its first command and commit and lists the retune under
``retuned`` (:func:`tune_suite`). ``tune --continue`` is the same with no sampler retuned:
it runs only what the present code needs beyond the file's trials (e.g. the guard's readings
of trials recorded before they existed, where a choice reaches them, or every setting on
repetitions added with ``--seeds``).
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

from benchmarks.execution.data import PreparedTarget, prepare, validation_split
from benchmarks.execution.environment import environment
from benchmarks.execution.runner import _params
from benchmarks.execution.seeding import derive_seed
from benchmarks.execution.shared_runs import run_inits
from benchmarks.execution.store import atomic_write_text
from benchmarks.options import DEFAULT_BUDGET, TUNED_FILE
from benchmarks.search_widening import (
    MAX_WIDEN_ROUNDS,
    canonical,
    space_size,
    widening_round,
)
from benchmarks.suites import Suite
from benchmarks.tuning_cli import TUNING_REPS as _CLI_TUNING_REPS
from benchmarks.tuning_guard import (
    EXACT_ROW,
    GuardedChoice,
    GuardLedger,
    flag_metrics,
    guard_rules,
    guarded_choice,
    no_readings,
    trial_readings,
)
from common.geometry import relative_eps
from datasets.base import DataMissingError, get_target
from metrics.base import MetricContext, get_metric
from samplers.base import sampler_class

TRIALS_FILE = "tuning_trials.jsonl"

#: the repetitions tuning runs on by default (``benchmarks.tuning_cli.TUNING_REPS``): never
#: evaluated by a leaderboard (the suites evaluate repetitions 0-9 at most)
TUNING_REPS = _CLI_TUNING_REPS


def _n_train(suite: Suite) -> int:
    """The suite's training-split size as a number (``"all"`` counts as unbounded)."""
    return suite.n_train if isinstance(suite.n_train, int) else 10**9


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


Outcome = tuple[float, str, dict[str, Any]]
"""One trial's (sign-adjusted score, status, readings: the record fields of
:func:`benchmarks.tuning_guard.trial_readings`)."""


def _validation_data(
    suite: Suite, target: str, rep: int, n_validation: int
) -> tuple[PreparedTarget, torch.Tensor, float]:
    """(prepared data, validation split (n_validation, d), its Sinkhorn scale) of one
    (target, rep): what every tuning score of that repetition reads."""
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
    return data, val, relative_eps(val, data.target.metric_eps_fraction)


def _validation_context(
    suite: Suite,
    target: str,
    rep: int,
    particles: torch.Tensor,
    data: PreparedTarget,
    val: torch.Tensor,
    scale: float,
) -> MetricContext:
    """The metric context of a tuning score: ``particles`` (n, d) against the validation
    split, with the repetition's metric seed (the same for every setting of the rep)."""
    return MetricContext(
        particles=particles,
        reference=val,
        train=data.train,
        scale=scale,
        seed=derive_seed(suite.suite_seed, "tune-metric", target, rep),
        target=data.target,
    )


def start_scores(suite: Suite, target: str, rep: int, n_validation: int) -> dict[str, float]:
    """The sign-adjusted headline score (lower is better) of every init's start cloud x0 and
    of the ``exact`` row (fresh i.i.d. target samples) of (target, rep) against the
    validation split, read as a trial's are: what a setting is compared with when the guard
    asks whether its runs ended further from the target than they started
    (:func:`benchmarks.tuning_guard.start_ceiling`). +inf where the metric fails."""
    data, val, scale = _validation_data(suite, target, rep, n_validation)
    metric = get_metric(suite.headline_metric)
    sign = 1.0 if metric.lower_is_better else -1.0
    clouds = {**{i: data.x0[i] for i in suite.inits}, EXACT_ROW: data.exact}
    out: dict[str, float] = {}
    for name, cloud in clouds.items():
        ctx = _validation_context(suite, target, rep, cloud.to(torch.float64), data, val, scale)
        try:
            value = float(metric(ctx).value)
        except Exception:
            value = math.nan
        out[name] = sign * value if math.isfinite(value) else math.inf
    return out


def score_setting(
    suite: Suite, sampler: str, target: str, rep: int, params: dict[str, Any], n_validation: int
) -> dict[str, Outcome]:
    """Fit ``sampler`` with ``params`` on the training split of (target, rep), run it from
    each init's x0 and score against the validation split: init -> (score, status,
    readings), the readings being the run's own flags and the values of the suite's flag
    metrics, read with the validation split as the held-out sample
    (:func:`benchmarks.tuning_guard.trial_readings`)."""
    data, val, scale = _validation_data(suite, target, rep, n_validation)
    metric = get_metric(suite.headline_metric)
    sign = 1.0 if metric.lower_is_better else -1.0
    guards = flag_metrics(suite.metrics, data.target)
    ran = run_inits(sampler, suite.inits)
    out: dict[str, Outcome] = {}
    try:
        s = sampler_class(sampler)(**{**_params(suite, sampler), **params})
        s.fit(data.train, data.target)
    except Exception as exc:
        failed = f"fit failed: {type(exc).__name__}: {exc}"
        return {i: (math.inf, failed, no_readings(guards)) for i in suite.inits}
    for init in ran:
        try:
            res = s.run(
                data.x0[init],
                suite.n_steps,
                seed=derive_seed(suite.suite_seed, target, sampler, rep),
            )
            x = res.particles.to(torch.float64)
            if res.diverged or not bool(torch.isfinite(x).all()):
                out[init] = (math.inf, "diverged", no_readings(guards))
                continue
            ctx = _validation_context(suite, target, rep, x, data, val, scale)
            value = float(metric(ctx).value)
            score = sign * value if math.isfinite(value) else math.inf
            out[init] = (score, "ok", trial_readings(res, ctx, guards))
        except Exception as exc:
            failed = f"failed: {type(exc).__name__}: {exc}"
            out[init] = (math.inf, failed, no_readings(guards))
    for init in suite.inits:
        out.setdefault(init, out[ran[0]])
    return out


TrialUnit = tuple[str, str, int, dict[str, Any]]
"""(sampler, target, rep, overrides): one fit scored from every init of the suite."""


def _scored_units(
    suite: Suite, units: list[TrialUnit], n_validation: int, jobs: int, threads: int
) -> Iterator[tuple[TrialUnit, dict[str, Outcome]]]:
    """Scores of ``units`` as they complete, each computed with ``threads`` torch and BLAS
    threads like the runner's units: serially in order, or in ``jobs`` local processes
    (the runner's backend) in completion order."""
    from benchmarks.execution.parallel import local_unordered, with_threads

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
    evaluated_reps: tuple[int, ...] = (),
    retune: tuple[str, ...] = (),
    continued: bool = False,
) -> dict[str, Any]:
    """Tune every sampler of ``samplers`` on ``suite`` (see the module docstring); write and
    return the ``tuned.json`` content. Trials already in ``tuning_trials.jsonl`` are reused;
    the missing ones run serially or in ``jobs`` processes, with ``threads`` torch/BLAS
    threads each either way (so the scores do not depend on ``jobs``). The file records
    ``command`` (the command line), the wall time, the load average at the end, jobs and
    threads.

    ``retune``: samplers whose code changed since ``<out_dir>/tuned.json`` was made. That
    file's trials of the *other* samplers are reused (their fits are not run again) and
    every trial of these samplers made at another commit is run again, with the same
    budget, settings and repetitions; the file keeps its original ``command`` and
    ``commit`` and lists this run under ``retuned`` (see :func:`retune_base`).
    ``continued``: the same with no sampler retuned: every trial of that file is reused and
    only what this code's tuning needs beyond them runs (the guard's readings of trials made
    before the guard, where a choice reaches them: :mod:`benchmarks.tuning_guard`)."""
    started = time.perf_counter()
    commit = environment("cpu")["commit"]
    n_val = n_validation or suite.n_reference
    previous = (
        retune_base(out_dir / TUNED_FILE, suite, budget, retune, n_val, more_seeds=continued)
        if retune or continued
        else None
    )
    if previous is not None:  # the samplers of the file it continues, and those retuned
        samplers = [s for s in samplers if s in previous["chosen"] or s in retune]
    out_dir.mkdir(parents=True, exist_ok=True)
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
    if previous is not None:  # the kept samplers' trials, as the previous tuning scored them
        for rec in previous["trials"]:
            if rec["sampler"] not in retune:
                _keep(done, rec)
    if trials_path.exists():
        for line in trials_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec["sampler"] in retune and rec.get("commit") != commit:
                    continue  # made by the code being retuned: run again
                _keep(done, rec)
    overlap = sorted(set(suite.seeds) & set(evaluated_reps))
    if overlap:
        raise ValueError(
            f"tuning repetitions {overlap} are evaluated by the suite's leaderboard; tune on "
            f"repetitions it never evaluates (default {list(TUNING_REPS)})"
        )
    runnable = []
    for sampler in samplers:
        unmet = sampler_class(sampler).unmet_budget(_n_train(suite), suite.n_particles)
        if unmet:
            log(f"tune: {sampler} not tuned (needs {', '.join(unmet)})")
        else:
            runnable.append(sampler)
    plan = {
        (sampler, target): settings_for(suite, sampler, target, budget)
        for sampler in runnable
        for target in suite.targets
    }
    spaces = {
        (sampler, target): dict(
            sampler_class(sampler).tuning_space(get_target(target), _params(suite, sampler))
        )
        for sampler, target in plan
    }
    todo: list[TrialUnit] = [
        (sampler, target, rep, params)
        for (sampler, target), settings in plan.items()
        for params in settings
        for rep in suite.seeds
        if not all(trial_key(sampler, target, i, rep, params) in done for i in suite.inits)
    ]
    log(f"tuning {suite.name}: {len(done)} trials reused")

    starts = {
        target: [start_scores(suite, target, rep, n_val) for rep in suite.seeds]
        for target in suite.targets
    }
    ledger = GuardLedger(
        {
            target: guard_rules(flag_metrics(suite.metrics, get_target(target)))
            for target in suite.targets
        },
        start_scores={
            target: {name: [s[name] for s in per_rep] for name in per_rep[0]}
            for target, per_rep in starts.items()
        },
    )

    fits_run = [0]

    def run_trials(units: list[TrialUnit], label: str, rnd: int | None) -> None:
        """Run ``units`` and record their trials (``rnd`` None: trials read again for the
        guard's readings, which keep their round and count a score that moved)."""
        log(f"tuning {suite.name}: {len(units)} {label} fits to run, jobs={jobs}")
        fits_run[0] += len(units)
        with trials_path.open("a", encoding="utf-8") as fh:
            for n, (unit, res) in enumerate(_scored_units(suite, units, n_val, jobs, threads), 1):
                sampler, target, rep, params = unit
                for init in suite.inits:
                    score, status, readings = res[init]
                    key = trial_key(sampler, target, init, rep, params)
                    old = done.get(key)
                    before = float(old["score"]) if old is not None else math.nan
                    if rnd is None and old is not None and ledger.reread(before, score):
                        log(f"guard: {sampler} {target}/{init} rep {rep} {params}: score "
                            f"{before:.6g} read again as {score:.6g}")  # fmt: skip
                    rec = {
                        "key": key,
                        "sampler": sampler,
                        "target": target,
                        "init": init,
                        "rep": rep,
                        "params": params,
                        "score": score,
                        "status": status,
                        **readings,
                        "round": old.get("round", 0) if rnd is None and old else rnd,
                        "commit": commit,
                    }
                    done[key] = rec
                    fh.write(json.dumps(rec, default=str) + "\n")
                fh.flush()
                log(f"[{n}/{len(units)}] {sampler} {target} rep {rep} {params}")

    def mean_score(sampler: str, target: str, init: str, params: dict[str, Any]) -> float:
        recs = [done[trial_key(sampler, target, init, r, params)] for r in suite.seeds]
        return float(np.mean([r["score"] for r in recs]))

    def guarded(sampler: str, target: str, init: str) -> GuardedChoice:
        """The best unguarded setting (``benchmarks.tuning_guard``; the default wins ties)."""
        settings = plan[(sampler, target)]
        means = [mean_score(sampler, target, init, p) for p in settings]
        return guarded_choice(
            settings,
            means,
            lambda p: [done[trial_key(sampler, target, init, r, p)] for r in suite.seeds],
            ledger.rules[target],
            ledger.ceiling(target, init),
        )

    def read_guard() -> None:
        """Run again, for the guard's readings, the trials made before those readings existed
        that a choice reaches; until every choice can be made."""
        while True:
            units: dict[str, TrialUnit] = {}
            for sampler, target in plan:
                for init in suite.inits:
                    for p in guarded(sampler, target, init).unread:
                        for r in suite.seeds:
                            unit = (sampler, target, r, p)
                            units.setdefault(json.dumps(unit, sort_keys=True, default=str), unit)
            if not units:
                return
            run_trials(list(units.values()), "guard-reading", None)

    def choose(sampler: str, target: str, init: str) -> dict[str, Any]:
        made = guarded(sampler, target, init)
        assert made.setting is not None, "read_guard() runs before every choice"
        return made.setting

    if todo:
        run_trials(todo, "equal-budget", 0)
    chosen: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    edges: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
    for rnd in range(MAX_WIDEN_ROUNDS + 1):
        read_guard()
        new_units: list[TrialUnit] = []
        for (sampler, target), settings in plan.items():
            cls = sampler_class(sampler)
            bests = {init: choose(sampler, target, init) for init in suite.inits}
            chosen.setdefault(sampler, {})[target] = dict(bests)
            added, states = widening_round(
                spaces[(sampler, target)], settings, bests, cls.defaults, cls.search_limits,
                last=rnd == MAX_WIDEN_ROUNDS,
            )  # fmt: skip
            edges.setdefault(sampler, {})[target] = states
            new_units += [(sampler, target, rep, p) for p in added for rep in suite.seeds]
        todo = [
            u
            for u in new_units
            if not all(trial_key(u[0], u[1], i, u[2], u[3]) in done for i in suite.inits)
        ]
        if not new_units:
            break
        if todo:
            run_trials(todo, f"widening round {rnd + 1}", rnd + 1)
    warning = ledger.warning()
    if warning:
        log(warning)
    trials: list[dict[str, Any]] = []
    coverage: dict[str, dict[str, dict[str, Any]]] = {}
    for (sampler, target), settings in plan.items():
        for init in suite.inits:
            for params in settings:
                trials.extend(
                    done[trial_key(sampler, target, init, r, params)] for r in suite.seeds
                )
            best = chosen[sampler][target][init]
            note = ledger.note(sampler, target, init, guarded(sampler, target, init))
            log(
                f"tune {sampler} {target}/{init}: {best} "
                f"(score {mean_score(sampler, target, init, best):.4g}, default "
                f"{mean_score(sampler, target, init, {}):.4g}, {len(settings)} settings{note})"
            )
        coverage.setdefault(sampler, {})[target] = {
            "settings_tried": len(settings),
            "space_size": space_size(spaces[(sampler, target)]),
            "space": {k: list(v) for k, v in sorted(spaces[(sampler, target)].items())},
        }
    result = {
        "suite": suite.name,
        "metric": suite.headline_metric,
        "budget": budget,
        "n_validation": n_val,
        "validation_sizes": val_sizes,
        "skipped_targets": skipped,
        "seeds": list(suite.seeds),
        "evaluated_reps": list(evaluated_reps),
        "max_widen_rounds": MAX_WIDEN_ROUNDS,
        "inits": list(suite.inits),
        "commit": commit,
        "command": command,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average": list(os.getloadavg()),
        "jobs": jobs,
        "threads": threads,
        "note": "scores are sign-adjusted (lower is better) means over seeds on the "
        "validation split; settings are overrides of each sampler's defaults",
        "chosen": chosen,
        "guard": ledger.section(previous.get("guard") if previous else None),
        "edges": edges,
        "coverage": coverage,
        "trials": [{k: v for k, v in t.items() if k != "key"} for t in trials],
    }
    if previous is not None:
        this = {k: result[k] for k in ("command", "commit", "wall_seconds", "load_average")}
        for k in ("command", "commit", "wall_seconds", "load_average", "jobs", "threads"):
            result[k] = previous.get(k)
        added = sorted(set(suite.seeds) - set(previous.get("seeds") or []))
        entry = {"samplers": list(retune), **this, **({"seeds_added": added} if added else {})}
        result["retuned"] = [*previous.get("retuned", []), entry]
        if not (fits_run[0] or retune or added):
            this_run = json.loads(json.dumps(result, default=str))
            if all(
                this_run.get(k) == previous.get(k) for k in {*this_run, *previous} - {"retuned"}
            ):
                # idempotent: a continuation that ran nothing and chose the same
                log(f"tuning {suite.name}: nothing to run; {TUNED_FILE} left as it was")
                return previous
    atomic_write_text(out_dir / TUNED_FILE, json.dumps(result, indent=1, default=str) + "\n")
    return result


def _keep(done: dict[str, dict[str, Any]], rec: dict[str, Any]) -> None:
    """Record a reused trial under the key of its :func:`~benchmarks.search_widening.canonical`
    setting. A trial recorded with unrounded widened values (0.012500000000000004, before
    widening rounded them) keeps those under ``params_as_run``; where a trial made with the
    rounded value exists too, that one is kept."""
    params = {k: canonical(v) for k, v in rec["params"].items()}
    key = trial_key(rec["sampler"], rec["target"], rec["init"], rec["rep"], params)
    new = {**rec, "params": params, "key": key}
    if params != rec["params"]:
        new.setdefault("params_as_run", rec["params"])
        if key in done and "params_as_run" not in done[key]:
            return
    done[key] = new


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


class RetuneMismatch(ValueError):
    """A retune whose ``tuned.json`` is missing or describes another tuning."""


def retune_base(
    path: Path,
    suite: Suite,
    budget: int,
    retune: tuple[str, ...],
    n_validation: int | None = None,
    more_seeds: bool = False,
) -> dict[str, Any]:
    """The ``tuned.json`` at ``path`` that a ``retune`` of some samplers continues, checked to
    describe the same tuning (repetitions, inits, budget, targets, validation size): its
    other samplers' trials are reused as they are, so anything else would mix two different
    tunings. ``more_seeds`` (``tune --continue``): the repetitions may also be a superset
    of the file's; every setting is then scored on the added ones too."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RetuneMismatch(f"a retune continues {path}, which cannot be read ({exc})") from None
    theirs = {
        "seeds": previous.get("seeds"),
        "inits": previous.get("inits"),
        "budget": previous.get("budget"),
        "targets": sorted({t for per in previous.get("chosen", {}).values() for t in per}),
        "validation size": previous.get("n_validation"),
    }
    ours = {
        "seeds": list(suite.seeds),
        "inits": list(suite.inits),
        "budget": budget,
        "targets": sorted(set(suite.targets) - set(previous.get("skipped_targets", {}))),
        "validation size": n_validation or suite.n_reference,
    }
    differ = [k for k in ours if ours[k] != theirs[k]]
    if more_seeds and set(theirs["seeds"] or []) <= set(ours["seeds"]):
        differ = [k for k in differ if k != "seeds"]
    if differ:
        raise RetuneMismatch(
            f"{path} was tuned with other {', '.join(differ)} "
            f"({', '.join(f'{k} {theirs[k]}' for k in differ)}); a retune keeps them: pass "
            "the same options, or tune every sampler afresh"
        )
    unknown = sorted(set(retune) - set(previous.get("chosen", {})))
    if unknown:
        raise RetuneMismatch(f"{path} has no tuned settings for {unknown} to retune")
    return previous


def load_tuned(path: Path) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """The chosen settings of a ``tuned.json``: sampler -> target -> init -> overrides."""
    return json.loads(path.read_text(encoding="utf-8"))["chosen"]
