"""Command line: ``python -m benchmarks {run,list,leaderboard,report}``.

python -m benchmarks run --suite manifolds
python -m benchmarks run --suite smoke --samplers ula,svgd --seeds 0,1 --out /tmp/res
python -m benchmarks run --suite manifolds --jobs 2 --timeout 600 --curve-every 20
python -m benchmarks run --suite mixtures --param svgd.step_size=0.1,0.5 --param ula.score=auto,kde
python -m benchmarks run --suite-file my_suite.toml --scheduler tcp://10.0.0.1:8786
python -m benchmarks run --suite manifolds --resume
python -m benchmarks list
python -m benchmarks leaderboard --suite manifolds
python -m benchmarks report            # figures + results/index.html for every suite
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path

import benchmarks  # noqa: F401  (checks that 'datasets' is this repo's package)
from benchmarks.execution import RUNS_ROOT, log, run_suite
from benchmarks.grid import GridError, check_grid, grid_from_options
from benchmarks.leaderboard import write_leaderboard
from benchmarks.locking import FolderLocked
from benchmarks.store import ROWS_FILE, load_rows
from benchmarks.suite_file import SuiteFileError, load_suite_file
from benchmarks.suites import INIT_SCHEMES, SUITES, get_suite
from benchmarks.tuning_cli import add_tune_parser, add_tuned_options, with_tuned
from datasets.base import available_targets
from metrics.base import available_metrics
from samplers.base import available_samplers, sampler_class


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _check_names(kind: str, names: list[str] | None, known: list[str]) -> None:
    bad = [n for n in names or [] if n not in known]
    if bad:
        raise SystemExit(f"error: unknown {kind} {bad}; known: {', '.join(known)}")


def _import_plugins(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise SystemExit(f"error: --import {name}: {type(exc).__name__}: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    _import_plugins(args.imports)
    if (args.suite is None) == (args.suite_file is None):
        raise SystemExit("error: give exactly one of --suite NAME and --suite-file PATH")
    try:
        suite = get_suite(args.suite) if args.suite else load_suite_file(Path(args.suite_file))
    except KeyError as exc:
        raise SystemExit(f"error: {exc.args[0]}") from None
    except SuiteFileError as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.data_root:
        import os

        os.environ["PARTICLE_BENCH_DATA_ROOT"] = str(Path(args.data_root).expanduser())
    samplers = _csv(args.samplers)
    targets = _csv(args.targets)
    _check_names("sampler(s)", samplers, available_samplers())
    _check_names("target(s)", targets, available_targets())
    seeds = [int(s) for s in _csv(args.seeds)] if args.seeds else None
    inits = _csv(args.inits)
    if inits and any(i not in INIT_SCHEMES for i in inits):
        raise SystemExit(f"error: --inits must be among {INIT_SCHEMES}")
    for name, val in (
        ("--particles", args.particles),
        ("--steps", args.steps),
        ("--jobs", args.jobs),
        ("--threads", args.threads),
        ("--timeout", args.timeout),
    ):
        if val is not None and val <= 0:
            raise SystemExit(f"error: {name} must be positive")
    if args.curve_every < 0:
        raise SystemExit("error: --curve-every must be >= 0")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("error: --device cuda requested but torch sees no CUDA device")
    suite = suite.with_overrides(
        targets=tuple(targets) if targets else None,
        seeds=tuple(seeds) if seeds else None,
        inits=tuple(inits) if inits else None,
        n_particles=args.particles,
        n_steps=args.steps,
    )
    names = samplers or list(suite.samplers or available_samplers())
    _check_names("sampler(s)", names, available_samplers())
    try:
        grid = grid_from_options(args.param, suite.param_grid)
        check_grid(grid, names, {n: sampler_class(n).defaults for n in grid if n in names})
    except GridError as exc:
        raise SystemExit(f"error: {exc}") from None
    suite = suite.with_overrides(param_grid=grid)
    suite = with_tuned(suite, args.tuned, args.untuned)
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = run_suite(
        suite,
        out_root=Path(args.out),
        samplers=names,
        device=args.device,
        resume=args.resume,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
        command=command,
        jobs=args.jobs,
        scheduler=args.scheduler,
        imports=tuple(args.imports),
        threads=args.threads,
        timeout=args.timeout,
        curve_every=args.curve_every,
        save_particles=not args.no_particles,
    )
    print(path.read_text(encoding="utf-8"))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print("suites:")
    for s in SUITES.values():
        print(
            f"  {s.name:<10} {len(s.targets)} targets, {s.n_particles} particles, "
            f"{s.n_steps} steps, seeds {list(s.seeds)}: {s.description}"
        )
    print("samplers:")
    for name in available_samplers():
        cls = sampler_class(name)
        print(f"  {name:<20} needs {sorted(cls.needs)}; defaults {cls.defaults}")
    print("targets:")
    for name in available_targets():
        print(f"  {name}")
    print("metrics:")
    for name in available_metrics():
        print(f"  {name}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from benchmarks.report import write_report

    path = write_report(Path(args.out), figures=not args.no_figures)
    print(path)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    out_dir = Path(args.out) / args.suite
    report = load_rows(out_dir / ROWS_FILE)
    if not report.rows:
        raise SystemExit(f"error: no rows in {out_dir / ROWS_FILE}; run the suite first")
    if not report.clean:
        log(
            f"warning: {out_dir / ROWS_FILE} has damaged lines {report.bad_lines} "
            f"(truncated tail: {report.truncated_tail}); they are ignored"
        )
    command = f"python -m benchmarks leaderboard --suite {args.suite} --out {args.out}"
    path = write_leaderboard(report.rows, out_dir, args.suite, command)
    print(path.read_text(encoding="utf-8"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a suite and write its leaderboard")
    r.add_argument("--suite", help=f"one of {', '.join(SUITES)}")
    r.add_argument(
        "--suite-file", help="a TOML or JSON suite (see benchmarks/suite_file.py) instead"
    )
    r.add_argument("--samplers", help="comma-separated sampler names (default: all registered)")
    r.add_argument("--targets", help="comma-separated target names (default: the suite's)")
    r.add_argument("--seeds", help="comma-separated repetition seeds (default: the suite's)")
    r.add_argument("--inits", help="comma-separated init schemes: gaussian,cap")
    r.add_argument("--particles", type=int, help="particles per run (default: the suite's)")
    r.add_argument("--steps", type=int, help="steps per run (default: the suite's)")
    r.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:k]")
    r.add_argument(
        "--out",
        default=RUNS_ROOT,
        help=f"output root (default: {RUNS_ROOT}, ignored by git; --out results refreshes "
        "the committed results deliberately)",
    )
    r.add_argument("--data-root", help="folder with image data sets (latents suite)")
    r.add_argument("--resume", action="store_true", help="skip runs already recorded")
    r.add_argument(
        "--retry-failed",
        action="store_true",
        help="like --resume, but run again the runs recorded as failed or timeout",
    )
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="SAMPLER.KEY=V1,V2",
        help="sweep a sampler parameter (repeatable): one run per combination",
    )
    r.add_argument("--jobs", type=int, default=1, help="local worker processes (joblib/loky)")
    r.add_argument(
        "--scheduler", help="Dask scheduler address (e.g. tcp://host:8786): run units there"
    )
    r.add_argument(
        "--threads",
        type=int,
        help="torch and BLAS threads per run (default 1; parallelism comes from --jobs)",
    )
    r.add_argument(
        "--timeout",
        type=float,
        help="wall-time limit in seconds of fit + sampling per run (status 'timeout')",
    )
    r.add_argument(
        "--curve-every",
        type=int,
        default=0,
        metavar="K",
        help="evaluate the first metric every K steps along each run (curves.jsonl)",
    )
    r.add_argument("--no-particles", action="store_true", help="do not save final particles (.npz)")
    r.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, here and in every worker (registers extra "
        "targets/samplers/metrics); repeatable",
    )
    add_tuned_options(r)
    r.set_defaults(func=cmd_run)
    add_tune_parser(sub)
    sub.add_parser("list", help="list suites, samplers, targets, metrics").set_defaults(
        func=cmd_list
    )
    lb = sub.add_parser("leaderboard", help="rebuild a leaderboard from recorded rows")
    lb.add_argument("--suite", required=True)
    lb.add_argument("--out", default=RUNS_ROOT, help=f"output root (default: {RUNS_ROOT})")
    lb.set_defaults(func=cmd_leaderboard)
    rp = sub.add_parser("report", help="figures for every suite and a static index.html")
    rp.add_argument("--out", default="results", help="results root (default: results)")
    rp.add_argument("--no-figures", action="store_true", help="only rebuild the HTML")
    rp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130  # the finished rows and the leaderboard are already written
    except FolderLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
