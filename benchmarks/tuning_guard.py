"""The tuning guard: tuning does not choose a setting whose runs are flagged.

The validation score alone rewards settings that quantise or copy the training split (a
cloud that sits on the training points is near any fresh sample) and settings whose step
safeguard decided the run. So every tuning trial also records its **readings**, taken the way
the leaderboards read a run's (:mod:`benchmarks.verdict.leaderboard`):

- the flags the run raises itself (``SampleResult.flags``, e.g. the transport's step cap
  binding on more than 1 % of particle-steps: ``run_flags``), and
- the value of every *flag metric* the suite scores on the target (a metric that declares
  ``flag_below``, e.g. ``train_proximity``'s copying test: ``flag_values``), computed with
  the validation split as the held-out sample, so the guard never reads the test reference.

A setting is **guarded** when a strict majority of its tuning repetitions carries a run
flag, or when a flag metric's :class:`GuardRule` reads its repetitions as flagged: the mean
value over the repetitions below the metric's ``guard_below`` where it declares one (the
copying test: mean z < -2, a margin over the leaderboard's per-seed -3 because tuning sees 3
repetitions and the leaderboard 5 seeds: ``metrics.proximity.GUARD_MEAN_Z``), else a strict
majority of repetitions below ``flag_below``. The choice per (sampler, target, init) is the
best-scoring setting that is not guarded (ties keep the earlier setting, the default first);
only when every tried setting is guarded does the best-scoring one stand, recorded as a
fallback. ``flags`` keeps every trial's labels (run flags and the metrics' own per-run
flags) for reading.

The choice needs the readings only of the settings that score at least as well as it, so
trials recorded before a reading existed are run again only where the choice reaches them:
:func:`guarded_choice` names them, and the tuner runs them (the same seeds give the same
score; the rerun adds the readings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from metrics.base import Metric, MetricContext, metrics_for
from samplers.base import SampleResult

FLAGS_FIELD = "flags"
"""Trial-record field: every flag label of the trial's run (its own, then the flag metrics')."""

RUN_FLAGS_FIELD = "run_flags"
"""Trial-record field: the flags the run raised itself (``SampleResult.flags``)."""

VALUES_FIELD = "flag_values"
"""Trial-record field: flag metric name -> its value on the validation split (None: the
metric failed to score). Trials made before the guard read values lack it."""


@dataclass(frozen=True)
class GuardRule:
    """How the guard reads one flag metric over a setting's tuning repetitions: the mean
    value below ``guard_below`` when the metric declares one, else a strict majority of the
    repetitions below ``flag_below``. A repetition whose metric failed reads nothing."""

    name: str
    flag_below: float
    guard_below: float | None = None

    def guards(self, values: Sequence[float | None]) -> bool:
        read = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not read:
            return False
        if self.guard_below is not None:
            return sum(read) / len(read) < self.guard_below
        return 2 * sum(v < self.flag_below for v in read) > len(values)


def flag_metrics(metric_names: Sequence[str], target: Any) -> list[Metric]:
    """The metrics among those a suite listing ``metric_names`` scores on ``target``
    (:func:`metrics.base.metrics_for`) that declare a flag threshold."""
    return [m for m in metrics_for(tuple(metric_names), target) if m.flag_below is not None]


def guard_rules(metrics: Sequence[Metric]) -> list[GuardRule]:
    """The :class:`GuardRule` of each flag metric of ``metrics``."""
    return [
        GuardRule(m.name, float(m.flag_below), m.guard_below)
        for m in metrics
        if m.flag_below is not None
    ]


def trial_readings(
    result: SampleResult, ctx: MetricContext, metrics: Sequence[Metric]
) -> dict[str, Any]:
    """The record fields of one trial's readings: ``run_flags`` (the run's own),
    ``flag_values`` (each flag metric of ``metrics`` on ``ctx``; None where it fails to
    score) and ``flags`` (the run's flags, then the label of every metric whose value crosses
    its per-run threshold)."""
    run_flags = [str(f) for f in result.flags]
    labels = list(run_flags)
    values: dict[str, float | None] = {}
    for metric in metrics:
        try:
            value = float(metric(ctx).value)
        except Exception:
            value = math.nan
        values[metric.name] = value if math.isfinite(value) else None
        if math.isfinite(value) and metric.flags(value):
            labels.append(metric.flag_label or f"{metric.name} flag")
    return {
        FLAGS_FIELD: list(dict.fromkeys(labels)),
        RUN_FLAGS_FIELD: run_flags,
        VALUES_FIELD: values,
    }


def no_readings(metrics: Sequence[Metric]) -> dict[str, Any]:
    """The readings of a trial whose run failed or diverged: nothing flagged, nothing read
    (its +inf score keeps it from being chosen anyway)."""
    return {FLAGS_FIELD: [], RUN_FLAGS_FIELD: [], VALUES_FIELD: {m.name: None for m in metrics}}


def is_read(record: dict[str, Any], rules: Sequence[GuardRule]) -> bool:
    """True when ``record`` carries every reading the guard needs under ``rules``."""
    values = record.get(VALUES_FIELD)
    return (
        RUN_FLAGS_FIELD in record
        and isinstance(values, dict)
        and all(rule.name in values for rule in rules)
    )


def is_guarded(records: Sequence[dict[str, Any]], rules: Sequence[GuardRule] = ()) -> bool:
    """True when a strict majority of a setting's trial ``records`` (one per repetition)
    carries a run flag, or a flag metric's rule reads the repetitions as flagged."""
    flagged = sum(bool(r.get(RUN_FLAGS_FIELD)) for r in records)
    if 2 * flagged > len(records):
        return True
    return any(
        rule.guards([(r.get(VALUES_FIELD) or {}).get(rule.name) for r in records]) for rule in rules
    )


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
    rules: Sequence[GuardRule] = (),
) -> GuardedChoice:
    """The best setting (lowest mean score, earlier first on ties) of ``settings`` that is not
    guarded (:func:`is_guarded` of ``records_of(setting)`` under ``rules``); walks down the
    ranking and stops at the first setting whose records lack a reading (``unread``). A
    setting that failed on every repetition (+inf) is never read: it cannot be chosen over a
    finite one."""
    order = sorted(range(len(settings)), key=lambda i: (means[i], i))
    passed: list[dict[str, Any]] = []
    for i in order:
        setting = settings[i]
        if not math.isfinite(means[i]):
            break
        records = records_of(setting)
        if not all(is_read(r, rules) for r in records):
            return GuardedChoice(None, unread=[setting], passed_over=passed)
        if not is_guarded(records, rules):
            return GuardedChoice(setting, passed_over=passed)
        passed.append(setting)
    best = settings[order[0]]
    if passed and best in passed:  # every finite setting is guarded: the best one stands
        return GuardedChoice(best, passed_over=passed[1:], fallback=True)
    return GuardedChoice(best, passed_over=passed)


RULE_TEXT = (
    "a setting is not chosen while an unguarded one exists when a strict majority of its "
    "tuning repetitions carries a run flag, or when a flag metric on the validation split "
    "reads its repetitions as flagged (mean below the metric's guard_below, else a strict "
    "majority below flag_below) (benchmarks.tuning_guard)"
)


@dataclass
class GuardLedger:
    """What the guard did in one tuning, for ``tuned.json``'s ``guard`` section: the rules
    per target, the guarded settings each choice passed over, the fallbacks (every setting
    guarded), and the trials run again for their readings (and how many of their scores
    moved: a same-seed rerun reproduces a score unless the code changed or a step cap makes
    the run sensitive to the last bit)."""

    rules: dict[str, list[GuardRule]]
    passed_over: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = field(default_factory=dict)
    fallbacks: list[list[str]] = field(default_factory=list)
    trials_read_again: int = 0
    scores_moved_on_reading: int = 0

    def reread(self, before: float, after: float) -> bool:
        """Count one trial read again, recorded with score ``before`` and now ``after``;
        True when the score moved."""
        self.trials_read_again += 1
        moved = not math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-12) and not (
            math.isinf(before) and math.isinf(after)
        )
        self.scores_moved_on_reading += moved
        return moved

    def note(self, sampler: str, target: str, init: str, made: GuardedChoice) -> str:
        """Record the choice ``made`` for (sampler, target, init); the log line's suffix."""
        if made.passed_over:
            cell = self.passed_over.setdefault(sampler, {}).setdefault(target, {})
            cell[init] = made.passed_over
        if made.fallback:
            self.fallbacks.append([sampler, target, init])
        if not (made.passed_over or made.fallback):
            return ""
        return f", guard passed over {len(made.passed_over)} flagged" + (
            " (all flagged: best kept)" if made.fallback else ""
        )

    def warning(self) -> str | None:
        """The line to log when scores moved on reading, else None."""
        if not self.scores_moved_on_reading:
            return None
        return (
            f"guard: {self.scores_moved_on_reading} of {self.trials_read_again} trials read "
            "again for the guard's readings scored differently from their record (listed "
            "above). Unless those are runs whose step cap makes them sensitive to the last "
            "bit, the sampler's code changed since: tune it afresh with --retune SAMPLERS"
        )

    def section(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """``tuned.json``'s ``guard`` section; the read-again counts add those of
        ``previous`` (the section of the file this tuning continues)."""
        earlier = previous or {}
        return {
            "rule": RULE_TEXT,
            "rules": {t: [asdict(r) for r in rs] for t, rs in self.rules.items()},
            "passed_over": self.passed_over,
            "fallbacks": self.fallbacks,
            "trials_read_again": self.trials_read_again + int(earlier.get("trials_read_again", 0)),
            "scores_moved_on_reading": self.scores_moved_on_reading
            + int(earlier.get("scores_moved_on_reading", 0)),
        }
