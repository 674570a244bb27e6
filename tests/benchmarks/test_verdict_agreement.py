"""A leaderboard's verdict read twice (committed rows, and with re-run rows in their place):
what moves is named, what does not move is not (``benchmarks.verdict.agreement``), and the
move of a value is measured in the seed spread (``benchmarks.execution.verify.seed_noise``).

The rows are made by hand so the verdicts are known without the code: over 5 seeds, a
sampler 10 seed-sd above exact in every seed is worse (paired t test, p ~ 1e-7); one that
sits on exact's values up to a sign-alternating 1 % is indistinguishable; a pair of
samplers where one wins every (target, seed) unit by far is 'a better' (Wilcoxon over 10
units, p = 0.002, one pair so Holm changes nothing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from benchmarks.execution.verify import seed_noise
from benchmarks.verdict.agreement import compare_verdicts

SEEDS = range(5)
EXACT = {
    "t1": [0.10, 0.12, 0.09, 0.11, 0.13],
    "t2": [0.20, 0.18, 0.22, 0.21, 0.19],
}


def _row(sampler: str, target: str, rep: int, value: float, status: str = "ok") -> dict:
    key = {"sampler": sampler, "target": target, "init": "gaussian", "rep": rep, "params": {}}
    return {
        "config_key": json.dumps(key, sort_keys=True),
        "metric": "sinkhorn",
        "sampler": sampler,
        "target": target,
        "init": "gaussian",
        "rep": rep,
        "params": "{}",
        "value": value,
        "status": status,
        "converged": status == "ok",
        "message": "",
        "fit_seconds": 0.0,
        "sample_seconds": 0.0,
        "sampler_info": "{}",
        "metric_info": "{}",
    }


def _rows(b_offset: float) -> list[dict]:
    """exact; 'near' on exact up to +-1 %; 'far' at exact + b_offset (+-1 %)."""
    out = []
    for target, values in EXACT.items():
        for rep in SEEDS:
            e = values[rep]
            wiggle = 0.01 * (-1) ** rep
            out += [
                _row("exact", target, rep, e),
                _row("near", target, rep, e * (1 + wiggle)),
                _row("far", target, rep, e + b_offset + e * wiggle / 2),
            ]
    return out


@pytest.fixture
def folder(tmp_path):
    suite = {"name": "toy", "metrics": ["sinkhorn"], "targets": ["t1", "t2"]}
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    return tmp_path


def test_identical_rows_read_the_same(folder):
    rows = _rows(b_offset=0.5)
    found = compare_verdicts(folder, rows, [dict(r) for r in rows])
    assert found.same and found.metric == "sinkhorn"
    assert found.cells == 4  # near and far in two columns (exact is the yardstick)
    assert found.pairs == 1 and found.rank_shift == 0.0
    assert found.order[0] == found.order[1] == ("near", "far")


def test_a_cell_whose_call_flips_is_named_with_both_readings(folder):
    committed = _rows(b_offset=0.5)  # far is worse than exact in both columns
    rerun = [r for r in _rows(b_offset=0.0) if r["sampler"] == "far"]  # far now on exact
    found = compare_verdicts(folder, committed, rerun)
    assert not found.same
    assert found.changed == [
        ("far", "t1", "worse", "≈ exact"),
        ("far", "t2", "worse", "≈ exact"),
    ]
    # near won all 10 (target, seed) units against far; now they split
    assert found.pairs_changed == [("far", "near", "near better", "no difference")]
    # the p-values behind the moved calls, against scipy's paired t test on the same seeds
    far = {
        b: {(r["target"], r["rep"]): r["value"] for r in rows if r["sampler"] == "far"}
        for b, rows in (("before", committed), ("after", rerun))
    }
    for (_sampler, column), (p_before, p_after) in found.cell_p.items():
        exact = [EXACT[column][rep] for rep in SEEDS]
        for p, values in ((p_before, far["before"]), (p_after, far["after"])):
            ref = stats.ttest_rel([values[(column, rep)] for rep in SEEDS], exact).pvalue
            assert p == pytest.approx(ref, rel=1e-9)
        assert p_before < 0.05 <= p_after
    (p_holm_before, p_holm_after) = found.pair_p[("far", "near")]
    # Wilcoxon over 10 units all one way: exact two-sided p = 2 / 2**10; one pair, no Holm
    assert p_holm_before == pytest.approx(2 / 2**10) and p_holm_after > 0.05
    # flag counts are apart from the verdicts (no flag metric here)
    assert found.flags_changed == []


def test_a_re_run_of_some_seeds_only_replaces_those_rows(folder):
    committed = _rows(b_offset=0.5)
    rerun = [r for r in _rows(b_offset=0.0) if r["sampler"] == "far" and r["rep"] == 0]
    found = compare_verdicts(folder, committed, rerun)
    # one seed of five on exact: far is still worse in the other four by 25 seed sd and
    # the paired t test over five differences keeps calling it worse
    assert found.changed == []
    assert found.pairs_changed == []


def test_seed_noise_is_the_move_over_the_seed_spread_of_the_configuration():
    committed = [_row("ula", "t1", rep, v) for rep, v in enumerate([1.0, 2.0, 3.0])]
    committed.append(_row("ula", "t1", 3, float("nan"), status="diverged"))
    rerun = [_row("ula", "t1", 0, 1.5), _row("ula", "t1", 1, 2.0), _row("ula", "t1", 3, 9.0)]
    # sd of (1, 2, 3) with ddof 1 is 1: the move of seed 0 is 0.5 sd; the diverged
    # committed run (NaN) has no value to move from and is left out
    assert seed_noise(committed, rerun) == {("ula", "sinkhorn"): pytest.approx(0.5)}
    assert seed_noise(committed, committed) == {("ula", "sinkhorn"): 0.0}
    # a configuration with one finite value has no spread: left out, never divided by 0
    lone = [_row("kde", "t1", 0, 1.0)]
    assert seed_noise(lone, [_row("kde", "t1", 0, 2.0)]) == {}
    assert np.isfinite(list(seed_noise(committed, rerun).values())).all()


def test_a_flag_count_that_moves_is_named_apart_from_the_verdict(folder):
    # train_proximity flags a run at z < -3 ('copying k/n'); a cell reads copying only
    # when a strict majority of its runs is flagged
    def with_z(rows: list[dict], zs: list[float]) -> list[dict]:
        extra = []
        for r in rows:
            if r["sampler"] == "near" and r["target"] == "t1":
                z = dict(r, metric="train_proximity", value=zs[r["rep"]])
                extra.append(z)
        return rows + extra

    base = _rows(b_offset=0.5)
    committed = with_z(base, [0.1, -0.2, 0.3, 0.0, -0.5])
    one = with_z(base, [-3.5, -0.2, 0.3, 0.0, -0.5])  # one run of five across the threshold
    found = compare_verdicts(folder, committed, one)
    assert found.flags_changed == [("near", "t1", "", "copying 1/5")]
    assert found.same  # one flagged run of five is no copying verdict
    most = with_z(base, [-3.5, -4.0, -3.2, 0.0, -0.5])  # three of five: the cell copies
    found = compare_verdicts(folder, committed, most)
    assert found.flags_changed == [("near", "t1", "", "copying 3/5")]
    assert found.changed == [("near", "t1", "≈ exact", "copying")] and not found.same
