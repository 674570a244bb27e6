"""Execute a suite: one unit of work = (target, repetition, sampler, params).

A unit fits the sampler once on the training split, runs it from every init scheme's x0,
scores the particles with every metric and returns long-format rows. A sampler that
ignores x0 (``uses_x0 = False``) runs once, from the first init, and its rows are reused
for the other inits (see :mod:`benchmarks.execution.shared_runs`). Units are pure
functions of their :class:`RunSpec`, so they can run serially, in processes or on a cluster
and give the same rows. Failures become rows with a status and a message; they never stop
the suite.

Statuses: ``ok``, ``diverged``, ``failed`` (an exception), ``skipped`` (unmet needs or
missing data), ``start_outside_support`` (diverged or failed from an x0 with points
outside the target's support: the start's fault, not the sampler's) and ``timeout``
(fit + sampling exceeded ``RunSpec.timeout`` seconds).
The limit is enforced in three layers: (1) cooperative: ``samplers.base.iterate`` stops at
the first step boundary after the deadline (keeping the steps done) and
``samplers.base.check_deadline`` lets long fits stop; (2) a hard stop for code that never
checks: where the unit runs in a process's main thread (serial runs and ``--jobs`` loky
workers), a ``SIGALRM`` timer raises :class:`~samplers.base.DeadlineExceeded` inside the
running Python code ``HARD_GRACE`` after the deadline (a single long C call finishes
first); (3) post hoc: a run whose measured fit + sampling time exceeds the limit is marked
``timeout`` whatever its sampler did. On Dask workers (threads) layers 1 and 3 apply.

Besides rows, :func:`execute_unit` returns the final particles of each run (float32, saved
by the parent as ``particles/*.npz``) and, with ``RunSpec.curve_every = K``, the first
headline metric of the suite every K steps along the trajectory (``curves.jsonl``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from benchmarks.execution.data import PreparedTarget, prepare
from benchmarks.execution.environment import blas_summary, environment, git_commit
from benchmarks.execution.grid import expand
from benchmarks.execution.seeding import derive_seed
from benchmarks.execution.shared_runs import reuse_rows, run_inits
from benchmarks.execution.starts import label_bad_start
from benchmarks.execution.tuned_plan import tuned_groups
from benchmarks.suites import EXACT, Suite
from datasets.base import DataMissingError, get_target
from metrics.base import Metric, MetricContext, get_metric, metrics_for
from samplers.base import DeadlineExceeded, SampleResult, sampler_class

TIMEOUT = "timeout"
#: Row fields that legitimately differ between two executions of the same unit: wall
#: times, and the BLAS thread set-up of the process that ran it. Every other field, values
#: included, is identical bit for bit (serially, with ``--jobs`` and on a Dask cluster).
#: Inside the JSON fields ``sampler_info`` and ``metric_info`` keys ending in ``_seconds``
#: are wall times too (see :func:`without_timing`).
TIMING_FIELDS = ("fit_seconds", "sample_seconds", "blas")


@dataclass(frozen=True)
class RunSpec:
    """Everything one unit of work needs (picklable)."""

    suite: str
    target: str
    sampler: str
    rep: int
    n_particles: int
    n_steps: int
    n_train: int
    n_reference: int
    inits: tuple[str, ...]
    metrics: tuple[str, ...]
    suite_seed: int
    device: str = "cpu"
    params: dict[str, Any] = field(default_factory=dict)
    #: wall-time limit (seconds) of fit + sampling of each run; None = no limit
    timeout: float | None = None
    #: evaluate the headline metric every ``curve_every`` steps along the trajectory (0: off)
    curve_every: int = 0
    #: the suite's headline metric (curves; not part of a configuration's identity)
    headline: str = ""
    #: return the final particles (float32) for ``particles/*.npz``
    save_particles: bool = True
    #: "tuned" (params from the suite's tuned.json) or "default"; recorded in every row
    tuning: str = "default"

    def config_key(self, init: str) -> str:
        """Identity of one (unit, init) configuration, used by ``--resume``. Execution
        options (device, timeout, curves, particle files) are not part of it."""
        d = asdict(self)
        drop = ("inits", "device", "timeout", "curve_every", "save_particles", "headline", "tuning")
        for k in drop:
            d.pop(k)
        d["init"] = init
        return json.dumps(d, sort_keys=True, default=str)


def plan(
    suite: Suite,
    samplers: list[str],
    device: str = "cpu",
    *,
    timeout: float | None = None,
    curve_every: int = 0,
    save_particles: bool = True,
) -> list[RunSpec]:
    """All units of ``suite`` for ``samplers`` (plus the ``exact`` row), in a stable order:
    one unit per (target, seed, sampler, parameter combination of ``suite.param_grid``)."""
    specs = []
    for target in suite.targets:
        for rep in suite.seeds:
            for name in [EXACT, *samplers]:
                fixed = _params(suite, name)
                for combo in expand(suite.param_grid.get(name)) if name != EXACT else [{}]:
                    for tuning, inits, tuned in tuned_groups(suite, name, target):
                        specs.append(
                            RunSpec(
                                suite=suite.name,
                                target=target,
                                sampler=name,
                                rep=rep,
                                n_particles=suite.n_particles,
                                n_steps=suite.n_steps,
                                n_train=suite.n_train,
                                n_reference=suite.n_reference,
                                inits=inits,
                                metrics=suite.metrics,
                                suite_seed=suite.suite_seed,
                                device=device,
                                params={**fixed, **tuned, **combo},
                                timeout=timeout,
                                curve_every=curve_every,
                                save_particles=save_particles,
                                headline=suite.headline_metric,
                                tuning=tuning,
                            )
                        )
    return specs


def _params(suite: Suite, name: str) -> dict[str, Any]:
    """The suite's overrides of a sampler's defaults (smoke suites add its smoke_params)."""
    params: dict[str, Any] = {}
    if suite.use_smoke_params and name != EXACT:
        params.update(sampler_class(name).smoke_params)
    params.update(suite.sampler_params.get(name, {}))
    return params


#: seconds after the cooperative deadline at which the SIGALRM hard stop fires
HARD_GRACE = 1.0


@contextlib.contextmanager
def hard_deadline(deadline: float | None) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` in this thread's Python code at ``deadline +
    HARD_GRACE`` (a ``perf_counter`` value): via ``SIGALRM`` in a process's main thread,
    and via an asynchronous exception set by a timer thread elsewhere (Dask worker
    threads). A single long C call finishes first in both cases. No-op without a deadline."""
    if deadline is None:
        yield
        return
    main = threading.current_thread() is threading.main_thread()
    if not (main and hasattr(signal, "setitimer")):
        with _async_deadline(deadline + HARD_GRACE):
            yield
        return

    def fire(signum: int, frame: object) -> None:
        raise HardStop()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(deadline + HARD_GRACE - time.perf_counter(), 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class HardStop(DeadlineExceeded):
    """Raised into running code by the hard stop of :func:`hard_deadline` (a class with a
    default message, since an asynchronous exception is raised from its class)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("interrupted by the hard wall-time stop",)))


def limit_text(timeout: float) -> str:
    """How a timeout message names the limit: '3 s limit (--timeout 3)'."""
    return f"{timeout:g} s limit (--timeout {timeout:g})"


def timeout_message(stage: str, exc: BaseException, timeout: float) -> str:
    """'run: timed out after the 3 s limit (--timeout 3): <what stopped it>'."""
    why = str(exc) or type(exc).__name__
    return f"{stage}: timed out after the {limit_text(timeout)}: {why}"


@contextlib.contextmanager
def _async_deadline(when: float) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` in the calling thread at ``when`` (``perf_counter``)
    from a timer thread (``PyThreadState_SetAsyncExc``)."""
    target = ctypes.c_ulong(threading.get_ident())
    done = threading.Event()
    fired = threading.Event()

    def fire() -> None:
        if not done.wait(max(when - time.perf_counter(), 0.0)):
            fired.set()
            ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(HardStop))

    timer = threading.Thread(target=fire, name="hard-deadline", daemon=True)
    timer.start()
    try:
        yield
    finally:
        done.set()
        timer.join()
        if fired.is_set():  # raised after the block ended: clear it from this thread
            ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)


def without_timing(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without :data:`TIMING_FIELDS` and without ``*_seconds`` keys inside its JSON
    info fields: what must be equal between two executions of one configuration."""
    out = {k: v for k, v in row.items() if k not in TIMING_FIELDS}
    for k in ("sampler_info", "metric_info"):
        if isinstance(out.get(k), str):
            info = json.loads(out[k])
            out[k] = {a: b for a, b in info.items() if not str(a).endswith("_seconds")}
    return out


def particles_file(spec: RunSpec, init: str) -> str:
    """Relative path (inside the suite's folder) of one run's final particles."""
    digest = hashlib.sha256(spec.config_key(init).encode()).hexdigest()[:10]
    return f"particles/{spec.target}__{spec.sampler}__{init}__rep{spec.rep}__{digest}.npz"


@dataclass
class UnitOutput:
    """What one unit returns to the parent: its rows, its curve rows (metric along the
    trajectory) and arrays to save (relative path -> name -> float32 array)."""

    rows: list[dict[str, Any]]
    curves: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _base_row(spec: RunSpec, init: str) -> dict[str, Any]:
    env = environment(spec.device)
    return {
        "suite": spec.suite,
        "target": spec.target,
        "family": None,
        "sampler": spec.sampler,
        "params": json.dumps(spec.params, sort_keys=True, default=str),
        "tuning": spec.tuning,
        "init": init,
        "rep": spec.rep,
        "seed": derive_seed(spec.suite_seed, spec.target, spec.sampler, spec.rep),
        "n_particles": spec.n_particles,
        "n_steps": spec.n_steps,
        "n_train": spec.n_train,
        "n_reference": spec.n_reference,
        "config_key": spec.config_key(init),
        "status": "ok",
        "message": "",
        "particles_file": None,
        "steps_done": None,
        "fit_seconds": None,
        "sample_seconds": None,
        "score_source": None,
        "target_info": "{}",
        "sampler_info": "{}",
        "commit": env["commit"],
        "device": env["device"],
        "torch": env["torch"],
        "pot": env["pot"],
        "blas": blas_summary(),  # live: the thread limits of this run, not the process's
    }


def unit_metrics(spec: RunSpec, target: Any | None) -> list[Metric]:
    """The metrics scored for one unit: the suite's, then every metric that ``joins`` one of
    them, then every ``automatic`` metric whose needs the target meets (none of those two
    when the target could not be built): :func:`metrics.base.metrics_for`."""
    return metrics_for(spec.metrics, target)


def _metric_rows(
    base: dict[str, Any],
    particles: torch.Tensor | None,
    data: PreparedTarget | None,
    spec: RunSpec,
    only: set[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per metric (of ``only``, when given); NaN values with the failure recorded when
    particles are unusable. Every row names the configuration's full metric list
    (:data:`METRICS_FIELD`), so a resumed run can tell a configuration with a lost row from
    a complete one."""
    rows = []
    metrics = unit_metrics(spec, None if data is None else data.target)
    names = ",".join(m.name for m in metrics)
    for metric in metrics:
        if only is not None and metric.name not in only:
            continue
        row = {
            **base,
            METRICS_FIELD: names,
            "metric": metric.name,
            "value": float("nan"),
            "converged": False,
            "metric_info": "{}",
        }
        unmet = [] if data is None else metric.unmet_needs(data.target)
        if unmet and base["status"] == "ok":
            row["status"] = "skipped"
            row["message"] = f"{metric.name} needs {', '.join(unmet)}"
        elif particles is not None and data is not None and base["status"] == "ok":
            try:
                res = metric(_context(particles, data, spec))
                row["value"] = float(res.value)
                row["converged"] = bool(res.converged)
                row["metric_info"] = json.dumps(res.info, sort_keys=True, default=str)
            except Exception as exc:
                row["status"] = "metric_failed"
                row["message"] = f"{metric.name}: {type(exc).__name__}: {exc}"
                row["metric_info"] = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        rows.append(row)
    return rows


#: row field: comma-separated metrics of the row's configuration (all rows of one
#: configuration name the same list; automatic metrics depend on the target)
METRICS_FIELD = "config_metrics"
#: ``metric_info`` key of a row scored again from the saved particles by ``--resume``
RESCORED_FIELD = "rescored_from"
#: ``metric_info`` key: the commit of the code that scored such a row (the row's ``commit``
#: stays the run's, which made the particles)
RESCORED_AT_FIELD = "rescored_at"


def expected_metrics(rows: list[dict[str, Any]], spec: RunSpec) -> list[str]:
    """The metrics a configuration with recorded ``rows`` should have: the list its rows
    name (:data:`METRICS_FIELD`), else (rows written before that field) the suite's; for a
    finished run (every row ok) also the automatic metrics this code scores on its target
    that its rows lack (a metric added since: ``--resume`` scores it from the saved
    particles)."""
    names = list(spec.metrics)
    for row in rows:
        recorded = row.get(METRICS_FIELD)
        if isinstance(recorded, str) and recorded:
            names = recorded.split(",")
            break
    if not rows or any(r.get("status") != "ok" for r in rows):
        return names
    try:
        target = get_target(spec.target)  # what unit_metrics reads: the target's capabilities
    except Exception:  # data that cannot be built now: nothing new can be scored
        return names
    return names + [m.name for m in unit_metrics(spec, target) if m.name not in names]


def prepare_spec(spec: RunSpec) -> PreparedTarget:
    """The unit's data (splits, x0 per init, exact sample; cached by ``prepare``)."""
    return prepare(
        spec.target,
        spec.rep,
        spec.n_train,
        spec.n_reference,
        spec.n_particles,
        spec.inits,
        spec.suite_seed,
    )


def rescore(
    spec: RunSpec, row: dict[str, Any], particles: np.ndarray, metrics: list[str]
) -> list[dict[str, Any]]:
    """Rows of ``metrics`` for the configuration of ``row`` (an ok row of it), scored on its
    saved final ``particles`` (float32, as ``particles/*.npz`` keeps them): what
    ``--resume`` does when some metric rows of a finished run were lost. The values may
    differ from a fresh run's in the last digits (float32 particles); ``metric_info``
    records ``rescored_from`` (the particle file) and ``rescored_at`` (the scoring commit)."""
    data = prepare_spec(spec)
    drop = ("metric", "value", "converged", "metric_info", METRICS_FIELD)
    base = {k: v for k, v in row.items() if k not in drop}
    base.update(status="ok", message="")  # the run finished (its particles were saved)
    x = torch.as_tensor(particles).to(torch.device(spec.device))
    scoring_commit = git_commit()
    out = []
    for r in _metric_rows(base, x, data, spec, only=set(metrics)):
        info = json.loads(r["metric_info"])
        info[RESCORED_FIELD] = row.get("particles_file")
        info[RESCORED_AT_FIELD] = scoring_commit
        out.append({**r, "metric_info": json.dumps(info, sort_keys=True, default=str)})
    return out


def _context(particles: torch.Tensor, data: PreparedTarget, spec: RunSpec) -> MetricContext:
    """The metric context of one run: particles and the prepared target, on one device."""
    device = particles.device
    return MetricContext(
        particles=particles.to(torch.float64),
        reference=data.reference.to(device),
        train=data.train.to(device),
        scale=data.scale,
        seed=_metric_seed(spec),
        target=data.target,
    )


def _jsonable(info: dict[str, Any]) -> str:
    small = {}
    for k, v in info.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            small[k] = v
        elif isinstance(v, (list, tuple)) and len(v) <= 20:
            small[k] = list(v)
        elif isinstance(v, dict):
            small[k] = v
    return json.dumps(small, sort_keys=True, default=str)


def _metric_seed(spec: RunSpec) -> int:
    return derive_seed(spec.suite_seed, "metric", spec.target, spec.rep)


def _curve_rows(
    base: dict[str, Any], result: SampleResult, data: PreparedTarget, spec: RunSpec
) -> list[dict[str, Any]]:
    """The suite's headline metric on every recorded frame: (step, sampling seconds, value)
    rows."""
    if result.trajectory is None:
        return []
    metric = get_metric(spec.headline)
    steps = result.info.get("record_steps")
    frames = result.trajectory
    if steps is None or len(steps) != frames.shape[0]:
        steps = [i * spec.curve_every for i in range(frames.shape[0])]
    out = []
    for frame, step, seconds in zip(frames, steps, result.times, strict=False):
        row = {
            k: base[k]
            for k in ("suite", "target", "sampler", "params", "init", "rep", "config_key")
        }
        row.update(metric=metric.name, step=int(step), seconds=float(seconds))
        try:
            if not bool(torch.isfinite(frame).all()):
                raise ValueError("non-finite particles")
            res = metric(_context(frame, data, spec))
            row.update(value=float(res.value), converged=bool(res.converged))
        except Exception as exc:
            row.update(value=float("nan"), converged=False, error=f"{type(exc).__name__}: {exc}")
        out.append(row)
    return out


def execute(spec: RunSpec, progress: bool = False) -> list[dict[str, Any]]:
    """Run one unit and return its rows (one per init and metric). Never raises for a
    failing target, sampler or metric: the failure is recorded in the rows."""
    return execute_unit(spec, progress).rows


def failure_output(
    spec: RunSpec, status: str, message: str, fit_seconds: float | None = None
) -> UnitOutput:
    """The rows of a unit that failed as a whole (every init and metric: ``status``);
    ``fit_seconds``: time spent before the failure (timeouts record it)."""
    rows = []
    for init in spec.inits:
        base = _base_row(spec, init)
        base.update(status=status, message=message, fit_seconds=fit_seconds)
        rows.extend(_metric_rows(base, None, None, spec))
    return UnitOutput(rows)


def execute_unit(spec: RunSpec, progress: bool = False) -> UnitOutput:
    """Run one unit: rows, curve rows and final particles (see :class:`UnitOutput`)."""
    try:
        data = prepare_spec(spec)
    except Exception as exc:
        missing = isinstance(exc, DataMissingError)
        return failure_output(
            spec,
            "skipped" if missing else "failed",
            f"{'data missing: ' if missing else ''}{type(exc).__name__}: {exc}",
        )
    out = UnitOutput(rows=[])
    bases = {init: _base_row(spec, init) for init in spec.inits}
    target_info = json.dumps(data.target.info, sort_keys=True, default=str)
    for base in bases.values():
        base.update(family=data.target.family, target_info=target_info)
    device = torch.device(spec.device)

    def save(base: dict[str, Any], init: str, particles: torch.Tensor, **extra: Any) -> None:
        if spec.save_particles:
            rel = particles_file(spec, init)
            arrays = {"particles": particles.detach().cpu().to(torch.float32).numpy()}
            arrays.update({k: v.detach().cpu().to(torch.float32).numpy() for k, v in extra.items()})
            out.arrays[rel] = arrays
            base["particles_file"] = rel

    if spec.sampler == EXACT:
        for init, base in bases.items():
            base.update(steps_done=0, fit_seconds=0.0, sample_seconds=0.0)
            save(base, init, data.exact, reference=data.reference)
            out.rows.extend(_metric_rows(base, data.exact.to(device), data, spec))
        return out

    deadline = None if spec.timeout is None else time.perf_counter() + spec.timeout
    fit_start = time.perf_counter()
    try:
        cls = sampler_class(spec.sampler)
        unmet = cls.unmet_needs(data.target) + cls.unmet_budget(
            int(data.train.shape[0]), int(spec.n_particles)
        )
        if unmet:
            return failure_output(spec, "skipped", f"{spec.sampler} needs {', '.join(unmet)}")
        sampler = cls(**spec.params)
        with hard_deadline(deadline):
            sampler.fit(data.train.to(device), data.target, deadline=deadline)
    except DeadlineExceeded as exc:
        spent = time.perf_counter() - fit_start
        return failure_output(spec, TIMEOUT, timeout_message("fit", exc, spec.timeout), spent)
    except Exception as exc:
        return failure_output(spec, "failed", f"fit: {type(exc).__name__}: {exc} | {_where(exc)}")
    if spec.timeout is not None and sampler.fit_seconds > spec.timeout:
        return failure_output(
            spec,
            TIMEOUT,
            f"fit took {sampler.fit_seconds:.1f} s > {limit_text(spec.timeout)}",
            sampler.fit_seconds,
        )

    ran = run_inits(spec.sampler, spec.inits)  # one init when the sampler ignores x0
    for init, base in bases.items():
        if init not in ran:
            continue
        particles = None
        try:
            t0 = time.perf_counter()
            run_deadline = None if spec.timeout is None else t0 + spec.timeout - sampler.fit_seconds
            with hard_deadline(run_deadline):
                result: SampleResult = sampler.run(
                    data.x0[init].to(device),
                    spec.n_steps,
                    seed=base["seed"],
                    progress=progress,
                    record_every=spec.curve_every,
                    deadline=run_deadline,
                )
            wall = time.perf_counter() - t0
            info = dict(result.info)
            info.pop("record_steps", None)
            sample_seconds = info.get("sample_seconds", wall)
            base.update(
                steps_done=info.get("steps"),
                fit_seconds=sampler.fit_seconds,
                sample_seconds=sample_seconds,
                score_source=info.get("score_source"),
                sampler_info=_jsonable(info),
            )
            over = spec.timeout is not None and sampler.fit_seconds + sample_seconds > spec.timeout
            if result.diverged:
                base.update(status="diverged", message=str(info.get("diverged_reason", "")))
            elif result.timed_out or over:
                base.update(
                    status=TIMEOUT,
                    message=str(
                        info.get("timeout_reason")
                        or f"fit + sampling took {sampler.fit_seconds + sample_seconds:.1f} s"
                    )
                    + f" ({limit_text(spec.timeout)})",
                )
            elif (factor := scale_excess(result.particles, data.reference)) > SCALE_GUARD:
                base.update(
                    status="diverged",
                    message=f"particles reach {factor:.3g}x the reference's radius "
                    f"(limit {SCALE_GUARD:g}x); not scored",
                )
            else:
                particles = result.particles
                save(base, init, particles)
            if spec.curve_every > 0:
                out.curves.extend(_curve_rows(base, result, data, spec))
        except DeadlineExceeded as exc:
            base.update(
                status=TIMEOUT,
                message=timeout_message("run", exc, spec.timeout),
                sample_seconds=time.perf_counter() - t0,
                fit_seconds=sampler.fit_seconds,
            )
        except Exception as exc:
            base.update(
                status="failed", message=f"run: {type(exc).__name__}: {exc} | {_where(exc)}"
            )
        label_bad_start(base, data.target, data.x0[init])
        out.rows.extend(_metric_rows(base, particles, data, spec))
    if len(ran) < len(bases):
        out.rows.extend(reuse_rows(out.rows, ran[0], bases))
    return out


#: a run whose particles reach beyond this many times the reference's radius (largest
#: distance of a reference point from the reference mean) is recorded as ``diverged``
#: instead of being scored: no metric is meaningful there, and the Sinkhorn cost range
#: (cost / eps up to ~1e6) would send the solver into thousands of log-domain iterations
SCALE_GUARD = 10.0


def scale_excess(particles: torch.Tensor, reference: torch.Tensor) -> float:
    """max_i |x_i - mean(ref)| / max_j |ref_j - mean(ref)| (inf for non-finite particles)."""
    ref = reference.to(particles.device, torch.float64)
    centre = ref.mean(0)
    radius = float((ref - centre).norm(dim=1).max())
    x = particles.to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        return float("inf")
    return float((x - centre).norm(dim=1).max()) / max(radius, 1e-300)


def _where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno}" if tb else ""
