"""The README's 'Adding a metric' and 'Adding a suite' examples work as written: each is
one file, and the harness picks it up without edits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from benchmarks.suite_file import load_suite_file
from benchmarks.verdict.leaderboard import leaderboard_table, rows_frame
from metrics.base import METRICS, MetricContext

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _block(section: str, lang: str) -> str:
    body = README[README.index(section) :]
    return re.search(rf"```{lang}\n(.*?)```", body, re.S).group(1)


def test_metric_example_registers_and_ranks():
    code = _block("## Adding a metric", "python")
    with METRICS.scoped():
        exec(compile(code, "README:mean_gap", "exec"), {})
        metric = METRICS.get("mean_gap")
        x = torch.zeros(5, 2, dtype=torch.float64)
        y = torch.ones(7, 2, dtype=torch.float64)
        assert metric(MetricContext(x, y)).value == 2.0
        rows = [
            {"sampler": s, "target": "t", "init": "gaussian", "metric": "mean_gap", "value": v,
             "status": "ok", "converged": True, "message": "", "fit_seconds": 0.0,
             "sample_seconds": 0.0, "rep": 0, "params": "{}"}
            for s, v in (("a", 3.0), ("b", 1.0))
        ]  # fmt: skip
        table = leaderboard_table(rows_frame(rows), "mean_gap")
        assert list(table.index) == ["b", "a"]  # lower is better, as declared
    assert "mean_gap" not in METRICS.names()  # the scope removed it


def test_suite_example_loads(tmp_path):
    path = tmp_path / "my_suite.toml"
    path.write_text(_block("## Adding a suite", "toml"), encoding="utf-8")
    suite = load_suite_file(path)
    assert suite.name == "rings" and suite.targets == ("ring8", "grid25")
    assert suite.headline_metric == "sinkhorn" and suite.param_grid["dmps"]["flow_step"]


def _run_method_example(device: str) -> torch.Tensor:
    """The README's 'Adding a method' module, registered for the block only, fitted on
    N(0, I_2) (exact score) and run 200 steps from x0 = 3 + N(0, I) on ``device``."""
    import samplers.base as sbase
    from tests.helpers.gaussian import GaussianTarget

    code = _block("## Adding a method", "python")
    with sbase.SAMPLERS.scoped():
        exec(compile(code, "README:my_method", "exec"), {})
        target = GaussianTarget(torch.zeros(2), torch.eye(2))
        train = target.sample(50, seed=1)
        x0 = 3.0 + target.sample(4000, seed=2)
        sampler = sbase.get_sampler("my_method").fit(train.to(device), target)
        out = sampler.run(x0.to(device), 200, seed=3).particles
    assert "my_method" not in sbase.SAMPLERS.names()  # the scope removed it
    return out


def test_method_example_is_the_langevin_chain_it_says():
    """The example is ULA, x' = x + h grad log p(x) + sqrt(2h) xi. On N(0, 1) per coordinate
    the chain is x' = (1 - h) x + sqrt(2h) xi, stationary variance 2h / (1 - (1 - h)^2) =
    1 / (1 - h / 2) = 1.0526 at h = 0.1 (closed form); from mean 3 after 200 steps the mean
    left is 3 (0.9)^200 = 2e-9. With 4000 particles the sample variance has sd about
    1.05 sqrt(2 / 4000) = 0.024 and the mean sd 0.016: bars of 4 sd."""
    x = _run_method_example("cpu")
    assert x.shape == (4000, 2) and x.dtype == torch.float64
    assert torch.all((x.var(0) - 1 / (1 - 0.1 / 2)).abs() < 4 * 0.024)
    assert torch.all(x.mean(0).abs() < 4 * 0.016)
    assert torch.equal(x, _run_method_example("cpu"))  # deterministic per seed


@pytest.mark.gpu
def test_method_example_runs_on_cuda_as_on_the_cpu():
    """Its draws come from the run's CPU generator (``common.random``), so the CUDA run uses
    the same numbers: equal to the CPU run up to rounding."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    cpu, gpu = _run_method_example("cpu"), _run_method_example("cuda").cpu()
    assert torch.allclose(cpu, gpu, rtol=0, atol=1e-9)
