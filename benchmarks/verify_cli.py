"""``python -m benchmarks verify``: do the committed rows come out again at this commit?

    python -m benchmarks verify results/manifolds                 # its first seed
    python -m benchmarks verify results/untuned/latents --seeds 0,1 --data-root DIR
    python -m benchmarks verify --all --seeds 0 --report results/harness/reproduction.md
    python -m benchmarks verify results/mixtures --rtol 1e-6      # another machine's rounding
    python -m benchmarks verify --all --seeds all --verdicts      # another CPU: calls hold?

Each folder's recorded suite (``suite.json``) runs again into a scratch folder under
``--work`` (default ``runs/verify``; emptied by the next verification) and its rows and
particles are compared with the committed ones (:mod:`benchmarks.execution.verify`).
Every folder's headline leaderboard is also read again with the re-run rows in place of
the committed ones: a cell's mark against exact, its flag marks or a paired test's call
that moved is named (:mod:`benchmarks.verdict.agreement`).
Exit status: 0 every folder reproduced (with --verdicts: every verdict held, whatever the
rows' values); 4 a row or a particle file differs, is missing or is extra, or (with
--verdicts) a verdict moved or a row is missing or extra (each named on stdout); 3 nothing
differed but a folder's data are not on disk (the files and the fix are named: --data-root,
package); 2 refused command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.options import (
    MISSING_DATA_STATUS,
    RUNS_ROOT,
    UsageError,
    check_device,
    existing_dir,
    name_list,
    positive_int,
    seeds_or_all,
    tolerance,
)
from benchmarks.tuning_cli import add_data_root_option
from common.progress import PROGRESS_ENV

if TYPE_CHECKING:
    from benchmarks.execution.verify import FolderVerification

#: exit status of ``verify`` when a folder did not reproduce
DIFFERS_STATUS = 4
#: default scratch root of ``verify`` (git-ignored)
VERIFY_ROOT = f"{RUNS_ROOT}/verify"


def add_verify_parser(sub: Any) -> None:
    v = sub.add_parser(
        "verify",
        help="run committed suite folders again and compare their rows",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("folders", nargs="*", type=existing_dir, help="suite folders (results/<suite>)")
    v.add_argument(
        "--all",
        action="store_true",
        help="every folder under --results made by a named suite (tuned and untuned); with "
        "--samplers, --targets or --seeds, those of its folders the names apply to",
    )
    v.add_argument("--results", default="results", help="root searched by --all (default: results)")
    v.add_argument(
        "--seeds",
        type=seeds_or_all,
        help="seeds to run again, or 'all' (default: each suite's first seed)",
    )
    v.add_argument("--samplers", type=name_list, help="only these samplers (default: all ran)")
    v.add_argument("--targets", type=name_list, help="only these targets (default: all)")
    v.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:k]")
    v.add_argument(
        "--jobs", type=positive_int, help="worker processes (default: one per usable core)"
    )
    add_data_root_option(v)
    v.add_argument(
        "--work",
        default=VERIFY_ROOT,
        help=f"scratch root of the re-runs (default: {VERIFY_ROOT}; emptied per folder by the "
        "next verification)",
    )
    v.add_argument(
        "--rtol", type=tolerance, default=0.0, help="relative tolerance on values (default 0)"
    )
    v.add_argument(
        "--atol", type=tolerance, default=0.0, help="absolute tolerance on values (default 0)"
    )
    v.add_argument(
        "--verdicts",
        action="store_true",
        help="judge by the verdict: exit 0 when every folder's headline verdict (marks, "
        "flags, paired calls) reads the same with the re-run rows, even where values "
        "differ (another CPU rounds differently; use --seeds all)",
    )
    v.add_argument("--report", type=Path, help="also write a markdown report here")
    v.add_argument("--no-progress", action="store_true", help="hide every progress bar")
    v.set_defaults(func=cmd_verify)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _folders(args: argparse.Namespace) -> list[Path]:
    from benchmarks.execution.verify import suite_folders

    folders = list(args.folders)
    if args.all:
        root = Path(args.results)
        if not root.is_dir():
            raise UsageError(f"--results {root}: not a folder")
        folders += suite_folders(root)
    if not folders:
        raise UsageError("name one or more suite folders, or --all")
    return list(dict.fromkeys(folders))


def cmd_verify(args: argparse.Namespace) -> int:
    from benchmarks.execution.environment import environment_settings, git_commit
    from benchmarks.execution.provenance import command_line, produced_by
    from benchmarks.execution.store import ROWS_FILE, atomic_write_text, file_slug, load_rows
    from benchmarks.execution.suite_run import log
    from benchmarks.execution.verify import suite_from_record, verify_folder
    from benchmarks.presentation.run_summary import usable_cores
    from benchmarks.presentation.verification import (
        difference_lines,
        load_average,
        markdown_report,
        summary_line,
    )
    from datasets.latents import data_root_setting

    folders = _folders(args)
    work = Path(args.work)
    problems: dict[Path, list[str]] = {}
    suites = {}
    for folder in folders:  # every refusal before any run
        if _inside(work, folder):
            raise UsageError(f"--work {work} is inside the committed folder {folder}")
        try:
            suite = suites[folder] = suite_from_record(folder)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        ran = {r.get("sampler") for r in load_rows(folder / ROWS_FILE).rows}
        said = problems.setdefault(folder, [])
        unknown = sorted(set(args.samplers or ()) - ran)
        if unknown:
            said.append(f"{folder}: no rows of sampler(s) {unknown}; it ran {sorted(ran)}")
        unknown = sorted(set(args.targets or ()) - set(suite.targets))
        if unknown:
            said.append(f"{folder}: target(s) {unknown} not in its suite {list(suite.targets)}")
        if args.seeds not in (None, "all") and set(args.seeds) - set(suite.seeds):
            said.append(
                f"{folder}: seed(s) {sorted(set(args.seeds) - set(suite.seeds))} not among "
                f"its suite's {list(suite.seeds)}"
            )
    named = [f for f in folders if f in args.folders]
    refused = [line for f in named for line in problems[f]]
    if refused:  # a folder named on the command line takes every option as it is
        raise UsageError(refused[0])
    # --all: the folders every option applies to; none at all is a refusal
    left_out = [f for f in folders if problems[f] and f not in named]
    folders = [f for f in folders if f not in left_out]
    if not folders:
        raise UsageError(f"no folder has all of the options' names: {problems[left_out[0]][0]}")
    if left_out:
        log(f"verify: {len(left_out)} folder(s) left out, the options name what they lack: "
            + ", ".join(str(f) for f in left_out))  # fmt: skip
    check_device(args.device)
    command = command_line(sys.argv[1:]) if sys.argv[1:2] == ["verify"] else ""
    head = produced_by(command or "python -m benchmarks verify", git_commit())
    load_before = load_average()
    results = []
    settings = {PROGRESS_ENV: "0" if args.no_progress else None}
    with environment_settings(settings), data_root_setting(args.data_root):
        for folder in folders:
            seeds = suites[folder].seeds if args.seeds == "all" else args.seeds
            try:
                found = verify_folder(
                    folder,
                    work / file_slug(str(folder)),
                    seeds=seeds,
                    samplers=args.samplers,
                    targets=args.targets,
                    device=args.device,
                    jobs=args.jobs or usable_cores(),
                    progress=not args.no_progress,
                    rtol=args.rtol,
                    atol=args.atol,
                    command=command,
                )
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            results.append(found)
            print(summary_line(found), flush=True)
            for line in difference_lines(found):
                print(line, flush=True)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        text = markdown_report(
            results, head, load_before=load_before, rtol=args.rtol, atol=args.atol
        )
        atomic_write_text(args.report, text)
        print(f"report: {args.report}")

    def passed(v: FolderVerification) -> bool:
        return v.verdict_held if args.verdicts else v.reproduced

    if all(passed(v) for v in results):
        return 0
    if all(passed(v) or v.data_missing for v in results):
        return MISSING_DATA_STATUS  # nothing differed; some folders could not be checked
    return DIFFERS_STATUS
