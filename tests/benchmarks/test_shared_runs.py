"""A sampler that ignores x0 runs once per (target, seed); its rows are reused, labelled."""

from __future__ import annotations

import pytest
import torch

import datasets.base as dbase
from benchmarks.execution.data import prepare
from benchmarks.execution.runner import execute_unit, plan
from benchmarks.execution.shared_runs import SHARED_FIELD, run_inits
from benchmarks.suites import Suite
from benchmarks.verdict.leaderboard import leaderboard_table, rows_frame
from tests.helpers.gaussian import GaussianTarget


@pytest.fixture
def gauss_target():
    def gauss():
        return GaussianTarget(torch.zeros(2), torch.eye(2), name="_test_gauss_shared")

    prepare.cache_clear()
    with dbase.TARGETS.scoped():
        dbase.register_target("_test_gauss_shared", "mixtures")(gauss)
        yield
    prepare.cache_clear()


SUITE = Suite(
    name="_test_shared",
    targets=("_test_gauss_shared",),
    n_particles=16,
    n_steps=3,
    n_train=60,
    n_reference=60,
    seeds=(0,),
    inits=("gaussian", "cap"),
    metrics=("sinkhorn",),
)


def test_run_inits_follow_the_class_declaration():
    assert run_inits("kmeans", ("gaussian", "cap")) == ("gaussian",)
    assert run_inits("ula", ("gaussian", "cap")) == ("gaussian", "cap")


def test_x0_free_sampler_runs_once_and_its_rows_are_reused(gauss_target):
    (spec,) = [s for s in plan(SUITE, ["train_subsample"]) if s.sampler == "train_subsample"]
    out = execute_unit(spec)
    sink = [r for r in out.rows if r["metric"] == "sinkhorn"]
    by_init = {r["init"]: r for r in sink}
    assert set(by_init) == {"gaussian", "cap"}
    assert by_init["gaussian"]["value"] == by_init["cap"]["value"]
    assert by_init["cap"][SHARED_FIELD] == "gaussian" and SHARED_FIELD not in by_init["gaussian"]
    assert by_init["cap"]["config_key"] != by_init["gaussian"]["config_key"]
    assert len(out.arrays) == 1  # one run, one particle file


def test_a_sampler_missing_a_column_is_shown_apart_not_ranked_on_fewer_columns(gauss_target):
    """Average ranks over different columns are not comparable: a sampler without a value
    in a column is not ranked (and says why); the others are ranked over every column."""
    rows = []
    for spec in plan(SUITE, ["train_subsample", "ula"]):
        rows += execute_unit(spec).rows
    rows = [r for r in rows if not (r["sampler"] == "ula" and r["init"] == "cap")]
    table = leaderboard_table(rows_frame(rows), "sinkhorn")
    assert table.at["ula", "ranked"] == "no: skipped in 1/2 ranked columns"
    assert table.at["ula", "avg rank"] == "-"
    assert table.at["train_subsample", "ranked"] == "2/2"
