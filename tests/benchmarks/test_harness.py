"""Harness pieces: grids, suite files, wall-time budgets, side outputs (particles, curves)
and array interop at the sampler/metric boundaries."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
import torch

from benchmarks.execution.grid import GridError, expand, grid_from_options, parse_param
from benchmarks.execution.runner import RunSpec, execute_unit, plan
from benchmarks.execution.store import CURVES_FILE, ROWS_FILE, load_rows
from benchmarks.execution.suite_run import run_suite
from benchmarks.suite_file import SuiteFileError, load_suite_file
from benchmarks.suites import Suite
from common.interop import as_torch
from metrics.base import MetricError, check_clouds
from samplers import get_sampler
from samplers.base import SamplerError, iterate
from tests.helpers import harness_plugin as hp
from tests.helpers.gaussian import correlated_gaussian_2d


def _suite(**kw) -> Suite:
    """The tiny suite with one seed and every sampler unless ``kw`` says otherwise."""
    return hp.tiny_suite(**{"seeds": (0,), "samplers": None, **kw})


# -- grids and suite files ---------------------------------------------------------------
def test_parse_param_types_and_errors():
    assert parse_param("dmps.step_size=0.1,1,5") == ("dmps", "step_size", (0.1, 1, 5))
    assert parse_param("ula.score=auto,kde") == ("ula", "score", ("auto", "kde"))
    assert parse_param("x.flag=true,null") == ("x", "flag", (True, None))
    for bad in ("dmps=0.1", "dmps.step_size", ".a=1", "a.b=", "a.b=1,1"):
        with pytest.raises(GridError):
            parse_param(bad)


def test_grid_expansion_is_the_cartesian_product_in_plan():
    grid = grid_from_options(["ula.step_size=0.01,0.1", "ula.score=auto,kde"])
    assert expand(grid["ula"]) == [
        {"step_size": 0.01, "score": "auto"},
        {"step_size": 0.01, "score": "kde"},
        {"step_size": 0.1, "score": "auto"},
        {"step_size": 0.1, "score": "kde"},
    ]
    suite = _suite(seeds=(0, 1), sampler_params={"ula": {"score": "exact"}}, param_grid=grid)
    specs = plan(suite, ["ula", "svgd"])
    # per seed: exact + 4 ula combinations + svgd
    assert len(specs) == 2 * 6
    ula = [s for s in specs if s.sampler == "ula" and s.rep == 0]
    assert [s.params for s in ula] == expand(grid["ula"])  # the grid overrides fixed params
    keys = {s.config_key("gaussian") for s in specs}
    assert len(keys) == len(specs)
    svgd = next(s for s in specs if s.sampler == "svgd")
    assert svgd.params == {}


def test_suite_file_toml_and_json(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(
        'name = "sweep"\nbase = "smoke"\nsamplers = ["ula"]\nseeds = [3]\n'
        "n_steps = 7\n[grid.ula]\nstep_size = [0.01, 0.1]\n"
        '[sampler_params.ula]\nscore = "kde"\n'
    )
    s = load_suite_file(toml)
    assert (s.name, s.samplers, s.seeds, s.n_steps) == ("sweep", ("ula",), (3,), 7)
    assert s.targets == ("ring8", "circle")  # from base = "smoke"
    assert s.param_grid == {"ula": {"step_size": (0.01, 0.1)}}
    assert s.sampler_params == {"ula": {"score": "kde"}}
    js = tmp_path / "s.json"
    js.write_text(json.dumps({"name": "j", "targets": ["a"], "n_particles": 5}))
    assert load_suite_file(js).n_particles == 5
    for text, msg in (
        ('{"name": "j"}', "'targets' is required"),
        ('{"name": "j", "targets": ["a"], "colour": 1}', "unknown keys \\['colour'\\]"),
        ('{"name": "j", "targets": ["a"], "grid": {"ula": {"h": 1}}}', "non-empty list"),
        ('{"name": "j", "base": "nope"}', "unknown suite 'nope'"),
        ("{oops", "suite file"),
    ):
        js.write_text(text)
        with pytest.raises(SuiteFileError, match=msg):
            load_suite_file(js)
    with pytest.raises(SuiteFileError, match="does not exist"):
        load_suite_file(tmp_path / "missing.toml")


# -- wall-time budgets ---------------------------------------------------------------------
def _spec(sampler: str, **kw) -> RunSpec:
    base = dict(
        suite="tiny",
        target=hp.TARGET,
        sampler=sampler,
        rep=0,
        n_particles=16,
        n_steps=5,
        n_train=64,
        n_reference=64,
        inits=("gaussian",),
        metrics=(hp.METRIC,),
        suite_seed=1,
    )
    return RunSpec(**{**base, **kw})


def test_cooperative_timeout_stops_between_steps(plugin):
    (row,) = execute_unit(_spec(hp.SLOW, params={"step_sleep": 0.1}, timeout=0.25)).rows
    assert row["status"] == "timeout"
    assert 1 <= row["steps_done"] <= 3
    assert "wall-time limit reached after" in row["message"] and "0.25 s limit" in row["message"]
    assert np.isnan(row["value"])
    assert row["sample_seconds"] < 0.25 + 0.15
    # without the limit the same run finishes all steps
    (ok,) = execute_unit(_spec(hp.SLOW, params={"step_sleep": 0.01}, timeout=5.0)).rows
    assert (ok["status"], ok["steps_done"]) == ("ok", 5)
    assert (
        ok["config_key"]
        == execute_unit(_spec(hp.SLOW, params={"step_sleep": 0.01})).rows[0]["config_key"]
    ), "the limit is an execution option, not part of the configuration"


def test_timeout_of_non_cooperative_sampler_and_of_fit(plugin):
    params = {"step_sleep": 0.06, "cooperative": False}
    (row,) = execute_unit(_spec(hp.SLOW, params=params, timeout=0.2)).rows
    assert row["status"] == "timeout" and row["steps_done"] == 5
    assert "fit + sampling took" in row["message"]
    (fit,) = execute_unit(_spec(hp.SLOW, params={"fit_sleep": 2.0}, timeout=0.1)).rows
    assert fit["status"] == "timeout"
    assert "wall-time limit reached during harness_slow fit" in fit["message"]


def test_hard_stop_interrupts_code_that_never_checks_the_deadline(plugin):
    from benchmarks.execution.runner import HARD_GRACE

    params = {"step_sleep": 2.0, "cooperative": False}  # one 10 s sleep, no checks
    t0 = time.perf_counter()
    (row,) = execute_unit(_spec(hp.SLOW, params=params, timeout=0.2)).rows
    assert time.perf_counter() - t0 < 0.2 + HARD_GRACE + 2.0
    assert row["status"] == "timeout"
    assert "interrupted by the hard wall-time stop" in row["message"]
    assert 0.2 + HARD_GRACE - 0.05 <= row["sample_seconds"] < 0.2 + HARD_GRACE + 1.0
    # the timer is gone afterwards: a later unit without a limit runs normally
    (ok,) = execute_unit(_spec(hp.SLOW, params={"step_sleep": 0.01})).rows
    assert ok["status"] == "ok"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_iterate_deadline_and_record_steps():
    out = iterate(lambda x, t: x + 1, torch.zeros(3, 1), 7, record_every=3)
    assert out.info["record_steps"] == [0, 3, 6, 7]
    assert out.trajectory[:, 0, 0].tolist() == [0, 3, 6, 7]
    assert "timed_out" not in out.info
    stopped = iterate(lambda x, t: x + 1, torch.zeros(3, 1), 7, record_every=3, deadline=0.0)
    assert stopped.info["timed_out"] and stopped.info["steps"] == 0
    assert stopped.info["record_steps"] == [0]


def test_timeout_row_in_suite_and_leaderboard(tmp_path, plugin):
    suite = _suite(samplers=(hp.SLOW,), sampler_params={hp.SLOW: {"step_sleep": 0.2}})
    md = run_suite(suite, out_root=tmp_path, progress=False, timeout=0.3).read_text()
    rows = load_rows(tmp_path / "tiny" / ROWS_FILE).rows
    assert [r["status"] for r in rows] == ["ok", "timeout"]
    assert "| harness_slow | timeout |" in md


# -- side outputs ----------------------------------------------------------------------------
def test_particles_files_and_curves(tmp_path, plugin):
    suite = _suite(samplers=("ula",))
    run_suite(suite, out_root=tmp_path, progress=False, curve_every=2)
    rows = load_rows(tmp_path / "tiny" / ROWS_FILE).rows
    exact, ula = rows
    with np.load(tmp_path / "tiny" / ula["particles_file"]) as z:
        p = z["particles"]
    assert p.dtype == np.float32 and p.shape == (16, 2)
    out = execute_unit(plan(suite, ["ula"])[1])
    final = out.arrays[ula["particles_file"]]["particles"]
    assert np.array_equal(p, final)
    with np.load(tmp_path / "tiny" / exact["particles_file"]) as z:
        assert z["reference"].shape == (64, 2) and z["particles"].shape == (16, 2)
    curves = load_rows(tmp_path / "tiny" / CURVES_FILE, required=()).rows
    assert [c["step"] for c in curves] == [0, 2, 4, 5]
    assert all(c["config_key"] == ula["config_key"] for c in curves)
    # the last frame is the final particles: same metric value as the row
    assert curves[-1]["value"] == pytest.approx(ula["value"], rel=1e-12)
    assert [c["seconds"] for c in curves] == sorted(c["seconds"] for c in curves)


# -- interop ---------------------------------------------------------------------------------
class DLPackOnly:
    """A foreign array that only speaks DLPack (as CuPy does), built from a torch tensor."""

    def __init__(self, t: torch.Tensor) -> None:
        self._t = t

    def __dlpack__(self, **kw):
        return self._t.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._t.__dlpack_device__()


def test_as_torch_numpy_and_dlpack_without_copy():
    a = np.arange(6.0).reshape(3, 2)
    t = as_torch(a)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    a[0, 0] = 42.0
    assert t[0, 0] == 42.0, "numpy arrays are viewed, not copied"
    src = torch.randn(4, 2, dtype=torch.float64)
    v = as_torch(DLPackOnly(src))
    assert v.data_ptr() == src.data_ptr()
    assert as_torch(src) is src
    assert as_torch([1, 2]) == [1, 2]  # left to the caller's own check


def test_samplers_and_metrics_accept_numpy_and_dlpack():
    target = correlated_gaussian_2d()
    train = target.sample(50, seed=0)
    x0 = torch.zeros(8, 2, dtype=torch.float64)
    ref = get_sampler("ula", step_size=0.1).fit(train, target).run(x0, 3, seed=1).particles
    s = get_sampler("ula", step_size=0.1).fit(train.numpy(), target)
    assert torch.equal(s.run(x0.numpy(), 3, seed=1).particles, ref)
    s = get_sampler("ula", step_size=0.1).fit(DLPackOnly(train), target)
    assert torch.equal(s.run(DLPackOnly(x0), 3, seed=1).particles, ref)
    x, y = check_clouds(x0.numpy().astype(np.float32), DLPackOnly(train))
    assert x.dtype == y.dtype == torch.float64 and torch.equal(y, train)
    with pytest.raises(MetricError, match="must be a torch.Tensor"):
        check_clouds([[0.0, 1.0]], train)
    with pytest.raises(SamplerError, match="contains NaN"):
        s.run(np.full((2, 2), np.nan), 1, seed=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_suite_on_cuda_matches_device_and_records_it(tmp_path, plugin):
    suite = _suite(samplers=("ula", "svgd"))
    run_suite(suite, out_root=tmp_path, progress=False, device="cuda", curve_every=2)
    rows = load_rows(tmp_path / "tiny" / ROWS_FILE).rows
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert all(r["device"].startswith("cuda") for r in rows)
    assert all(np.isfinite(r["value"]) for r in rows)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cupy_arrays_at_sampler_and_metric_boundaries():
    cp = pytest.importorskip("cupy")
    target = correlated_gaussian_2d()
    train = cp.asarray(target.sample(50, seed=0).numpy())
    x0 = cp.zeros((8, 2))
    t = as_torch(x0)
    assert t.device.type == "cuda" and t.data_ptr() == x0.data.ptr
    out = get_sampler("ula", step_size=0.1).fit(train, target).run(x0, 2, seed=1)
    assert out.particles.device.type == "cuda"
    x, y = check_clouds(x0, train)
    assert x.device.type == y.device.type == "cuda"
