"""The guard's start ceiling (benchmarks/tuning_guard.py): while some setting ends its runs
no further from the target than they started, a setting whose runs end further is never
chosen, not even as an escape from the copying guard; its noise floor (5 x an exact sample's
score) keeps a setting as good as exact from being read as worse than an exact-like start."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import benchmarks.tuning as tuning
from benchmarks.execution.runner import EXACT
from benchmarks.suites import get_suite
from benchmarks.tuning import start_scores, tune_suite
from benchmarks.tuning_guard import START_CEILING_EXACT_FACTOR, start_ceiling
from benchmarks.verdict.leaderboard import coverage_section
from metrics.base import get_metric
from tests.helpers.tuning_toys import TARGET, guard_suite, toy_registry

SUITE = guard_suite("_test_ceiling")

quiet = {"log": lambda m: None}


@pytest.fixture
def toy():
    with toy_registry():
        yield


def _mean_score(result, sampler, params):
    return float(
        np.mean(
            [
                t["score"]
                for t in result["trials"]
                if t["sampler"] == sampler and t["params"] == params
            ]
        )
    )


def test_start_ceiling_is_the_start_or_the_exact_floor():
    assert start_ceiling(0.3, 0.05) == 0.3  # a far start: the start itself
    assert start_ceiling(0.02, 0.04) == pytest.approx(START_CEILING_EXACT_FACTOR * 0.04)
    assert start_ceiling(math.inf, 0.04) == math.inf  # nothing to compare with: no ceiling
    assert start_ceiling(0.3, math.nan) == math.inf


def test_start_scores_are_what_a_run_that_stays_at_its_start_scores(toy, tmp_path):
    """Two independent paths: the trial of a sampler that returns x0 unchanged (fit, run and
    score as every trial) and start_scores' direct reading of x0; and the exact row's score
    recomputed from the prepared data with the metric called by hand."""
    result = tune_suite(SUITE, ["_test_stay"], tmp_path, budget=2, **quiet)
    recorded = result["guard"]["start_scores"][TARGET]
    assert set(recorded) == {"gaussian", EXACT}  # every init, and the runner's exact row
    stay = [t for t in result["trials"] if t["params"] == {}]
    assert [t["score"] for t in sorted(stay, key=lambda t: t["rep"])] == pytest.approx(
        recorded["gaussian"], rel=1e-12
    )
    data, val, scale = tuning._validation_data(SUITE, TARGET, 1, SUITE.n_reference)
    ctx = tuning._validation_context(SUITE, TARGET, 1, data.exact, data, val, scale)
    assert recorded["exact"][1] == pytest.approx(float(get_metric("sinkhorn")(ctx).value))
    want = start_ceiling(float(np.mean(recorded["gaussian"])), float(np.mean(recorded["exact"])))
    assert result["guard"]["start_ceilings"][TARGET]["gaussian"] == pytest.approx(want)


def test_a_setting_worse_than_its_start_is_no_escape_from_the_copying_guard(toy, tmp_path):
    """ShiftedTrain on a Gaussian target whose gaussian start is an exact draw: shift 0 copies
    the training points; every other shift (>= 1 sd) ends far above 5 x the exact row's
    score, i.e. worse than not moving. Without the ceiling the guard escaped to the best of
    those (shift -1: tests/benchmarks/test_tuning_guard.py); with it, no setting clears the
    guard below the ceiling, the copies stand, and the leaderboard reads them as copying."""
    result = tune_suite(SUITE, ["_test_shifted"], tmp_path, budget=7, **quiet)
    ceiling = result["guard"]["start_ceilings"][TARGET]["gaussian"]
    shifts = (3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0)
    means = {
        s: _mean_score(result, "_test_shifted", {} if s == 3.0 else {"shift": s}) for s in shifts
    }
    assert means[0.0] <= ceiling  # the premise: only the copies beat the ceiling
    assert all(means[s] > ceiling for s in shifts if s != 0.0)
    assert result["chosen"]["_test_shifted"][TARGET]["gaussian"] == {"shift": 0.0}
    assert ["_test_shifted", TARGET, "gaussian"] in result["guard"]["above_start"]
    assert ["_test_shifted", TARGET, "gaussian"] in result["guard"]["fallbacks"]
    # the leaderboard's tuning section states the ceiling and counts the choice
    section = "\n".join(coverage_section(tmp_path))
    assert "above the start ceiling" in section and "at least 5 x the exact row's" in section
    header, _, row = [ln for ln in section.splitlines() if ln.startswith("|")][:3]
    cells = dict(zip(header.split("|"), row.split("|"), strict=True))
    assert cells[" guard: above start ceiling excluded "].strip() == "1"


def test_where_every_setting_is_worse_than_its_start_the_copying_guard_chooses_as_before(
    toy, tmp_path
):
    """A far start for every setting above the ceiling is the no-ceiling rule: with the
    ceiling set below every score (start and exact scores 0), the choice is the one the
    guard makes without a ceiling (the best unflagged shift)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tuning, "start_scores", lambda s, t, r, n: {"gaussian": 0.0, "exact": 0.0})
        low = tune_suite(SUITE, ["_test_shifted"], tmp_path / "low", budget=7, **quiet)
        mp.setattr(tuning, "start_scores", lambda s, t, r, n: {"gaussian": math.inf, "exact": 0.0})
        none = tune_suite(SUITE, ["_test_shifted"], tmp_path / "none", budget=7, **quiet)
    assert low["chosen"] == none["chosen"]
    assert none["chosen"]["_test_shifted"][TARGET]["gaussian"] != {"shift": 0.0}
    assert low["guard"]["above_start"] == []


#: targets whose exact score is noisiest relative to its mean at the suites' sizes
#: (300 particles against 1,000 validation points; sd per repetition as a share of the
#: mean, measured): the circle (0.8), unbalanced2 (0.5-0.85, a heavy right tail) and
#: uniform_square (0.4-0.6), where the support start is itself an exact draw
NOISY = (("manifolds", "circle"), ("mixtures", "unbalanced2"), ("bounded", "uniform_square"))


@pytest.mark.parametrize(("suite_name", "target"), NOISY)
def test_an_exact_sampler_from_an_exact_start_is_rarely_above_the_ceiling(suite_name, target):
    """The level of the floor, by simulation: a setting whose runs are fresh exact samples,
    started from fresh exact samples (the ``support`` start on a uniform target), with the
    exact row a third exact sample, on 3 tuning repetitions (each its own validation split).
    The chance that the setting's mean is above max(start mean, 5 x exact mean) must stay
    below 1 % (the floor's stated level: START_CEILING_EXACT_FACTOR's docstring). Measured
    (100,000 draws) 0.5 % on the circle and 0.16 % on unbalanced2; a factor of 3 gives
    3.7 % and 2.9 % there, so this test fails for it."""
    torch.set_num_threads(1)
    suite = get_suite(suite_name)
    metric = get_metric(suite.headline_metric)
    per_rep = 30
    pools = []
    for rep in (1000, 1001, 1002):
        data, val, scale = tuning._validation_data(suite, target, rep, suite.n_reference)
        scores = []
        for k in range(per_rep):
            cloud = data.target.sample(suite.n_particles, seed=50_000 + k)
            ctx = tuning._validation_context(suite, target, rep, cloud, data, val, scale)
            scores.append(float(metric(ctx).value))
        pools.append(np.asarray(scores))
    rng = np.random.default_rng(0)
    n_sim = 100_000
    # per repetition, three distinct exact clouds: the setting's, the start's, the exact row's
    picks = [np.argsort(rng.random((n_sim, per_rep)), axis=1)[:, :3] for _ in pools]
    means = np.mean([pool[p] for pool, p in zip(pools, picks, strict=True)], axis=0)
    ceiling = np.maximum(means[:, 1], START_CEILING_EXACT_FACTOR * means[:, 2])
    rate = float(np.mean(means[:, 0] > ceiling))
    assert rate < 0.01, rate


def test_the_recorded_start_scores_of_the_committed_files_are_what_the_code_computes():
    """Spot check of one committed tuned.json against start_scores at this commit (the
    ceiling reads them; a change of splits or metric would move them)."""
    import json
    from pathlib import Path

    path = Path("results/manifolds/tuned.json")
    recorded = json.loads(path.read_text())["guard"].get("start_scores")
    if recorded is None:
        pytest.fail("results/manifolds/tuned.json records no start scores: tune --continue it")
    suite = get_suite("manifolds")
    got = start_scores(suite, "circle", 1000, json.loads(path.read_text())["n_validation"])
    for name, value in got.items():
        assert recorded["circle"][name][0] == pytest.approx(value, rel=1e-9)
