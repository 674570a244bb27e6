"""Widening past an edge (benchmarks/search_widening.py): one key per setting however its
value was reached."""

from __future__ import annotations

import json

from benchmarks.search_widening import canonical, normalised, step_past
from benchmarks.tuning import _keep, trial_key


def test_a_widened_value_is_the_decimal_it_stands_for():
    # unrounded, 0.025^2 / 0.05 is 0.012500000000000004 and 0.4^2 / 0.2 is
    # 0.8000000000000002: a setting reached by widening had another key than the same
    # value declared in a search space
    assert 0.025 * 0.025 / 0.05 != 0.0125  # the floating-point premise
    assert step_past([0.025, 0.05, 0.1], "low", is_int=False) == 0.0125
    assert step_past([0.1, 0.2, 0.4], "high", is_int=False) == 0.8
    assert step_past([1.0, 2.0, 4.0], "low", is_int=True) == 0.0  # round(0.5) is 0
    assert step_past([-1.0, 0.0, 1.0], "high", is_int=False) == 2.0  # arithmetic spacing
    assert canonical(0.8000000000000002) == 0.8 and canonical(7) == 7
    assert canonical(1e-7 / 3) == float("3.33333333333e-08")
    assert normalised({"a": 0.8000000000000002, "b": 1.0}, {"b": 1.0}) == {"a": 0.8}


def test_a_trial_recorded_unrounded_is_reused_under_the_rounded_key():
    base = {"sampler": "s", "target": "t", "init": "i", "rep": 0}
    unrounded = {**base, "params": {"x": 0.012500000000000004}, "score": 1.0}
    exact = {**base, "params": {"x": 0.0125}, "score": 2.0}
    key = trial_key("s", "t", "i", 0, {"x": 0.0125})
    for order in ([unrounded, exact], [exact, unrounded]):
        done: dict = {}
        for rec in order:
            _keep(done, json.loads(json.dumps(rec)))
        assert list(done) == [key] and done[key]["score"] == 2.0  # the trial made at 0.0125
    done = {}
    _keep(done, unrounded)
    assert done[key]["params"] == {"x": 0.0125}
    assert done[key]["params_as_run"] == {"x": 0.012500000000000004}
