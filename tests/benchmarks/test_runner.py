"""End-to-end behaviour of the runner, store and leaderboard on a tiny test-local suite."""

from __future__ import annotations

import json
import math

import pytest
import torch

import datasets.base as dbase
import metrics.base as mbase
import samplers.base as sbase
from benchmarks.execution.data import prepare
from benchmarks.execution.runner import execute, plan
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.execution.suite_run import run_suite
from benchmarks.suites import Suite
from benchmarks.verdict.leaderboard import leaderboard_table, rows_frame
from datasets import DataMissingError
from metrics.base import MetricResult
from tests.helpers.gaussian import GaussianTarget


class _Exploding(sbase.Sampler):
    """Test-only sampler whose run raises, to check failures are recorded (not raised)."""

    name = "_test_exploding"
    defaults = {}

    def _fit(self, train, target):
        return None

    def _run(self, run):
        raise RuntimeError("boom")


class _Diverging(sbase.Sampler):
    """Test-only sampler whose particles blow up."""

    name = "_test_diverging"
    defaults = {}

    def _fit(self, train, target):
        return None

    def _step(self, x, t, gen):
        return x * 1e6


@pytest.fixture
def scoped_samplers():
    """The test-only samplers, registered for one test (never seen by the contract tests)."""
    with sbase.SAMPLERS.scoped() as samplers:
        samplers.add(_Exploding.name, _Exploding)
        samplers.add(_Diverging.name, _Diverging)
        yield


@pytest.fixture
def registry(monkeypatch, scoped_samplers):
    def gauss():
        return GaussianTarget(
            torch.tensor([2.0, -1.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]]), name="_test_gauss"
        )

    def missing():
        raise DataMissingError("place the files in /nowhere")

    def mean_gap(ctx):
        gap = float(((ctx.particles.mean(0) - ctx.reference.mean(0)) ** 2).sum())
        return MetricResult(gap, True, {"scale": ctx.scale})

    monkeypatch.setitem(
        mbase.METRICS.entries, "_test_mean_gap", mbase.Metric("_test_mean_gap", mean_gap)
    )
    prepare.cache_clear()
    with dbase.TARGETS.scoped():
        dbase.register_target("_test_gauss", "mixtures")(gauss)
        dbase.register_target("_test_missing", "mixtures")(missing)
        yield
    prepare.cache_clear()


def _suite(**kw) -> Suite:
    base = dict(
        name="_test",
        targets=("_test_gauss",),
        n_particles=32,
        n_steps=10,
        n_train=100,
        n_reference=100,
        seeds=(0, 1),
        inits=("gaussian", "cap"),
        metrics=("_test_mean_gap",),
    )
    base.update(kw)
    return Suite(**base)


def test_rows_leaderboard_and_exact_row(registry, tmp_path):
    suite = _suite()
    path = run_suite(suite, out_root=tmp_path, samplers=["ula", "svgd"], progress=False)
    rows = load_rows(tmp_path / "_test" / ROWS_FILE).rows
    # 1 target x 2 seeds x (2 samplers + exact) x 2 inits x 1 metric
    assert len(rows) == 12
    assert {r["status"] for r in rows} == {"ok"}
    table = leaderboard_table(rows_frame(rows), "_test_mean_gap")
    assert list(table.index)[0] == "exact"
    assert set(table.columns) >= {"_test_gauss / gaussian", "_test_gauss / cap", "avg rank"}
    text = path.read_text()
    assert "exact" in text and "Produced by" in text
    assert (tmp_path / "_test" / "leaderboard.csv").exists()


def test_same_x0_for_every_sampler_and_reproducible_rows(registry, tmp_path):
    suite = _suite(seeds=(0,))
    specs = plan(suite, ["ula", "svgd"])
    a = prepare("_test_gauss", 0, 100, 100, 32, ("gaussian", "cap"), suite.suite_seed)
    prepare.cache_clear()
    b = prepare("_test_gauss", 0, 100, 100, 32, ("gaussian", "cap"), suite.suite_seed)
    assert torch.equal(a.x0["gaussian"], b.x0["gaussian"]) and torch.equal(a.train, b.train)
    # cap init lies in the cap region of the target; train is standardised
    assert bool(a.target.cap_mask(a.x0["cap"]).float().mean() > 0.9)
    assert torch.allclose(a.train.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    v1 = [r["value"] for s in specs for r in execute(s)]
    prepare.cache_clear()
    v2 = [r["value"] for s in specs for r in execute(s)]
    assert v1 == v2


def test_failures_are_rows_not_crashes(registry, tmp_path):
    suite = _suite(targets=("_test_gauss", "_test_missing"), seeds=(0,))
    run_suite(
        suite,
        out_root=tmp_path,
        samplers=["_test_exploding", "_test_diverging", "ula"],
        progress=False,
    )
    rows = load_rows(tmp_path / "_test" / ROWS_FILE).rows
    by = {(r["target"], r["sampler"], r["init"]): r for r in rows}
    assert by[("_test_gauss", "_test_exploding", "cap")]["status"] == "failed"
    assert "boom" in by[("_test_gauss", "_test_exploding", "cap")]["message"]
    assert by[("_test_gauss", "_test_diverging", "gaussian")]["status"] == "diverged"
    assert math.isnan(by[("_test_gauss", "_test_diverging", "gaussian")]["value"])
    assert by[("_test_missing", "ula", "gaussian")]["status"] == "skipped"
    assert "data missing" in by[("_test_missing", "ula", "gaussian")]["message"]
    assert by[("_test_gauss", "ula", "gaussian")]["status"] == "ok"


def test_resume_repairs_a_truncated_file_and_records_each_run_once(registry, tmp_path):
    suite = _suite()
    run_suite(suite, out_root=tmp_path, samplers=["ula"], progress=False)
    rows_path = tmp_path / "_test" / ROWS_FILE
    lines = rows_path.read_text().splitlines()
    # simulate a crash: the last 3 rows lost and a half-written line at the end
    rows_path.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][: len(lines[-3]) // 2])
    run_suite(suite, out_root=tmp_path, samplers=["ula"], resume=True, progress=False)
    rows = load_rows(rows_path).rows
    keys = [(r["config_key"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(lines)
    assert list((tmp_path / "_test").glob("runs.jsonl.corrupt-*"))


def test_row_records_environment_and_params(registry, tmp_path):
    suite = _suite(seeds=(0,), inits=("gaussian",), sampler_params={"ula": {"step_size": 0.02}})
    run_suite(suite, out_root=tmp_path, samplers=["ula"], progress=False)
    row = [r for r in load_rows(tmp_path / "_test" / ROWS_FILE).rows if r["sampler"] == "ula"][0]
    assert json.loads(row["params"]) == {"step_size": 0.02}
    for key in ("commit", "device", "torch", "pot", "blas", "score_source", "seed"):
        assert key in row
    assert row["score_source"] == "exact"
    env = json.loads((tmp_path / "_test" / "environment.json").read_text())
    assert env["device"] == "cpu"
