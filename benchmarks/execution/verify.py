"""Re-run part of a committed suite folder and compare its rows with the committed ones.

A suite folder (``results/<suite>``) keeps the suite it ran beside its rows (``suite.json``:
targets, budgets, seeds, metrics and the tuned settings), so the folder alone says how to
make its rows again. :func:`verify_folder` runs that suite again, for some seeds, into a
scratch folder, and :func:`compare_rows` pairs every re-run row with the committed row of
the same (configuration, metric) key:

- identical: every field but wall times and the environment (commit, BLAS, torch, POT,
  device) equal, ``value`` bit for bit (NaN equals NaN);
- close: only numbers differ (``value`` and those inside the info fields, e.g. the
  solver's eps or marginal error), each by at most ``atol + rtol * |committed|`` (a
  tolerance for another machine's rounding; 0 by default); or only ``value`` differs and
  the committed row was scored later from the saved float32 particles
  (``metric_info.rescored_from``), within :data:`RESCORED_ATOL`;
- different: anything else (the fields that differ are named);
- missing: committed for those seeds, samplers and targets, not made again (e.g. tuned
  settings that no longer plan the same configuration); extra: made again, not committed.

The final particles saved by both runs are compared too (same file name: same
configuration), array by array.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.execution.runner import EXACT, TIMING_FIELDS, without_timing
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.suites import SUITES, Suite
from benchmarks.verdict.agreement import VerdictComparison, compare_verdicts
from benchmarks.verdict.leaderboard import SUITE_FILE as SUITE_RECORD  # how the rows were made
from benchmarks.verdict.leaderboard import headline_of

#: fields that say where a row was made, not what it holds: reported apart, never compared
ENVIRONMENT_FIELDS = ("commit", "blas", "torch", "pot", "device")
#: a committed row scored later from the saved float32 particles (``run --resume`` after a
#: metric was added) differs from a float64 re-run by the particles' rounding (6e-8
#: relative): a nearest-neighbour distance of 0.05 at a radius of 1 moves ~1e-6, a z of
#: the copying test ~3e-5; 1e-3 bounds that with room, far below any reported digit's step
RESCORED_ATOL = 1e-3
#: marker file of a scratch folder made by :func:`verify_folder` (only such a folder is
#: emptied before a new verification)
SCRATCH_MARK = ".verify-scratch"

Key = tuple[str, str]  # (config_key, metric)


def suite_from_record(folder: Path) -> Suite:
    """The :class:`Suite` recorded in ``folder/suite.json`` (fields this code does not know
    are ignored; lists become tuples). ``ValueError`` when the file is absent or unreadable."""
    path = Path(folder) / SUITE_RECORD
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{folder}: no {SUITE_RECORD}; not a folder written by run") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ValueError(f"{path}: not a suite record (no name)")
    known = {f.name for f in fields(Suite)}
    kw = {k: v for k, v in raw.items() if k in known}
    for k in ("targets", "seeds", "inits", "metrics", "samplers"):
        if kw.get(k) is not None:
            kw[k] = tuple(kw[k])
    for sampler, axes in (kw.get("param_grid") or {}).items():
        kw["param_grid"][sampler] = {p: tuple(v) for p, v in axes.items()}
    return Suite(**kw)


def suite_folders(root: Path) -> list[Path]:
    """Every folder under ``root`` whose rows were made by a named suite
    (:data:`benchmarks.suites.SUITES`: the headline suites, tuned and untuned), sorted.
    Study runs with suite files of their own are refreshed by ``benchmarks.studies``."""
    found = []
    for rows in Path(root).rglob(ROWS_FILE):
        try:
            name = json.loads((rows.parent / SUITE_RECORD).read_text(encoding="utf-8"))["name"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if name in SUITES:
            found.append(rows.parent)
    return sorted(found)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of a row that two executions of its configuration must share."""
    out = without_timing(row)
    for k in (*ENVIRONMENT_FIELDS, *TIMING_FIELDS):
        out.pop(k, None)
    info = out.get("metric_info")
    if isinstance(info, dict):
        out["metric_info"] = {k: v for k, v in info.items() if k != "rescored_from"}
    return out


def _rescored(row: dict[str, Any]) -> bool:
    return "rescored_from" in str(row.get("metric_info", ""))


def _within(old: Any, new: Any, rtol: float, atol: float) -> bool:
    """``new`` equals ``old`` but for numbers (not booleans) that differ by at most
    ``atol + rtol * |old|``, at any depth of dicts and lists (the info fields: another
    machine's rounding moves an eps or a marginal error as it moves the value); NaN matches
    NaN; texts, booleans, keys and lengths must be equal."""
    if isinstance(old, bool) or isinstance(new, bool):
        return _same(old, new)
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        if _same(float(old), float(new)):
            return True
        return abs(float(new) - float(old)) <= atol + rtol * abs(float(old))
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(_within(old[k], new[k], rtol, atol) for k in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(
            _within(x, y, rtol, atol) for x, y in zip(old, new, strict=True)
        )
    return _same(old, new)


def _relative(new: Any, old: Any) -> float:
    """|new - old| / |old| (|new - old| where old is 0; 0 where both are equal or NaN)."""
    if not (isinstance(new, (int, float)) and isinstance(old, (int, float))):
        return math.inf
    if _same(float(new), float(old)):
        return 0.0
    diff = abs(float(new) - float(old))
    return diff / abs(float(old)) if old else diff


@dataclass
class RowComparison:
    """Re-run rows against committed rows, by (config_key, metric) key."""

    identical: int = 0
    close: list[tuple[Key, float]] = field(default_factory=list)  # (key, relative diff)
    different: list[tuple[Key, str]] = field(default_factory=list)  # (key, what differs)
    missing: list[Key] = field(default_factory=list)
    extra: list[Key] = field(default_factory=list)
    #: metric -> largest relative difference of ``value`` over the paired rows
    worst: dict[str, float] = field(default_factory=dict)
    #: committed environment values (torch, POT, device) that differ from the re-run's
    environment: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def compared(self) -> int:
        return self.identical + len(self.close) + len(self.different)

    @property
    def reproduced(self) -> bool:
        """Every committed row made again, identical or close, and nothing else made."""
        return self.compared > 0 and not (self.different or self.missing or self.extra)


def compare_rows(
    committed: Iterable[dict[str, Any]],
    rerun: Iterable[dict[str, Any]],
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> RowComparison:
    """Pair every re-run row with the committed row of its (config_key, metric) key and
    sort the pairs (see the module docstring). ``committed``: the committed rows of the
    configurations that were re-run (same seeds, samplers, targets)."""
    if rtol < 0 or atol < 0 or math.isnan(rtol) or math.isnan(atol):
        raise ValueError(f"tolerances must be >= 0, got rtol={rtol}, atol={atol}")
    old = {(r["config_key"], r["metric"]): r for r in committed}
    new = {(r["config_key"], r["metric"]): r for r in rerun}
    out = RowComparison()
    out.missing = sorted(set(old) - set(new))
    out.extra = sorted(set(new) - set(old))
    for key in sorted(set(old) & set(new)):
        a, b = _comparable(old[key]), _comparable(new[key])
        for k in ENVIRONMENT_FIELDS:
            was, now = old[key].get(k), new[key].get(k)
            if k not in ("blas", "commit") and was is not None and now is not None and was != now:
                out.environment.setdefault(k, (str(was), str(now)))
        rel = _relative(b.get("value"), a.get("value"))
        metric = key[1]
        if rel != math.inf:
            out.worst[metric] = max(out.worst.get(metric, 0.0), rel)
        others = sorted(
            k for k in set(a) | set(b) if k != "value" and not _same(a.get(k), b.get(k))
        )
        if not others and _same(a.get("value"), b.get("value")):
            out.identical += 1
            continue
        if rel != math.inf and all(_within(a.get(k), b.get(k), rtol, atol) for k in others):
            diff = abs(float(b["value"]) - float(a["value"]))
            if _within(a["value"], b["value"], rtol, atol) or (
                not others and _rescored(old[key]) and diff <= RESCORED_ATOL
            ):
                out.close.append((key, rel))
                continue
        moved = not _same(a.get("value"), b.get("value"))
        what = [f"value {a.get('value')!r} -> {b.get('value')!r}"] if moved else []
        for k in others:
            what += _field_differences(k, a.get(k), b.get(k))
        out.different.append((key, "; ".join(what)))
    return out


def _field_differences(name: str, old: Any, new: Any) -> list[str]:
    """'name old -> new' for a field, one entry per differing key of a dict field (e.g.
    ``sampler_info.diverged_reason``), long texts cut around where they part."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            f"{name}.{k} {_short(old.get(k), new.get(k))} -> {_short(new.get(k), old.get(k))}"
            for k in sorted(set(old) | set(new))
            if not _same(old.get(k), new.get(k))
        ]
    return [f"{name} {_short(old, new)} -> {_short(new, old)}"]


def _short(value: Any, other: Any, width: int = 70) -> str:
    """``value`` as JSON, cut to about ``width`` characters from a little before the first
    character where it differs from ``other``."""
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) <= width:
        return text
    twin = json.dumps(other, sort_keys=True, default=str)
    start = next(
        (i for i, (x, y) in enumerate(zip(text, twin, strict=False)) if x != y),
        min(len(text), len(twin)),
    )
    start = max(0, start - 15)
    cut = text[start : start + width]
    return ("..." if start else "") + cut + ("..." if start + width < len(text) else "")


def row_label(key: Key) -> str:
    """A readable name of a (config_key, metric) key: 'sampler target/init rep R [metric]'
    with its parameters; the raw key where it is not the harness's JSON."""
    config, metric = key
    try:
        c = json.loads(config)
        params = json.dumps(c.get("params") or {}, sort_keys=True)
        text = f"{c['sampler']} {c['target']}/{c['init']} rep {c['rep']}"
        return f"{text} {params} [{metric}]" if params != "{}" else f"{text} [{metric}]"
    except (ValueError, KeyError, TypeError):
        return f"{config} [{metric}]"


@dataclass
class ParticleComparison:
    """Saved final particles of the re-run against the committed ones (same file name)."""

    identical: int = 0
    #: (file, max |diff|): every array within the tolerance, not bit for bit
    close: list[tuple[str, float]] = field(default_factory=list)
    different: list[tuple[str, float]] = field(default_factory=list)  # (file, max |diff|)
    missing: list[str] = field(default_factory=list)  # committed file absent

    @property
    def compared(self) -> int:
        return self.identical + len(self.close) + len(self.different) + len(self.missing)


def compare_particles(
    committed: Path,
    rerun: Path,
    files: Iterable[str],
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> ParticleComparison:
    """Compare ``files`` (paths relative to each folder) array by array: identical when
    every array has the same shape and bits (NaN equals NaN); close when every element
    differs by at most ``atol + rtol * |committed|`` (the rows' tolerance)."""
    out = ParticleComparison()
    for name in sorted(set(files)):
        old_path, new_path = committed / name, rerun / name
        if not old_path.is_file() or not new_path.is_file():
            out.missing.append(name)
            continue
        with np.load(old_path) as a, np.load(new_path) as b:
            keys = sorted(set(a.files) | set(b.files))
            worst = 0.0
            same = set(a.files) == set(b.files)
            within = same
            for k in keys if same else ():
                x, y = a[k], b[k]
                if x.shape != y.shape:
                    same = within = False
                    worst = math.inf
                    break
                if not np.array_equal(x, y, equal_nan=True):
                    same = False
                    x64, y64 = x.astype(np.float64), y.astype(np.float64)
                    within = within and bool(
                        np.allclose(y64, x64, rtol=rtol, atol=atol, equal_nan=True)
                    )
                    with np.errstate(invalid="ignore"):
                        gap = np.nanmax(np.abs(x64 - y64))
                    worst = max(worst, float(gap))
        if same:
            out.identical += 1
        elif within and (rtol > 0 or atol > 0):
            out.close.append((name, worst))
        else:
            out.different.append((name, worst if keys else math.inf))
    return out


def _cell(row: dict[str, Any]) -> tuple[str, str]:
    """(configuration key without its seed, metric): the runs one leaderboard cell holds."""
    try:
        config = json.loads(row["config_key"])
        config.pop("rep", None)
        return json.dumps(config, sort_keys=True), row["metric"]
    except (ValueError, TypeError, AttributeError):
        return str(row["config_key"]), row["metric"]


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def seed_noise(
    committed: Iterable[dict[str, Any]], rerun: Iterable[dict[str, Any]]
) -> dict[tuple[str, str], float]:
    """(sampler, metric) -> the largest |re-run value - committed value| / sd, where sd is
    the standard deviation (ddof 1) of the committed values of the same configuration over
    its seeds: how far a re-run moved a value in units of the seed-to-seed spread the
    leaderboard's intervals are built from. ``committed``: the folder's rows of every seed;
    pairs without two finite values or a cell without two finite values are left out."""
    committed = list(committed)
    per_cell: dict[tuple[str, str], list[float]] = {}
    by_key = {}
    for r in committed:
        by_key[(r["config_key"], r["metric"])] = r
        v = _finite(r.get("value"))
        # the values the leaderboard's intervals use (``cells.usable_mask``)
        if v is not None and r.get("status") == "ok" and r.get("converged", True):
            per_cell.setdefault(_cell(r), []).append(v)
    sd = {k: float(np.std(v, ddof=1)) for k, v in per_cell.items() if len(v) > 1}
    out: dict[tuple[str, str], float] = {}
    for r in rerun:
        old = by_key.get((r["config_key"], r["metric"]))
        a = _finite(old.get("value")) if old else None
        b = _finite(r.get("value"))
        spread = sd.get(_cell(r), 0.0)
        if a is None or b is None or not spread > 0:
            continue
        key = (str(r.get("sampler")), str(r["metric"]))
        out[key] = max(out.get(key, 0.0), abs(b - a) / spread)
    return out


@dataclass
class FolderVerification:
    """What :func:`verify_folder` found for one committed folder."""

    folder: Path
    scratch: Path
    seeds: tuple[int, ...]
    rows: RowComparison
    particles: ParticleComparison
    seconds: float
    #: the commits named by the compared committed rows (oldest mention first)
    commits: tuple[str, ...] = ()
    #: the re-run's missing-data report for the targets whose data the committed run had and
    #: this machine lacks (the files, the fix): the folder could not be checked; [] if none
    data_missing: list[str] = field(default_factory=list)
    #: (sampler, metric) -> largest value move in units of the seed spread (:func:`seed_noise`)
    noise: dict[tuple[str, str], float] = field(default_factory=dict)
    #: the headline verdict read from the committed rows and with the re-run rows in their
    #: place; None where every compared row was identical (the same verdict by construction)
    verdict: VerdictComparison | None = None
    #: the suite's headline metric (what the leaderboard ranks)
    headline: str = ""

    @property
    def reproduced(self) -> bool:
        return (
            not self.data_missing
            and self.rows.reproduced
            and not (self.particles.different or self.particles.missing)
        )

    @property
    def verdict_held(self) -> bool:
        """The re-run made every committed row (values may differ) and the headline verdict
        reads the same with its rows: what must hold on another machine."""
        return (
            not self.data_missing
            and self.rows.compared > 0
            and not (self.rows.missing or self.rows.extra)
            and (self.verdict is None or self.verdict.same)
        )


def selected(
    rows: Iterable[dict[str, Any]],
    seeds: Sequence[int],
    samplers: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The rows of the given seeds (``rep``), samplers and targets (None: all)."""
    return [
        r
        for r in rows
        if r.get("rep") in seeds
        and (samplers is None or r.get("sampler") in samplers)
        and (targets is None or r.get("target") in targets)
    ]


def prepare_scratch(scratch: Path) -> None:
    """An empty scratch folder: one made by an earlier verification is emptied; any other
    non-empty folder is refused (``ValueError``), so nothing the user keeps is deleted."""
    if scratch.exists() and any(scratch.iterdir()):
        if not (scratch / SCRATCH_MARK).is_file():
            raise ValueError(
                f"{scratch} exists and was not made by verify; choose another --work folder"
            )
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / SCRATCH_MARK).write_text(
        "made by python -m benchmarks verify; emptied by the next verification\n",
        encoding="utf-8",
    )


def verify_folder(
    folder: Path,
    scratch: Path,
    *,
    seeds: Sequence[int] | None = None,
    samplers: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    device: str = "cpu",
    jobs: int = 1,
    progress: bool = False,
    rtol: float = 0.0,
    atol: float = 0.0,
    command: str = "",
) -> FolderVerification:
    """Run the suite recorded in ``folder`` again for ``seeds`` (default: its first seed),
    ``samplers`` (default: those with committed rows) and ``targets`` (default: all) into
    ``scratch`` (emptied first, see :func:`prepare_scratch`), then compare rows and saved
    particles with the committed ones."""
    import time

    from benchmarks.execution.suite_run import log, run_suite
    from benchmarks.presentation.run_summary import missing_data, missing_data_report

    folder = Path(folder)
    suite = suite_from_record(folder)
    loaded = load_rows(folder / ROWS_FILE)
    committed_rows = loaded.rows
    if not loaded.clean:  # a damaged committed row is missing from the comparison: say so
        log(f"warning: {folder / ROWS_FILE}: {'; '.join(loaded.problems())}")
    if not committed_rows:
        raise ValueError(f"{folder}: no readable rows in {ROWS_FILE}")
    seeds = tuple(seeds) if seeds else suite.seeds[:1]
    unknown = sorted(set(seeds) - set(suite.seeds))
    if unknown:
        raise ValueError(f"{folder}: seed(s) {unknown} not among the suite's {list(suite.seeds)}")
    ran = list(dict.fromkeys(r["sampler"] for r in committed_rows))
    names = [n for n in ran if (samplers is None or n in samplers) and n != EXACT]
    if not names and not (samplers is None or EXACT in samplers):
        raise ValueError(f"{folder}: none of the samplers {list(samplers or [])} has rows")
    chosen = tuple(t for t in suite.targets if targets is None or t in targets)
    if not chosen:
        raise ValueError(f"{folder}: none of the targets {list(targets or [])} is in its suite")
    prepare_scratch(scratch)
    t0 = time.perf_counter()
    run_suite(  # the plan always holds the exact row
        replace(suite, seeds=seeds, targets=chosen),
        out_root=scratch,
        samplers=names,
        device=device,
        progress=progress,
        command=command,
        jobs=jobs,
    )
    seconds = time.perf_counter() - t0
    rerun_rows = load_rows(scratch / suite.name / ROWS_FILE).rows
    old = selected(committed_rows, seeds, [EXACT, *names], chosen)
    rows = compare_rows(old, rerun_rows, rtol=rtol, atol=atol)
    extra = set(rows.extra)
    files = {
        r["particles_file"]
        for r in rerun_rows
        if r.get("particles_file") and (r["config_key"], r["metric"]) not in extra
    }
    particles = compare_particles(folder, scratch / suite.name, files, rtol=rtol, atol=atol)
    commits = tuple(dict.fromkeys(str(r.get("commit")) for r in old if r.get("commit")))
    # data the committed run had and this machine lacks: the folder cannot be checked here
    # (a target the committed run skipped for missing data too compares like any other)
    had = set(missing_data(old))
    lost = {t for t in missing_data(rerun_rows) if t not in had}
    missing = missing_data_report([r for r in rerun_rows if r.get("target") in lost])
    noise = seed_noise(committed_rows, rerun_rows)
    same = rows.identical == rows.compared and not (rows.missing or rows.extra)
    verdict = None if same else compare_verdicts(folder, committed_rows, rerun_rows)
    return FolderVerification(
        folder,
        scratch / suite.name,
        seeds,
        rows,
        particles,
        seconds,
        commits,
        missing,
        noise,
        verdict,
        headline_of(folder, committed_rows) or "",
    )
