"""Refresh every committed study result with one command.

    python -m benchmarks.studies --list        # each study's refresh command and its files
    python -m benchmarks.studies --all         # rerun every study (slow: tens of minutes)
    python -m benchmarks.studies --only NAME   # rerun the studies whose module is NAME
    python -m benchmarks.studies --all --skip dmps_more_data   # all but the hours-long one

:data:`STUDIES` names, for every result file of a study under ``results/``, the command that
produces it (module, arguments, environment). ``tests/benchmarks/test_studies.py`` checks
that every committed ``results/**/*.md`` outside the suite folders is produced by one of
them, so no result file goes stale without a command to refresh it (suite runs of a study,
such as the EDMD variants, are listed too). The named suites' results are refreshed by
``python -m benchmarks run --suite NAME --out results``; hand-written notes (``README.md``)
name their commands themselves.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.execution.environment import REPO_ROOT


@dataclass(frozen=True)
class Study:
    """One refresh command: ``env python -m <module> <args>`` (``module`` relative to
    ``benchmarks.studies`` unless it is ``benchmarks`` or dotted), which writes ``outputs`` (paths
    relative to the repository)."""

    module: str
    outputs: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    #: True: needs a CUDA device (skipped by ``--all`` without one; its outputs are committed
    #: from a GPU run, so they may be absent until a GPU was lent)
    gpu: bool = False
    #: exit statuses that mean the study ran and wrote its outputs (``verify`` exits 4 when
    #: rows differ, which is what a study of another CPU's rounding measures)
    succeeds_with: tuple[int, ...] = (0,)

    @property
    def full_module(self) -> str:
        top = self.module == "benchmarks" or "." in self.module
        return self.module if top else f"benchmarks.studies.{self.module}"

    @property
    def argv(self) -> list[str]:
        return ["-m", self.full_module, *self.args]

    @property
    def command(self) -> str:
        """The shell command line, as the result files name it."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        argv = ["python", *self.argv]
        return (env + " " if env else "") + " ".join(shlex.quote(a) for a in argv)


_ONE_THREAD = {"OMP_NUM_THREADS": "1"}
_ONE_BLAS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_ONE_BLAS3 = {**_ONE_BLAS, "OPENBLAS_NUM_THREADS": "1"}
#: this AVX-512 machine made to round like an AVX2-only CPU (AMD EPYC before Zen 4, Intel
#: before Skylake-SP): torch's CPU kernels, MKL, OpenBLAS and numpy's SIMD loops each on
#: their AVX2 path (numpy 2.x dispatch targets: X86_V4 is the AVX-512 baseline group)
AVX2_CODE_PATH = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR",
}
_REPRODUCTION = "results/harness/reproduction.md"
_AVX2_REPRODUCTION = "results/harness/avx2_reproduction.md"
_VERIFY_RUN = ("--jobs", "2", "--data-root", "/usr/share/datasets", "--no-progress")
_VARIANTS = "results/edmd/variants"
_SPARSE = "results/dmps/sparse_vs_dense"
_FASHION60K = "results/dmps/sparse_scaling_fashion60k.md"
_WHOLE = "results/dmps/fashion_whole_pool"
_WHOLE_RUN = (
    "run",
    "--suite-file",
    f"{_WHOLE}/suite.toml",
    "--data-root",
    "/usr/share/datasets",
    "--threads",
    "2",
)
_ALL = ("--train-size", "all")
_CURVE = ("--seeds", "0", "--steps", "3000", "--curve-every", "300")
_VARIANT_RUN = ("run", "--suite-file", f"{_VARIANTS}/edmd_variants.toml")
_QUIET = ("--no-progress", "--no-particles")

#: every committed study result and the command that refreshes it (cheapest first)
STUDIES: tuple[Study, ...] = (
    Study("eigensolvers_dmps", ("results/dmps/eigensolvers.md",)),
    Study("shell_experiment", ("results/dmps/shell_experiment.md",)),
    Study("calibration_targets", ("results/targets/calibration.md",), env=_ONE_THREAD),
    # its readings section (every registered metric on corrupted samples), run after the above
    Study(
        "calibration_targets",
        ("results/targets/calibration.md",),
        args=("--readings", "--seeds", "0", "1"),
        env=_ONE_THREAD,
    ),
    Study("copying_cells", ("results/metrics/copying_cells.md",), env=_ONE_THREAD),
    Study("dmps_claim", ("results/dmps/claim.md",)),
    Study("sliced_mmd_error", ("results/baselines/sliced_gradient_error.md",), env=_ONE_THREAD),
    Study(
        "metric_speed",
        ("results/metrics/speed.md",),
        ("--sizes", "1000", "5000", "--repeats", "1"),
        _ONE_BLAS,
    ),
    Study("metric_memory", ("results/metrics/streaming_memory.md",)),
    Study("scaling_edmd", ("results/edmd/fit_scaling.md",), env=_ONE_BLAS),
    Study(
        "scaling_dmps",
        ("results/dmps/scaling.md",),
        ("--sizes", "1000", "2000", "5000", "10000", "--repeats", "1"),
    ),
    Study(
        "scaling_dmps",
        ("results/dmps/fit20000/scaling.md",),
        ("--sizes", "20000", "--no-brute", "--repeats", "3", "--out", "results/dmps/fit20000"),
    ),
    Study("neural_training", ("results/neural/training.md",)),
    Study(
        "latents_autoencoders",
        ("results/latents/autoencoders.md",),
        (
            "--data-root",
            "/usr/share/datasets",
            "--datasets",
            "digits,mnist_5k,fashion_mnist,mnist,cifar10",
        ),
        _ONE_THREAD,
    ),
    Study(
        "parallel_timing",
        ("results/harness/parallel_timing.md",),
        ("--suites", "smoke,bounded,mixtures", "--jobs", "2"),
    ),
    Study(
        "benchmarks",
        (f"{_VARIANTS}/edmd_variants/leaderboard.md",),
        (
            *_VARIANT_RUN,
            "--param",
            "edmd_kswgd.variant=notebook,koopman_markov,reweighted",
            "--out",
            _VARIANTS,
            *_QUIET,
        ),
        _ONE_BLAS3,
    ),
    Study(
        "benchmarks",
        (f"{_VARIANTS}/koopman_markov_sweep/edmd_variants/leaderboard.md",),
        (
            *_VARIANT_RUN,
            "--samplers",
            "edmd_kswgd",
            "--param",
            "edmd_kswgd.variant=koopman_markov",
            "--param",
            "edmd_kswgd.pair_draws=1,4",
            "--param",
            "edmd_kswgd.step_fraction=0.1,0.2",
            "--out",
            f"{_VARIANTS}/koopman_markov_sweep",
            *_QUIET,
        ),
        _ONE_BLAS3,
    ),
    Study("edmd_variants_summary", (f"{_VARIANTS}/summary.md",)),
    Study("load_sensitivity", ("results/harness/load_sensitivity.md",)),
    Study("dask_timing", ("results/harness/dask_timing.md",), env=_ONE_BLAS3),
    Study(
        "scaling_sparse_dmps",
        ("results/dmps/sparse_scaling_s5_10.md",),
        ("--sizes", "5000", "10000", "--out", "results/dmps/sparse_scaling_s5_10.md"),
    ),
    Study(
        "scaling_sparse_dmps",
        (_FASHION60K,),
        ("--sizes", "--fashion", "--repeats", "3", "--out", _FASHION60K),
    ),
    Study(
        "scaling_sparse_dmps",
        ("results/dmps/sparse_scaling_s20.md",),
        ("--sizes", "20000", "--out", "results/dmps/sparse_scaling_s20.md"),
    ),
    Study(
        "benchmarks",
        (f"{_SPARSE}/dmps_sparse_vs_dense/leaderboard.md",),
        (
            "run",
            "--suite-file",
            f"{_SPARSE}/suite.toml",
            "--param",
            "dmps.kernel=dense,sparse",
            "--jobs",
            "2",
            *_QUIET,
            "--out",
            _SPARSE,
        ),
    ),
    Study(
        "benchmarks",
        (f"{_SPARSE}/digits/dmps_sparse_vs_dense/leaderboard.md",),
        (
            "run",
            "--suite-file",
            f"{_SPARSE}/suite.toml",
            "--targets",
            "digits_latent",
            "--train-size",
            "all",
            "--param",
            "dmps.kernel=dense,sparse",
            "--jobs",
            "2",
            *_QUIET,
            "--out",
            f"{_SPARSE}/digits",
        ),
    ),
    Study(
        "scaling_sparse_dmps",
        ("results/dmps/sparse_vs_dense.md",),
        ("--quality", _SPARSE, "--quality-only", "--out", "results/dmps/sparse_vs_dense.md"),
    ),
    Study(
        "benchmarks",
        (f"{_WHOLE}/n1200/dmps_fashion_whole_pool/leaderboard.md",),
        (*_WHOLE_RUN, "--out", f"{_WHOLE}/n1200", "--no-particles"),
    ),
    Study(
        "benchmarks",
        (f"{_WHOLE}/n1200_steps3000/dmps_fashion_whole_pool/leaderboard.md",),
        (*_WHOLE_RUN, *_CURVE, "--out", f"{_WHOLE}/n1200_steps3000", "--no-particles"),
    ),
    Study(
        "benchmarks",
        (f"{_WHOLE}/n60000/dmps_fashion_whole_pool/leaderboard.md",),
        (*_WHOLE_RUN, *_ALL, "--out", f"{_WHOLE}/n60000", "--no-particles"),
    ),
    Study(
        "benchmarks",
        (f"{_WHOLE}/n60000_steps3000/dmps_fashion_whole_pool/leaderboard.md",),
        (*_WHOLE_RUN, *_ALL, *_CURVE, "--out", f"{_WHOLE}/n60000_steps3000", "--no-particles"),
    ),
    Study("timing_summary", ("results/benchmarks/summary.md",), ("--run",)),
    # DMPS's dense and sparse fits at N = 20,000 and 60,000 (about 15 minutes)
    Study("timing_summary", ("results/benchmarks/summary.md",), ("--spectral",)),
    Study(
        "gpu_study",
        tuple(f"results/gpu/{f}.md" for f in ("summary", "smoke", "manifolds", "metric", "dmps")),
        ("--out", "results"),
        gpu=True,
    ),
    # issue 24's spec, every size for seeds 0-2 (the old rule's sparse fits at 30,000 points
    # take up to 10 min each); hours on 2 cores, resumable (more_data.partial.csv)
    Study(
        "dmps_more_data",
        ("results/dmps/more_data.md",),
        (),
        env=_ONE_THREAD,
    ),
    # last: the committed suite folders (refreshed by ``run --out results``, not here) run
    # again for seed 0, every sampler, and compared row for row (about 16 min on 2 cores)
    Study(
        "benchmarks",
        (_REPRODUCTION,),
        ("verify", "--all", "--seeds", "0", *_VERIFY_RUN, "--report", _REPRODUCTION),
    ),
    # then every seed of every folder again on the AVX2 code path (about 65 min on 2
    # cores): how far another CPU's rounding moves the rows, and whether a verdict moves
    Study(
        "benchmarks",
        (_AVX2_REPRODUCTION,),
        (
            *("verify", "--all", "--seeds", "all", "--verdicts", "--rtol", "1e-6"),
            *_VERIFY_RUN,
            *("--report", _AVX2_REPRODUCTION),
        ),
        env=AVX2_CODE_PATH,
        succeeds_with=(0, 4),
    ),
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_study(study: Study) -> int:
    """Run one study in a fresh interpreter at the repository root; its exit status."""
    if study.gpu:
        import torch

        if not torch.cuda.is_available():
            log(f"skipped (needs a CUDA device): {study.command}")
            return 0
    cmd = [sys.executable, *study.argv]
    return subprocess.run(cmd, cwd=REPO_ROOT, env={**os.environ, **study.env}).returncode


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.studies",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="print every refresh command")
    what.add_argument("--all", action="store_true", help="rerun every study")
    what.add_argument("--only", metavar="MODULE", help="rerun the studies of one module")
    p.add_argument(
        "--skip",
        metavar="MODULE",
        action="append",
        default=[],
        help="leave out the studies of this module (repeatable), e.g. the hours-long "
        "dmps_more_data",
    )
    args = p.parse_args(argv)
    modules = sorted({s.module for s in STUDIES})
    unknown = sorted(set(args.skip) - set(modules))
    if unknown:
        p.error(f"unknown study {unknown[0]!r} in --skip; known: {', '.join(modules)}")
    if args.list:
        for study in STUDIES:
            print(f"{study.command}    # {', '.join(study.outputs)}")
        return 0
    if args.only is not None and args.only not in modules:
        p.error(f"unknown study {args.only!r}; known: {', '.join(modules)}")
    chosen = [
        s for s in STUDIES if (args.all or s.module == args.only) and s.module not in args.skip
    ]
    if not chosen:
        p.error("--skip leaves no study to run")
    failed = []
    t_all = time.perf_counter()
    for k, study in enumerate(chosen, start=1):
        log(f"[{k}/{len(chosen)}] {study.command}")
        t0 = time.perf_counter()
        code = run_study(study)
        log(f"[{k}/{len(chosen)}] exit {code} after {time.perf_counter() - t0:.0f} s")
        if code not in study.succeeds_with:
            failed.append(study.command)
    log(
        f"{len(chosen) - len(failed)} of {len(chosen)} studies refreshed in "
        f"{time.perf_counter() - t_all:.0f} s" + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
