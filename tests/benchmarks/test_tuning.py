"""Equal-budget tuning on the validation split (benchmarks/tuning.py)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
import torch

import benchmarks.tuning as tuning
import datasets.base as dbase
import samplers.base as sbase
from benchmarks.execution.data import prepare, validation_split
from benchmarks.execution.runner import execute_unit, plan
from benchmarks.suites import Suite
from benchmarks.tuning import draw_settings, tune_suite
from tests.helpers.tuning_toys import TARGET, toy_registry


@pytest.fixture
def toy():
    with toy_registry():
        yield


SUITE = Suite(
    name="_test_tune",
    targets=(TARGET,),
    n_particles=24,
    n_steps=3,
    n_train=60,
    n_reference=60,
    seeds=(0, 1),
    inits=("gaussian", "cap"),
    metrics=("sinkhorn",),
)


def test_validation_split_is_disjoint_from_train_and_reference(toy):
    data = prepare(TARGET, 0, 60, 60, 24, ("gaussian",), SUITE.suite_seed)
    val = validation_split(TARGET, 0, 60, 60, 24, 60, SUITE.suite_seed)
    rows = lambda x: {tuple(r) for r in x.tolist()}  # noqa: E731
    assert val.shape == (60, 2)
    assert not rows(val) & rows(data.train) and not rows(val) & rows(data.reference)
    # standardised like the other splits (train statistics), yet a different draw
    assert float(val.mean(0).abs().max()) < 0.6


def test_every_sampler_gets_the_same_number_of_trials(toy, tmp_path):
    names = ["ula", "svgd", "_test_shifted"]
    for n in names:
        settings = draw_settings(n, 4, seed=1)
        assert len(settings) == 4 and settings[0] == {}
        assert len({json.dumps(s, sort_keys=True) for s in settings}) == 4
    result = tune_suite(SUITE, names, tmp_path, budget=4, log=lambda m: None)
    per_sampler = Counter(t["sampler"] for t in result["trials"] if t["round"] == 0)
    # budget x targets x seeds x inits, the same for every sampler (widening rounds add
    # trials only where a choice sits on an edge: tested below)
    assert set(per_sampler.values()) == {4 * 1 * 2 * 2}
    assert (tmp_path / tuning.TUNED_FILE).exists()


def test_a_bad_default_is_found_and_replaced(toy, tmp_path):
    result = tune_suite(SUITE, ["_test_shifted"], tmp_path, budget=7, log=lambda m: None)
    for init in SUITE.inits:
        assert result["chosen"]["_test_shifted"][TARGET][init] == {"shift": 0.0}
    tuned = dataclasses.replace(SUITE, tuned=result["chosen"])
    (spec,) = [s for s in plan(tuned, ["_test_shifted"]) if s.sampler != "exact" and s.rep == 0]
    assert spec.params == {"shift": 0.0} and spec.tuning == "tuned"
    assert {r["tuning"] for r in execute_unit(spec).rows} == {"tuned"}
    (default,) = [s for s in plan(SUITE, ["_test_shifted"]) if s.sampler != "exact" and s.rep == 0]
    assert default.params == {} and default.tuning == "default"


def test_tuning_never_sees_the_test_reference(toy, tmp_path, monkeypatch):
    clean = tune_suite(SUITE, ["_test_shifted"], tmp_path / "a", budget=4, log=lambda m: None)
    real = tuning.prepare

    def poisoned(*args, **kw):
        data = real(*args, **kw)
        return dataclasses.replace(data, reference=torch.full_like(data.reference, float("nan")))

    monkeypatch.setattr(tuning, "prepare", poisoned)
    dirty = tune_suite(SUITE, ["_test_shifted"], tmp_path / "b", budget=4, log=lambda m: None)
    assert [t["score"] for t in dirty["trials"]] == [t["score"] for t in clean["trials"]]
    assert dirty["chosen"] == clean["chosen"]


def test_knobs_inert_on_a_target_are_left_out_of_its_space(toy):
    svgd = sbase.sampler_class("svgd")
    exact = dbase.get_target(TARGET)  # has an exact score: the KDE is never built
    kde_only = dbase.get_target("circle")  # no score: svgd falls back to the KDE score
    assert exact.has_score and not kde_only.has_score
    assert "kde_scale" not in svgd.tuning_space(exact)
    assert svgd.tuning_space(kde_only) == svgd.search_space
    # a suite forcing the KDE score keeps the knob even where an exact score exists
    assert "kde_scale" in svgd.tuning_space(exact, {"score": "kde"})
    # so every one of the budget's settings on the exact target differs in a live knob
    settings = tuning.settings_for(SUITE, "svgd", TARGET, 5)
    assert all(set(s) <= {"step_size"} for s in settings) and len(settings) == 5


def test_parallel_tuning_gives_the_serial_scores(tmp_path):
    # real registered target and sampler: loky workers import the registries afresh
    suite = dataclasses.replace(SUITE, targets=("circle",), inits=("cap",))
    kw = {"budget": 3, "log": lambda m: None}
    serial = tune_suite(suite, ["ula"], tmp_path / "serial", **kw)
    par = tune_suite(suite, ["ula"], tmp_path / "par", jobs=2, **kw)
    key = lambda t: json.dumps([t["rep"], t["params"]], sort_keys=True)  # noqa: E731
    s = {key(t): t["score"] for t in serial["trials"]}
    p = {key(t): t["score"] for t in par["trials"]}
    assert s == p and sum(t["round"] == 0 for t in serial["trials"]) == 3 * 2
    assert serial["chosen"] == par["chosen"]


def test_a_choice_on_an_edge_is_widened_to_the_declared_limit(toy, tmp_path):
    """_test_edge's score falls towards shift 0, below its space (8, 4, 2): the first choice,
    2, is the low edge, so the space is widened geometrically to 1, 0.5 and then clipped to
    the declared limit 0.25; the choice ends at the limit and is recorded so, with every
    added trial and the share of the widened space that was tried."""
    result = tune_suite(SUITE, ["_test_edge"], tmp_path, budget=3, log=lambda m: None)
    for init in SUITE.inits:
        assert result["chosen"]["_test_edge"][TARGET][init] == {"shift": 0.25}
        assert result["edges"]["_test_edge"][TARGET][init] == {"shift": "edge: at limit"}
    cov = result["coverage"]["_test_edge"][TARGET]
    assert cov["space"]["shift"] == [8.0, 4.0, 2.0, 1.0, 0.5, 0.25]
    assert cov["settings_tried"] == 6 and cov["space_size"] == 6
    rounds = Counter(t["round"] for t in result["trials"])
    assert rounds == {0: 3 * 2 * 2, 1: 4, 2: 4, 3: 4}  # settings x seeds x inits


def test_an_interior_choice_is_not_widened(toy, tmp_path):
    result = tune_suite(SUITE, ["_test_shifted"], tmp_path, budget=7, log=lambda m: None)
    assert result["edges"]["_test_shifted"][TARGET]["cap"] == {}
    assert {t["round"] for t in result["trials"]} == {0}


def test_tuning_refuses_repetitions_the_leaderboard_evaluates(toy, tmp_path):
    with pytest.raises(ValueError, match="evaluated"):
        tune_suite(SUITE, ["_test_shifted"], tmp_path, budget=2, evaluated_reps=(1, 5))


def test_retune_runs_the_named_samplers_again_and_reuses_the_others_trials(toy, tmp_path):
    """``retune``: a sampler whose code changed is tuned again with the same budget; the
    other samplers' trials come from the tuned.json being continued, not from new fits (the
    marked scores below survive), and the file keeps its first command and commit."""
    first = tune_suite(
        SUITE, ["_test_shifted", "_test_edge"], tmp_path / "a", budget=4, log=lambda m: None,
        command="first command",
    )  # fmt: skip
    stale = json.loads(json.dumps(first))
    for t in stale["trials"]:
        if t["sampler"] == "_test_edge":
            t["score"] += 1000.0  # a constant: the same choice, and a mark of reuse
        else:  # scores of the "old code": the default looked best
            t["score"] = 0.0 if t["params"] == {} else 1.0
    stale["chosen"]["_test_shifted"] = {TARGET: {i: {} for i in SUITE.inits}}
    out = tmp_path / "b"
    out.mkdir()
    (out / tuning.TUNED_FILE).write_text(json.dumps(stale))
    logged: list[str] = []
    again = tune_suite(
        SUITE, ["_test_shifted", "_test_edge"], out, budget=4, log=logged.append,
        retune=("_test_shifted",), command="retune command",
    )  # fmt: skip
    fits = [m for m in logged if m.startswith("[")]
    assert fits and all(" _test_shifted " in m for m in fits)  # no _test_edge fit ran
    assert again["chosen"]["_test_shifted"] == first["chosen"]["_test_shifted"]
    assert again["chosen"]["_test_edge"] == first["chosen"]["_test_edge"]
    edge = [t["score"] for t in again["trials"] if t["sampler"] == "_test_edge"]
    assert edge and min(edge) >= 1000.0
    shifted = [t for t in again["trials"] if t["sampler"] == "_test_shifted"]
    assert [t["score"] for t in shifted] == [
        t["score"] for t in first["trials"] if t["sampler"] == "_test_shifted"
    ]
    assert again["command"] == "first command" and again["commit"] == first["commit"]
    (entry,) = again["retuned"]
    assert entry["samplers"] == ["_test_shifted"] and entry["command"] == "retune command"
    # a retune must describe the same tuning as the file it continues
    with pytest.raises(tuning.RetuneMismatch, match="budget"):
        tune_suite(SUITE, ["_test_shifted"], out, budget=5, log=lambda m: None,
                   retune=("_test_shifted",))  # fmt: skip
    with pytest.raises(tuning.RetuneMismatch, match="cannot be read"):
        tune_suite(SUITE, ["_test_shifted"], tmp_path / "c", budget=4, log=lambda m: None,
                   retune=("_test_shifted",))  # fmt: skip
