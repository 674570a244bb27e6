"""Command line: ``python -m benchmarks {run,tune,verify,list,leaderboard,report}``.

python -m benchmarks run --suite manifolds      # one worker per core; summary at the end
python -m benchmarks run --suite smoke --samplers ula,svgd --seeds 0,1 --out /tmp/res
python -m benchmarks run --suite manifolds --jobs 2 --timeout 600 --curve-every 20
python -m benchmarks run --suite mixtures --param svgd.step_size=0.1,0.5 --param ula.score=auto,kde
python -m benchmarks run --suite-file my_suite.toml --scheduler tcp://10.0.0.1:8786
python -m benchmarks run --suite manifolds --resume
python -m benchmarks tune --suite manifolds --seeds 0,1,2   # -> runs/manifolds/tuned.json
python -m benchmarks list
python -m benchmarks leaderboard --suite manifolds
python -m benchmarks verify results/manifolds   # committed rows made again, bit for bit?
python -m benchmarks report            # figures + results/index.html for every suite

Exit status: 0 done; 2 refused command line; 3 (run) a requested target had every run
skipped because its data are not on disk (stderr names the files and the fix); 4 (verify)
a committed folder did not reproduce; 130 interrupted (finished rows are kept).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, NoReturn

import benchmarks  # noqa: F401  (checks that 'datasets' is this repo's package)
from benchmarks.execution.environment import environment_settings
from benchmarks.execution.locking import FolderLocked
from benchmarks.execution.provenance import command_line
from benchmarks.options import (
    MISSING_DATA_STATUS,
    RUNS_ROOT,
    USAGE_STATUS,
    UsageError,
    check_device,
    check_names,
    check_params,
    name_list,
    non_negative_int,
    positive_int,
    positive_seconds,
    seed_list,
    train_size,
)
from benchmarks.static_names import declared_samplers
from benchmarks.suites import INIT_SCHEMES, SUITES
from benchmarks.tuning_cli import (
    add_data_root_option,
    add_tune_parser,
    add_tuned_options,
    with_tuned,
)
from benchmarks.verify_cli import add_verify_parser
from common.progress import PROGRESS_ENV

# Everything that imports torch, POT, pandas or scikit-learn is imported inside the command
# that needs it, so that ``--help`` and ``list suites`` answer at once.


def _import_plugins(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise UsageError(f"--import {name}: {type(exc).__name__}: {exc}") from None


def _load_suite(args: argparse.Namespace) -> Any:
    """The suite of ``--suite`` or ``--suite-file``."""
    from benchmarks.suite_file import SuiteFileError, load_suite_file
    from benchmarks.suites import get_suite

    if (args.suite is None) == (args.suite_file is None):
        raise UsageError("give exactly one of --suite NAME and --suite-file PATH")
    try:
        return get_suite(args.suite) if args.suite else load_suite_file(Path(args.suite_file))
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    except SuiteFileError as exc:
        raise UsageError(str(exc)) from None


def _checked_suite(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The suite with the command line's overrides and its sampler names, every name,
    value and parameter checked against the registries (:class:`UsageError` otherwise)."""
    suite = _load_suite(args)  # before torch: a misspelt suite or sampler answers at once
    if not args.imports and "samplers.base" not in sys.modules:  # else the registry, below
        check_names("sampler(s)", args.samplers or (), declared_samplers())
    check_names("init scheme(s)", args.inits or (), INIT_SCHEMES)
    from benchmarks.execution.grid import GridError, check_grid, grid_from_options
    from datasets.base import available_targets
    from metrics.base import available_metrics
    from samplers.base import available_samplers, sampler_class

    where = args.suite_file or ""
    known_samplers = available_samplers()
    check_names("sampler(s)", args.samplers or (), known_samplers)
    check_names("target(s)", args.targets or (), available_targets())
    check_names("init scheme(s)", args.inits or (), INIT_SCHEMES)
    check_names("target(s)", suite.targets, available_targets(), where)
    check_names("metric(s)", suite.metrics, available_metrics(), where)
    check_names("init scheme(s)", suite.inits, INIT_SCHEMES, where)
    if suite.headline:
        check_names("headline metric", [suite.headline], available_metrics(), where)
    suite = suite.with_overrides(
        targets=args.targets,
        seeds=args.seeds,
        inits=args.inits,
        n_particles=args.particles,
        n_steps=args.steps,
    )
    names = list(args.samplers or suite.samplers or known_samplers)
    check_names("sampler(s)", names, known_samplers, where)
    rerun = [n for n in getattr(args, "rerun", "").split(",") if n]
    check_names("sampler(s) to --rerun", rerun, names, "this run's samplers")
    check_names("sampler(s)", suite.sampler_params, known_samplers, where)
    defaults = {n: sampler_class(n).defaults for n in names}
    try:
        grid = grid_from_options(args.param, suite.param_grid)
        check_grid(grid, names, defaults)
    except GridError as exc:
        raise UsageError(str(exc)) from None
    fixed = {n: dict(suite.sampler_params.get(n, {})) for n in names}
    if suite.use_smoke_params:
        fixed = {n: {**sampler_class(n).smoke_params, **fixed[n]} for n in names}
    check_params(grid, fixed, defaults)
    _check_sampler_rules(names, grid, fixed)
    return suite.with_overrides(param_grid=grid), names


def _check_sampler_rules(
    names: list[str], grid: dict[str, dict[str, tuple[Any, ...]]], fixed: dict[str, dict]
) -> None:
    """Every setting the run will make (fixed values with each grid combination) is built
    once, so each sampler's own parameter rules (``param_specs`` and its constructor's
    cross-checks) refuse a bad value before any run, not in every run's fit."""
    from benchmarks.execution.grid import expand
    from samplers.base import SamplerError, sampler_class

    for name in names:
        for combo in expand(grid.get(name)):
            try:
                sampler_class(name)(**{**fixed[name], **combo})
            except SamplerError as exc:
                raise UsageError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    if args.suite is not None and args.suite not in SUITES:  # before any import of torch
        _load_suite(args)
    _import_plugins(args.imports)
    suite, names = _checked_suite(args)
    if args.train_size is not None:
        suite = suite.with_overrides(n_train=args.train_size)
    check_device(args.device)
    suite = with_tuned(suite, args.tuned, args.untuned)
    argv = sys.argv[1:]
    if args.jobs is None:
        args.jobs = _announce_jobs(args, suite, names)
        if args.scheduler is None:  # the recorded command says how it ran (and is timed)
            argv = [*argv, "--jobs", str(args.jobs)]
    command = command_line(argv)
    settings = {PROGRESS_ENV: "0" if args.no_progress else None}  # every bar, workers too
    from datasets.latents import data_root_setting

    with environment_settings(settings), data_root_setting(args.data_root):
        path = _run(args, suite, names, command)
    return _finish(args, suite, path)


def _announce_jobs(args: argparse.Namespace, suite: Any, names: list[str]) -> int:
    """The default worker count (one per usable core, at most one per unit), said on
    stderr with the estimate of :func:`benchmarks.presentation.run_summary.estimate`."""
    from benchmarks.execution.runner import plan
    from benchmarks.execution.suite_run import log
    from benchmarks.presentation.run_summary import default_jobs, estimate, usable_cores
    from benchmarks.tuning_cli import TUNED_ROOT

    n_units = len(plan(suite, names, args.device))
    jobs = default_jobs(n_units)
    if args.scheduler is None:
        log(
            f"{n_units} units on {jobs} worker process(es) ({usable_cores()} usable cores, one "
            "thread per run; --jobs N to choose)"
        )
        line = estimate(Path(TUNED_ROOT) / suite.name, n_units, jobs)
        if line:
            log(line)
    return jobs


def _finish(args: argparse.Namespace, suite: Any, board: Path) -> int:
    """The end of a run: the summary (or ``--print-leaderboard``: the whole table) on
    stdout, missing data on stderr; :data:`MISSING_DATA_STATUS` when every run of a target
    named by ``--targets`` (or of every target) was skipped for missing data."""
    from benchmarks.execution.store import ROWS_FILE, load_rows
    from benchmarks.presentation.run_summary import end_summary, fully_missing, missing_data_report

    rows = load_rows(board.parent / ROWS_FILE).rows
    rows = [r for r in rows if r.get("target") in suite.targets]
    if args.print_leaderboard:
        print(board.read_text(encoding="utf-8"))
    else:
        print("\n".join(end_summary(board, rows, Path(args.out))))
    report = missing_data_report(rows)
    if report:
        print("\n".join(report), file=sys.stderr)
    requested = list(args.targets or ())
    gone = fully_missing(rows, requested or list(suite.targets))
    if gone and (requested or len(gone) == len(suite.targets)):
        print(
            f"error: no run of {', '.join(gone)} could start: its data are missing "
            f"(exit status {MISSING_DATA_STATUS})",
            file=sys.stderr,
        )
        return MISSING_DATA_STATUS
    return 0


def _run(args: argparse.Namespace, suite: Any, names: list[str], command: str) -> Path:
    from benchmarks.execution.suite_run import run_suite

    return run_suite(
        suite,
        out_root=Path(args.out),
        samplers=names,
        device=args.device,
        resume=args.resume,
        retry_failed=args.retry_failed,
        rerun=tuple(n for n in args.rerun.split(",") if n),
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


LIST_PARTS = ("suites", "samplers", "targets", "metrics")


def _list_part(text: str) -> str:
    """argparse type of ``list``'s parts (``choices`` cannot take an empty ``nargs='*'``)."""
    if text not in LIST_PARTS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(LIST_PARTS)}")
    return text


def _list_suites() -> None:
    print("suites:")
    for s in SUITES.values():
        print(
            f"  {s.name:<10} {len(s.targets)} targets, {s.n_particles} particles, "
            f"{s.n_steps} steps, seeds {list(s.seeds)}: {s.description}"
        )


def _list_samplers() -> None:
    from samplers.base import available_samplers, sampler_class

    print("samplers:")
    for name in available_samplers():
        cls = sampler_class(name)
        print(f"  {name:<20} needs {sorted(cls.needs)}; defaults {cls.defaults}")


def _list_targets() -> None:
    from datasets.base import available_targets

    print("targets:")
    for name in available_targets():
        print(f"  {name}")


def _list_metrics() -> None:
    from metrics.base import available_metrics

    print("metrics:")
    for name in available_metrics():
        print(f"  {name}")


def cmd_list(args: argparse.Namespace) -> int:
    """Print the asked parts; only the registries asked for are imported (``list suites``
    imports no torch)."""
    printers = {
        "suites": _list_suites,
        "samplers": _list_samplers,
        "targets": _list_targets,
        "metrics": _list_metrics,
    }
    for part in args.parts or LIST_PARTS:
        printers[part]()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from benchmarks.presentation.report import write_report

    path = write_report(Path(args.out), figures=not args.no_figures)
    print(path)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmarks.execution.environment import read_environment
    from benchmarks.execution.store import ROWS_FILE, load_rows
    from benchmarks.execution.suite_run import log
    from benchmarks.verdict.leaderboard import write_leaderboard

    out_dir = Path(args.out) / args.suite
    report = load_rows(out_dir / ROWS_FILE)
    if not report.rows:
        if not report.clean:  # a file, but nothing in it could be read
            raise UsageError(
                f"no readable rows in {out_dir / ROWS_FILE}: {'; '.join(report.problems())}"
            )
        raise UsageError(f"no rows in {out_dir / ROWS_FILE}; run the suite first")
    if not report.clean:
        log(f"warning: {out_dir / ROWS_FILE}: {'; '.join(report.problems())}; they are ignored")
    env = read_environment(out_dir)
    path = write_leaderboard(report.rows, out_dir, args.suite, None, env)
    print(path.read_text(encoding="utf-8"))
    if args.diagnostics:  # e.g. the latents' decoded grids, from the rows' saved particles
        from benchmarks.diagnostics import write_diagnostics
        from datasets.latents import data_root_setting

        with data_root_setting(args.data_root):
            written = write_diagnostics(out_dir, report.rows)
        log(f"diagnostics: {len(written)} files written in {out_dir}")
    return 0


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_STATUS, f"{self.prog}: error: {message} (see --help)\n")


def _add_run_parser(sub: Any) -> None:
    r = sub.add_parser(
        "run",
        help="run a suite and write its leaderboard",
        description="Run a suite and write its leaderboard. Exit status 3 when every run of "
        "a target named by --targets (or of every target) was skipped because its data are "
        "not on disk; stderr then names the files and the fix (--data-root, package).",
    )
    r.add_argument("--suite", help=f"one of {', '.join(SUITES)}")
    r.add_argument(
        "--suite-file", help="a TOML or JSON suite (see benchmarks/suite_file.py) instead"
    )
    r.add_argument(
        "--samplers", type=name_list, help="comma-separated sampler names (default: all)"
    )
    r.add_argument(
        "--targets", type=name_list, help="comma-separated target names (default: the suite's)"
    )
    r.add_argument(
        "--seeds", type=seed_list, help="comma-separated repetition seeds (default: the suite's)"
    )
    r.add_argument(
        "--inits",
        type=name_list,
        help=f"comma-separated init schemes, of {','.join(INIT_SCHEMES)} (default: the suite's)",
    )
    r.add_argument("--particles", type=positive_int, help="particles per run (default: suite's)")
    r.add_argument("--steps", type=positive_int, help="steps per run (default: the suite's)")
    r.add_argument(
        "--train-size",
        type=train_size,
        help="training split size: a positive integer, or 'all' = the whole training pool "
        "of image-latent targets (default: the suite's n_train)",
    )
    r.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:k]")
    r.add_argument(
        "--out",
        default=RUNS_ROOT,
        help=f"output root (default: {RUNS_ROOT}, ignored by git; --out results refreshes "
        "the committed results deliberately)",
    )
    add_data_root_option(r)
    r.add_argument("--resume", action="store_true", help="skip runs already recorded")
    r.add_argument(
        "--retry-failed",
        action="store_true",
        help="like --resume, but run again the runs recorded as failed or timeout",
    )
    r.add_argument(
        "--rerun",
        default="",
        metavar="SAMPLERS",
        help="like --resume, but run again every recorded run of these comma-separated "
        "samplers (their old rows are set aside): refresh the methods whose code changed",
    )
    r.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    r.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="SAMPLER.KEY=V1,V2",
        help="sweep a sampler parameter (repeatable): one run per combination",
    )
    r.add_argument(
        "--jobs",
        type=positive_int,
        help="local worker processes (joblib/loky; default: one per usable core, at most one "
        "per unit; every run uses one thread, see --threads); --jobs 1 runs serially",
    )
    r.add_argument(
        "--print-leaderboard",
        action="store_true",
        help="print the whole leaderboard at the end (default: a short summary: files, the "
        "top of the headline table, runs per status)",
    )
    r.add_argument(
        "--scheduler", help="Dask scheduler address (e.g. tcp://host:8786): run units there"
    )
    r.add_argument(
        "--threads",
        type=positive_int,
        help="torch and BLAS threads per run (default 1; parallelism comes from --jobs)",
    )
    r.add_argument(
        "--timeout",
        type=positive_seconds,
        help="wall-time limit in seconds of fit + sampling per run (status 'timeout')",
    )
    r.add_argument(
        "--curve-every",
        type=non_negative_int,
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


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_run_parser(sub)
    add_tune_parser(sub)
    add_verify_parser(sub)
    ls = sub.add_parser("list", help="list suites, samplers, targets, metrics")
    ls.add_argument(
        "parts",
        nargs="*",
        type=_list_part,
        metavar="{" + ",".join(LIST_PARTS) + "}",
        help="what to list (default: all; 'suites' alone needs no torch)",
    )
    ls.set_defaults(func=cmd_list)
    lb = sub.add_parser("leaderboard", help="rebuild a leaderboard from recorded rows")
    lb.add_argument("--suite", required=True)
    lb.add_argument("--out", default=RUNS_ROOT, help=f"output root (default: {RUNS_ROOT})")
    lb.add_argument(
        "--diagnostics",
        action="store_true",
        help="also rewrite the family diagnostics a run writes (the latents' decoded image "
        "grids and images.md) from the rows and their saved particles",
    )
    add_data_root_option(lb)
    lb.set_defaults(func=cmd_leaderboard)
    rp = sub.add_parser("report", help="figures for every suite and a static index.html")
    rp.add_argument("--out", default="results", help="results root (default: results)")
    rp.add_argument("--no-figures", action="store_true", help="only rebuild the HTML")
    rp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a refused option prints one ``error:`` line and returns 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_STATUS
    except KeyboardInterrupt:
        return 130  # the finished rows and the leaderboard are already written
    except FolderLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
