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
best-scoring setting that is not guarded (ties keep the earlier setting, the default first).
When every tried setting is guarded (a fallback), the margin is relaxed: the best setting
that the leaderboard's own rule (a strict majority of repetitions below ``flag_below``) lets
through is chosen, so the margin never turns a choice the leaderboard would read as clean
into the strongest copier; only when that rule flags them all too does the best-scoring one
stand. ``flags`` keeps every trial's labels (run flags and the metrics' own per-run
flags) for reading.

A setting is also guarded, under both readings, when its mean score lies above the cell's
**start ceiling** (:func:`start_ceiling`): the mean score of the start clouds x0 on the
validation split, or ``START_CEILING_EXACT_FACTOR`` x the exact row's where that is higher
(a noise floor for starts that are themselves exact-like). Its runs end further from the
target than they started, so it must not stand in for guarded settings that beat their
start (MMD flow at momentum 0.99 on circle/cap never reached the data and read as clean).
Where every setting lies above the ceiling, the ceiling is not applied.

The choice needs the readings only of the settings that score at least as well as it, so
trials recorded before a reading existed are run again only where the choice reaches them:
:func:`guarded_choice` names them, and the tuner runs them (the same seeds give the same
score; the rerun adds the readings).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.suites import EXACT as EXACT_ROW
from metrics.base import Metric, MetricContext, metrics_for
from samplers.base import SampleResult

"""The key of the exact row's scores among a target's start scores (the runner's name of
the row: ``benchmarks.execution.runner.EXACT``)."""

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
    value below ``guard_below`` when the metric declares one, else (and always when
    ``lenient``: the leaderboard's own rule) a strict majority of the repetitions below
    ``flag_below``. A repetition whose metric failed reads nothing."""

    name: str
    flag_below: float
    guard_below: float | None = None

    def guards(self, values: Sequence[float | None], *, lenient: bool = False) -> bool:
        read = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not read:
            return False
        if self.guard_below is not None and not lenient:
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


def is_guarded(
    records: Sequence[dict[str, Any]], rules: Sequence[GuardRule] = (), *, lenient: bool = False
) -> bool:
    """True when a strict majority of a setting's trial ``records`` (one per repetition)
    carries a run flag, or a flag metric's rule reads the repetitions as flagged (``lenient``:
    by the leaderboard's vote, without the margin: :meth:`GuardRule.guards`)."""
    flagged = sum(bool(r.get(RUN_FLAGS_FIELD)) for r in records)
    if 2 * flagged > len(records):
        return True
    return any(
        rule.guards([(r.get(VALUES_FIELD) or {}).get(rule.name) for r in records], lenient=lenient)
        for rule in rules
    )


@dataclass
class GuardedChoice:
    """The outcome of :func:`guarded_choice`.

    setting: the chosen setting, or None while ``unread`` is not empty; unread: settings
    whose readings are needed before the choice can be made; passed_over: the guarded
    settings that scored better than the choice; fallback: True when every setting is
    guarded; lenient: True when the choice is then the best setting that the leaderboard's
    own rule (no margin) does not flag, False when it flags them all too and the
    best-scoring setting stands; above_ceiling: in a fallback, the finite settings whose mean
    score lies above the start ceiling (guarded without being read)."""

    setting: dict[str, Any] | None
    unread: list[dict[str, Any]] = field(default_factory=list)
    passed_over: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    lenient: bool = False
    above_ceiling: list[dict[str, Any]] = field(default_factory=list)


def guarded_choice(
    settings: Sequence[dict[str, Any]],
    means: Sequence[float],
    records_of: Callable[[dict[str, Any]], list[dict[str, Any]]],
    rules: Sequence[GuardRule] = (),
    ceiling: float = math.inf,
) -> GuardedChoice:
    """The best setting (lowest mean score, earlier first on ties) of ``settings`` that is not
    guarded (:func:`is_guarded` of ``records_of(setting)`` under ``rules``); walks down the
    ranking and stops at the first setting whose records lack a reading (``unread``). When
    every finite setting is guarded: the best one that the lenient reading (the leaderboard's
    own rule, without the margin) lets through, else the best-scoring one (a fallback
    either way: the margin must not turn a choice the leaderboard reads as clean into the
    strongest copier). A setting that failed on every repetition (+inf) is never read: it
    cannot be chosen over a finite one. While some setting scores at or below ``ceiling``
    (:func:`start_ceiling`), the settings above it (their runs end further from the target
    than they started) are guarded under both readings without being read, so they are never
    chosen; where every setting lies above it, the ceiling cannot tell them apart and is
    not used."""
    order = sorted(range(len(settings)), key=lambda i: (means[i], i))
    finite = [i for i in order if math.isfinite(means[i])]
    below = [i for i in finite if means[i] <= ceiling]  # a prefix of the ranking
    if not below:  # no setting beats its start: the ceiling cannot tell them apart
        below = finite
    above = [settings[i] for i in finite[len(below) :]]
    passed: list[dict[str, Any]] = []
    for i in below:
        setting = settings[i]
        records = records_of(setting)
        if not all(is_read(r, rules) for r in records):
            return GuardedChoice(None, unread=[setting], passed_over=passed)
        if not is_guarded(records, rules):
            return GuardedChoice(setting, passed_over=passed)
        passed.append(setting)
    best = settings[order[0]]
    if not finite:  # no finite setting: the first (+inf) stands
        return GuardedChoice(best)
    for k, setting in enumerate(passed):  # every setting below the ceiling is guarded
        if not is_guarded(records_of(setting), rules, lenient=True):
            return GuardedChoice(
                setting, passed_over=passed[:k], fallback=True, lenient=True, above_ceiling=above
            )
    return GuardedChoice(
        best, passed_over=[*passed, *above][1:], fallback=True, above_ceiling=above
    )


START_CEILING_EXACT_FACTOR = 5.0
"""The noise floor of the start ceiling, in multiples of an exact sample's mean validation
score: a setting whose runs score within this factor of fresh i.i.d. target samples is never
read as ending further from the target than it started. The score of an exact sample is
noisy where it is small (300 particles against 1,000 validation points, per repetition:
sd 0.8 of the mean on the circle, up to 0.85 on unbalanced2, 0.4-0.6 on uniform_square,
measured); the factor keeps the chance that a setting as good as exact, from an exact-like
start, lies above the ceiling at a mean of 3 repetitions below 1 % (simulated in
tests/benchmarks/test_tuning_guard_ceiling.py: about 0.5 % on the circle; a factor of 3
gives 3.7 % there)."""


def start_ceiling(start_mean: float, exact_mean: float) -> float:
    """The score a setting's mean must not exceed to be chosen while another clears:
    max(mean score of the start clouds x0, ``START_CEILING_EXACT_FACTOR`` x the exact row's
    mean score), both sign-adjusted means over the tuning repetitions on the validation
    split (:func:`benchmarks.tuning.start_scores`). A setting above it ends its runs further
    from the target than its start, beyond an exact sample's noise: not moving at all would
    have scored better. +inf (no ceiling) where either score is not finite."""
    if not (math.isfinite(start_mean) and math.isfinite(exact_mean)):
        return math.inf
    return max(float(start_mean), START_CEILING_EXACT_FACTOR * float(exact_mean))


RULE_TEXT = (
    "a setting is not chosen while an unguarded one exists when a strict majority of its "
    "tuning repetitions carries a run flag, or when a flag metric on the validation split "
    "reads its repetitions as flagged (mean below the metric's guard_below, else a strict "
    "majority below flag_below), or when its mean score is above its start ceiling (the "
    "start clouds' mean score on the validation split, at least "
    f"{START_CEILING_EXACT_FACTOR:g} x the exact row's: its "
    "runs end further from the target than they started; not applied where every setting "
    "is above it); when every setting is guarded, "
    "the best one the leaderboard's own rule (a strict majority below flag_below) lets "
    "through and that is not above the ceiling is chosen, else the best-scoring one "
    "(benchmarks.tuning_guard)"
)


def _mean(values: Sequence[float]) -> float:
    """Mean of ``values`` (+inf when empty or when one is not finite)."""
    vals = [float(v) for v in values]
    if not vals or not all(math.isfinite(v) for v in vals):
        return math.inf
    return sum(vals) / len(vals)


@dataclass
class GuardLedger:
    """What the guard did in one tuning, for ``tuned.json``'s ``guard`` section: the rules
    per target, the guarded settings each choice passed over, the fallbacks (every setting
    guarded, even by the leaderboard's own rule: the best-scoring one stands), the choices
    where no setting cleared the margin and the leaderboard's rule chose (``margin_relaxed``),
    and the trials run again for their readings (and how many of their scores
    moved: a same-seed rerun reproduces a score unless the code changed or a step cap makes
    the run sensitive to the last bit)."""

    rules: dict[str, list[GuardRule]]
    start_scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    passed_over: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = field(default_factory=dict)
    fallbacks: list[list[str]] = field(default_factory=list)
    margin_relaxed: list[list[str]] = field(default_factory=list)
    above_start: list[list[str]] = field(default_factory=list)
    trials_read_again: int = 0
    scores_moved_on_reading: int = 0

    @functools.cached_property
    def start_ceilings(self) -> dict[str, dict[str, float]]:
        """target -> init -> :func:`start_ceiling` of the start scores' means over the
        repetitions (computed once: the start scores do not change during a tuning)."""
        out: dict[str, dict[str, float]] = {}
        for target, scores in self.start_scores.items():
            exact = _mean(scores.get(EXACT_ROW, []))
            out[target] = {
                i: start_ceiling(_mean(v), exact) for i, v in scores.items() if i != EXACT_ROW
            }
        return out

    def ceiling(self, target: str, init: str) -> float:
        """The start ceiling of (target, init); +inf where no start scores were recorded."""
        return self.start_ceilings.get(target, {}).get(init, math.inf)

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
            (self.margin_relaxed if made.lenient else self.fallbacks).append(
                [sampler, target, init]
            )
            if made.above_ceiling:
                self.above_start.append([sampler, target, init])
        if not (made.passed_over or made.fallback):
            return ""
        why = ""
        if made.fallback:
            why = (
                " (none cleared the margin: the vote chose)"
                if made.lenient
                else " (all flagged: best kept)"
            )
            if made.above_ceiling:
                why += f"; {len(made.above_ceiling)} above the start ceiling"
        return f", guard passed over {len(made.passed_over)} flagged{why}"

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
            "start_ceiling_exact_factor": START_CEILING_EXACT_FACTOR,
            "start_scores": self.start_scores,
            "start_ceilings": self.start_ceilings,
            "passed_over": self.passed_over,
            "fallbacks": self.fallbacks,
            "margin_relaxed": self.margin_relaxed,
            "above_start": self.above_start,
            "trials_read_again": self.trials_read_again + int(earlier.get("trials_read_again", 0)),
            "scores_moved_on_reading": self.scores_moved_on_reading
            + int(earlier.get("scores_moved_on_reading", 0)),
        }
