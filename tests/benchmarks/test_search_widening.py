"""Widening past an edge (benchmarks/search_widening.py): one key per setting however its
value was reached."""

from __future__ import annotations

import json

from benchmarks.search_widening import canonical, normalised, step_past, widening_round
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


def test_a_widening_round_steps_past_each_edge_once():
    """The choice on the high edge of lr (0.4) gets one new setting, 0.8 (geometric
    spacing, within the limit); the choice at the default (0.2, interior) none; a step
    already tried marks the choice interior; the last round adds nothing."""
    defaults = {"lr": 0.2}
    limits = {"lr": (0.01, 0.8)}
    space = {"lr": (0.1, 0.2, 0.4), "kind": ("a", "b")}
    settings = [{}, {"lr": 0.1}, {"lr": 0.4}]
    choices = {"gaussian": {"lr": 0.4}, "cap": {}}
    added, states = widening_round(space, settings, choices, defaults, limits, last=False)
    assert added == [{"lr": 0.8}] and settings[-1] == {"lr": 0.8}
    assert space["lr"] == (0.1, 0.2, 0.4, 0.8) and space["kind"] == ("a", "b")
    assert states == {"gaussian": {"lr": "edge: widened"}, "cap": {}}
    # 0.8 is now the edge and the limit: nothing further
    added, states = widening_round(space, settings, {"gaussian": {"lr": 0.8}}, defaults, limits,
                                   last=False)  # fmt: skip
    assert added == [] and states["gaussian"]["lr"] == "edge: at limit"
    # a low-edge choice whose step (0.05) was tried already is interior after widening
    space = {"lr": (0.1, 0.2, 0.4)}
    settings = [{}, {"lr": 0.1}, {"lr": 0.05}]
    added, states = widening_round(space, settings, {"g": {"lr": 0.1}}, defaults, limits,
                                   last=False)  # fmt: skip
    assert added == [] and states["g"]["lr"] == "interior after widening"
    # in the last round an untried step is not added
    settings = [{}, {"lr": 0.1}]
    added, states = widening_round(space, settings, {"g": {"lr": 0.1}}, defaults, limits,
                                   last=True)  # fmt: skip
    assert added == [] and states["g"]["lr"] == "edge: rounds exhausted"
    assert settings == [{}, {"lr": 0.1}]
