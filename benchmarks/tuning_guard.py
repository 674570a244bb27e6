"""The tuning guard: tuning does not choose a setting whose runs are flagged.

The validation score alone rewards settings that quantise or copy the training split (a
cloud that sits on the training points is near any fresh sample) and settings whose step
safeguard decided the run. So every tuning trial also records its **flags**, read the way
the leaderboards read a run's (:mod:`benchmarks.verdict.leaderboard`):

- the flags the run raises itself (``SampleResult.flags``, e.g. the transport's step cap
  binding on more than 1 % of particle-steps), and
- the label of every *flag metric* the suite scores on the target (a metric that declares
  ``flag_below``, e.g. ``train_proximity``'s copying test), computed with the validation
  split as the held-out sample, so the guard never reads the test reference either.

A setting is **guarded** when a strict majority of its tuning repetitions is flagged (the
leaderboard's copying rule). The choice per (sampler, target, init) is the best-scoring
setting that is not guarded (ties keep the earlier setting, the default first); only when
every tried setting is guarded does the best-scoring one stand, recorded as a fallback.

The choice needs the flags only of the settings that score at least as well as it, so
trials recorded before the guard existed (no ``flags`` field) are run again only where the
choice reaches them: :func:`guarded_choice` names them, and the tuner runs them (the same
seeds give the same score; the rerun adds the flags).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from metrics.base import Metric, MetricContext, metrics_for
from samplers.base import SampleResult

FLAGS_FIELD = "flags"
"""Trial-record field: the flags of the trial's run (absent in trials made before the guard)."""


def flag_metrics(metric_names: Sequence[str], target: Any) -> list[Metric]:
    """The metrics among those a suite listing ``metric_names`` scores on ``target``
    (:func:`metrics.base.metrics_for`) that declare a flag threshold."""
    return [m for m in metrics_for(tuple(metric_names), target) if m.flag_below is not None]


def trial_flags(result: SampleResult, ctx: MetricContext, metrics: Sequence[Metric]) -> list[str]:
    """The run's own flags, then the label of every metric of ``metrics`` whose value on
    ``ctx`` crosses its threshold (a metric that fails to score flags nothing)."""
    flags = [str(f) for f in result.flags]
    for metric in metrics:
        try:
            value = float(metric(ctx).value)
        except Exception:
            continue
        if math.isfinite(value) and metric.flags(value):
            flags.append(metric.flag_label or f"{metric.name} flag")
    return list(dict.fromkeys(flags))


def is_guarded(records: Sequence[dict[str, Any]]) -> bool:
    """True when a strict majority of a setting's trial ``records`` (one per repetition)
    carries a flag."""
    flagged = sum(bool(r.get(FLAGS_FIELD)) for r in records)
    return 2 * flagged > len(records)


@dataclass
class GuardedChoice:
    """The outcome of :func:`guarded_choice`.

    setting: the chosen setting, or None while ``unread`` is not empty; unread: settings
    whose flags must be read before the choice can be made; passed_over: the guarded
    settings that scored better than the choice; fallback: True when every setting is
    guarded and the best-scoring one stands."""

    setting: dict[str, Any] | None
    unread: list[dict[str, Any]] = field(default_factory=list)
    passed_over: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False


def guarded_choice(
    settings: Sequence[dict[str, Any]],
    means: Sequence[float],
    records_of: Callable[[dict[str, Any]], list[dict[str, Any]]],
) -> GuardedChoice:
    """The best setting (lowest mean score, earlier first on ties) of ``settings`` that is not
    guarded (:func:`is_guarded` of ``records_of(setting)``); walks down the ranking and stops
    at the first setting whose records lack flags (``unread``). A setting that failed on
    every repetition (+inf) is never read: it cannot be chosen over a finite one."""
    order = sorted(range(len(settings)), key=lambda i: (means[i], i))
    passed: list[dict[str, Any]] = []
    for i in order:
        setting = settings[i]
        if not math.isfinite(means[i]):
            break
        records = records_of(setting)
        if any(FLAGS_FIELD not in r for r in records):
            return GuardedChoice(None, unread=[setting], passed_over=passed)
        if not is_guarded(records):
            return GuardedChoice(setting, passed_over=passed)
        passed.append(setting)
    best = settings[order[0]]
    if passed and best in passed:  # every finite setting is guarded: the best one stands
        return GuardedChoice(best, passed_over=passed[1:], fallback=True)
    return GuardedChoice(best, passed_over=passed)
