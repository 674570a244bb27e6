"""The ``tune`` subcommand and the ``run --untuned / --tuned PATH`` options."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.execution.provenance import command_line
from benchmarks.options import (
    DEFAULT_BUDGET,
    RUNS_ROOT,
    TUNED_FILE,
    UsageError,
    check_names,
    existing_dir,
    name_list,
    positive_int,
    seed_list,
)
from benchmarks.suites import INIT_SCHEMES, SUITES, Suite, get_suite

#: held-out tuning repetitions (``benchmarks.tuning.TUNING_REPS``; kept here too so that
#: ``--help`` imports no torch)
TUNING_REPS = (1000, 1001, 1002)


def tuning_reps_of(path: Path) -> list[int]:
    """The repetitions a tuned.json was tuned on."""
    import json

    return [int(r) for r in json.loads(path.read_text(encoding="utf-8")).get("seeds", [])]


#: where ``run`` reads tuned settings (committed per suite); ``tune`` writes there only when
#: told ``--out results`` (its default is the git-ignored runs root, as for ``run``)
TUNED_ROOT = "results"


def add_data_root_option(parser: argparse.ArgumentParser) -> None:
    """``--data-root DIR`` on ``run`` and ``tune``."""
    parser.add_argument(
        "--data-root", type=existing_dir, help="folder with image data sets (latents suite)"
    )


def add_tuned_options(parser: argparse.ArgumentParser) -> None:
    """``--untuned`` and ``--tuned PATH`` on ``run``."""
    parser.add_argument(
        "--untuned",
        action="store_true",
        help="run every sampler with its defaults even when the suite has a tuned.json",
    )
    parser.add_argument(
        "--tuned",
        metavar="PATH",
        help=f"tuned settings to use (default: {TUNED_ROOT}/<suite>/{TUNED_FILE} when present)",
    )


def with_tuned(suite: Suite, path: str | None, untuned: bool) -> Suite:
    """``suite`` with the chosen settings of its tuned.json (rows record ``tuning``)."""
    if untuned:
        return suite
    file = Path(path) if path else Path(TUNED_ROOT) / suite.name / TUNED_FILE
    if not file.exists():
        if path:
            raise UsageError(f"no tuned settings at {file}")
        return suite
    from benchmarks.execution.suite_run import log
    from benchmarks.tuning import load_tuned

    try:
        tuned_on = tuning_reps_of(file)
        chosen = load_tuned(file)
        if not isinstance(chosen, dict):
            raise TypeError(f"'chosen' is a {type(chosen).__name__}, not an object")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{file} is not a tuned.json that tune wrote ({type(exc).__name__}: {exc})"
        ) from None
    overlap = sorted(set(tuned_on) & set(suite.seeds))
    if overlap:
        raise UsageError(
            f"{file} was tuned on repetitions {overlap}, which this run evaluates: a "
            "tuned setting would be scored on the draws it was chosen on. Retune on held-out "
            f"repetitions (python -m benchmarks tune --suite {suite.name}), or pass --untuned"
        )
    log(f"using tuned settings from {file} (--untuned for the defaults)")
    return suite.with_overrides(tuned=chosen, tuned_from=str(file))


def cmd_tune(args: argparse.Namespace) -> int:
    """``tune``: every name and value is checked before any fit (:class:`UsageError`, exit
    status 2, one ``error:`` line), as ``run`` checks its own."""
    from benchmarks.execution.suite_run import log
    from benchmarks.tuning import RetuneMismatch, tune_suite
    from datasets.base import available_targets
    from samplers.base import available_samplers

    try:
        suite = get_suite(args.suite)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    evaluated = tuple(suite.seeds)
    tuning_reps = tuple(args.seeds) if args.seeds else TUNING_REPS
    overlap = sorted(set(tuning_reps) & set(evaluated))
    if overlap:
        raise UsageError(
            f"--seeds {overlap} are repetitions the {suite.name} leaderboard evaluates; "
            f"tune on repetitions it never evaluates (default {','.join(map(str, TUNING_REPS))})"
        )
    check_names("target(s)", args.targets or (), available_targets())
    check_names("init scheme(s)", args.inits or (), INIT_SCHEMES)
    suite = suite.with_overrides(
        targets=args.targets,
        seeds=tuning_reps,
        inits=args.inits,
        n_particles=args.particles,
        n_steps=args.steps,
    )
    names = list(args.samplers or suite.samplers or available_samplers())
    retune = tuple(args.retune or ())
    check_names("sampler(s)", [*names, *retune], available_samplers())
    if (retune or args.continue_) and args.samplers:
        raise UsageError(
            "--retune and --continue keep the samplers of the tuned.json they continue; "
            "they take no --samplers"
        )
    from datasets.latents import data_root_setting

    written = Path(args.out) / suite.name / TUNED_FILE
    before = written.read_bytes() if written.exists() else None
    with data_root_setting(args.data_root):
        try:
            result = tune_suite(
                suite,
                names,
                Path(args.out) / suite.name,
                budget=args.budget,
                jobs=args.jobs,
                threads=args.threads,
                command=command_line(),
                log=log,
                evaluated_reps=evaluated,
                retune=retune,
                continued=args.continue_,
            )
        except RetuneMismatch as exc:
            flag = "--retune" if retune else "--continue"
            raise UsageError(f"{flag}: {exc}") from None
    unchanged = before is not None and written.read_bytes() == before
    print(f"{'unchanged' if unchanged else 'wrote'} {written} ({len(result['trials'])} trials)")
    if written.resolve() != (Path(TUNED_ROOT) / suite.name / TUNED_FILE).resolve():
        print(f"use it: python -m benchmarks run --suite {suite.name} --tuned {written}")
    return 0


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "tune", help="equal-budget tuning of every sampler on a validation split (tuned.json)"
    )
    t.add_argument("--suite", required=True, help=f"one of {', '.join(SUITES)}")
    t.add_argument(
        "--samplers", type=name_list, help="comma-separated sampler names (default: all)"
    )
    t.add_argument(
        "--retune",
        type=name_list,
        help="comma-separated samplers whose code changed: tune only these again and keep the "
        "other samplers' trials and choices of <out>/<suite>/tuned.json (same options)",
    )
    t.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="continue <out>/<suite>/tuned.json: reuse all its trials and run only what this "
        "code's tuning needs beyond them (the guard's readings of trials made before them, or "
        "repetitions added with --seeds; otherwise the same options)",
    )
    t.add_argument(
        "--targets", type=name_list, help="comma-separated target names (default: the suite's)"
    )
    t.add_argument(
        "--seeds",
        type=seed_list,
        help="comma-separated tuning repetitions, never ones the suite evaluates "
        f"(default: {','.join(map(str, TUNING_REPS))})",
    )
    t.add_argument(
        "--inits", type=name_list, help="comma-separated init schemes (default: the suite's)"
    )
    t.add_argument(
        "--particles", type=positive_int, help="particles per run (default: the suite's)"
    )
    t.add_argument("--steps", type=positive_int, help="steps per run (default: the suite's)")
    t.add_argument(
        "--budget",
        type=positive_int,
        default=DEFAULT_BUDGET,
        help="settings per sampler (default 8)",
    )
    t.add_argument(
        "--jobs", type=positive_int, default=1, help="fits scored in parallel processes (default 1)"
    )
    t.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch/BLAS threads per fit (default 1, as in run)",
    )
    t.add_argument(
        "--out",
        default=RUNS_ROOT,
        help=f"output root (default: {RUNS_ROOT}, ignored by git; --out {TUNED_ROOT} replaces "
        f"the committed {TUNED_ROOT}/<suite>/{TUNED_FILE} that run reads by default)",
    )
    add_data_root_option(t)
    t.set_defaults(func=cmd_tune)
