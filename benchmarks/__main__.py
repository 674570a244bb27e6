"""Command line: ``python -m benchmarks {run,list,leaderboard}``.

python -m benchmarks run --suite manifolds
python -m benchmarks run --suite smoke --samplers ula,svgd --seeds 0,1 --out /tmp/res
python -m benchmarks list
python -m benchmarks leaderboard --suite manifolds
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import benchmarks  # noqa: F401  (checks that 'datasets' is this repo's package)
from benchmarks.execution import log, run_suite
from benchmarks.leaderboard import write_leaderboard
from benchmarks.store import ROWS_FILE, load_rows
from benchmarks.suites import INIT_SCHEMES, SUITES, get_suite
from datasets.base import available_targets
from metrics.base import available_metrics
from samplers.base import available_samplers, sampler_class


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _check_names(kind: str, names: list[str] | None, known: list[str]) -> None:
    bad = [n for n in names or [] if n not in known]
    if bad:
        raise SystemExit(f"error: unknown {kind} {bad}; known: {', '.join(known)}")


def cmd_run(args: argparse.Namespace) -> int:
    try:
        suite = get_suite(args.suite)
    except KeyError as exc:
        raise SystemExit(f"error: {exc.args[0]}") from None
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
    for name, val in (("--particles", args.particles), ("--steps", args.steps)):
        if val is not None and val <= 0:
            raise SystemExit(f"error: {name} must be positive")
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
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = run_suite(
        suite,
        out_root=Path(args.out),
        samplers=samplers,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
        command=command,
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
    r.add_argument("--suite", required=True, help=f"one of {', '.join(SUITES)}")
    r.add_argument("--samplers", help="comma-separated sampler names (default: all registered)")
    r.add_argument("--targets", help="comma-separated target names (default: the suite's)")
    r.add_argument("--seeds", help="comma-separated repetition seeds (default: the suite's)")
    r.add_argument("--inits", help="comma-separated init schemes: gaussian,cap")
    r.add_argument("--particles", type=int, help="particles per run (default: the suite's)")
    r.add_argument("--steps", type=int, help="steps per run (default: the suite's)")
    r.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:k]")
    r.add_argument("--out", default="results", help="output root (default: results)")
    r.add_argument("--data-root", help="folder with image data sets (latents suite)")
    r.add_argument("--resume", action="store_true", help="skip runs already recorded")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r.set_defaults(func=cmd_run)
    sub.add_parser("list", help="list suites, samplers, targets, metrics").set_defaults(
        func=cmd_list
    )
    lb = sub.add_parser("leaderboard", help="rebuild a leaderboard from recorded rows")
    lb.add_argument("--suite", required=True)
    lb.add_argument("--out", default="results")
    lb.set_defaults(func=cmd_leaderboard)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
