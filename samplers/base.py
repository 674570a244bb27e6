"""The one sampler interface: :class:`Sampler`, :class:`SampleResult` and the registry.

A sampler is fitted once on the training split of a target (``fit``), then moves ``m``
initial particles ``x0`` of shape ``(m, d)`` for ``n_steps`` steps (``run``). Adding a
method = one module in ``samplers/`` whose class is decorated with ``@register_sampler`` and
implements ``_fit`` and either ``_step(x, t, gen)`` (the base class runs the loop) or
``_run(run: RunRequest)`` (a method with its own loop or bookkeeping).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from common.interop import as_torch
from common.progress import finish, show
from common.random import is_seed, make_generator
from common.registry import Registry
from datasets.base import Target
from samplers.params import ParamSpec, param_errors

#: a particle coordinate beyond this (standardised units: the data sit within ~10) means the
#: run diverged (``iterate``'s default; the transport samplers set a tighter ``max_abs``)
DIVERGED_ABS = 1e8


class SamplerError(ValueError):
    """Bad input to a sampler (NaN, wrong shape/dtype, unfitted, unmet requirement)."""


class DeadlineExceeded(RuntimeError):
    """Raised by :func:`check_deadline` when the current wall-time limit has passed."""


#: ``time.perf_counter()`` value after which the current run must stop (None: no limit).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sampler_deadline", default=None
)


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Within the block, :func:`iterate` stops at ``deadline`` (a ``perf_counter`` value)
    and :func:`check_deadline` raises after it. Per thread/context, so it is safe under
    thread-based workers."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline(what: str = "") -> None:
    """For long loops outside :func:`iterate` (e.g. training in ``_fit``): raise
    :class:`DeadlineExceeded` once the wall-time limit of the current run has passed."""
    dl = _DEADLINE.get()
    if dl is not None and time.perf_counter() >= dl:
        raise DeadlineExceeded(f"wall-time limit reached{' during ' + what if what else ''}")


@dataclass(frozen=True)
class SampleResult:
    """What every sampler returns.

    particles:  (m, d) final particles, on the device of the run.
    trajectory: (T, m, d) recorded particles when ``record_every > 0``, else None.
    times:      (T,) cumulative seconds at each recorded step (metrics excluded).
    info:       steps, sample_seconds, diverged, params used and method-specific facts.
    """

    particles: Tensor
    trajectory: Tensor | None
    times: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return bool(self.info.get("diverged", False))

    @property
    def timed_out(self) -> bool:
        return bool(self.info.get("timed_out", False))

    @property
    def flags(self) -> list[str]:
        """What the run says about itself (``info["flags"]``, e.g. a step safeguard that
        decided too many moves); [] when it says nothing."""
        flags = self.info.get("flags")
        return [str(f) for f in flags] if isinstance(flags, (list, tuple)) else []

    def with_info(self, **extra: Any) -> SampleResult:
        """The same result with ``extra`` added to (or replacing entries of) ``info``."""
        return SampleResult(self.particles, self.trajectory, self.times, {**self.info, **extra})


StepFn = Callable[[Tensor, int], Tensor]


@dataclass(frozen=True)
class RunRequest:
    """One validated run, as :meth:`Sampler.run` hands it to a method's ``_run``.

    x0: (m, d) initial particles; n_steps >= 0; gen: the run's seeded generator (on the CPU
    whatever x0's device: draw with ``common.random``, which moves each draw to x0's device);
    record_every: record every k-th state in the trajectory (0: none); progress: show a tqdm
    bar; sampler: the method's name (labels the bar and error messages).
    """

    x0: Tensor
    n_steps: int
    gen: torch.Generator
    record_every: int = 0
    progress: bool = False
    sampler: str = ""

    def iterate(
        self,
        step: StepFn,
        x0: Tensor | None = None,
        n_steps: int | None = None,
        *,
        max_abs: float = DIVERGED_ABS,
    ) -> SampleResult:
        """:func:`iterate` ``step`` with this run's recording and progress settings, from
        ``x0`` for ``n_steps`` steps (default: the request's own)."""
        return iterate(
            step,
            self.x0 if x0 is None else x0,
            self.n_steps if n_steps is None else n_steps,
            record_every=self.record_every,
            progress=self.progress,
            desc=self.sampler,
            max_abs=max_abs,
        )


def check_particles(x: Tensor, dim: int | None, what: str = "x0") -> Tensor:
    """Validate particles: a float32/float64 ``(m, d)`` tensor, m > 0, all finite, d == ``dim``."""
    if not isinstance(x, Tensor):
        raise SamplerError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise SamplerError(f"{what} must have shape (m, d), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise SamplerError(f"{what} has zero particles; need at least one")
    if dim is not None and x.shape[1] != dim:
        raise SamplerError(f"{what} has dimension {x.shape[1]}, the fitted target has {dim}")
    if x.dtype not in (torch.float32, torch.float64):  # half precision: no CPU cdist, and
        # a kernel bandwidth or a step of 1e-3 is at float16's resolution
        raise SamplerError(f"{what} must be float32 or float64, got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise SamplerError(f"{what} contains NaN or infinite values")
    return x


class Sampler(ABC):
    """Base class of every method.

    Class attributes: ``name`` (registry key), ``needs`` (subset of {"samples", "score",
    "log_prob"}), ``defaults`` (documented default parameters; ``__init__`` accepts
    exactly these keys), ``param_specs`` (what each parameter may be, see
    :mod:`samplers.params`; checked in ``__init__``), ``smoke_params`` (cheap overrides for
    contract tests and the ``smoke`` suite), ``search_space`` (parameter -> candidate values
    the tuner draws from, see ``benchmarks.tuning``), ``role`` ("method" or "baseline": a
    trivial baseline every method must beat) and ``uses_x0`` (False: the result does not
    depend on x0's values, so the harness runs it once per (target, seed)). Subclasses
    implement :meth:`_fit`, and :meth:`_step` (one update x_t (m, d) -> x_{t+1} (m, d);
    the base :meth:`_run` loops it with :func:`iterate`) or :meth:`_run` (own loop or
    extra bookkeeping, given one :class:`RunRequest`).
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset({"samples"})
    defaults: ClassVar[dict[str, Any]] = {}
    #: overrides that make a run seconds-long (contract tests and the ``smoke`` suite)
    smoke_params: ClassVar[dict[str, Any]] = {}
    #: allowed values of each parameter (every key of ``defaults`` has one)
    param_specs: ClassVar[dict[str, ParamSpec]] = {}
    #: parameter -> candidate values for equal-budget tuning (small; defaults are always tried)
    search_space: ClassVar[dict[str, tuple[Any, ...]]] = {}
    #: how far tuning may widen a numeric knob of ``search_space`` past its edges, (lo, hi):
    #: the method's stability or budget limit (``benchmarks.search_widening``); a knob not
    #: listed is never widened (its edge state reads "no declared limit")
    search_limits: ClassVar[dict[str, tuple[float, float]]] = {}
    #: parameters of a learned score model (the KDE's bandwidth): inert on a target with an
    #: exact score, so the tuner leaves them out there (see :meth:`tuning_space`)
    score_model_params: ClassVar[tuple[str, ...]] = ()
    #: "method", or "baseline" for trivial reference methods (kmeans, kde, train_subsample)
    role: ClassVar[str] = "method"
    #: False when the result ignores x0's values (only its shape, device and dtype are used)
    uses_x0: ClassVar[bool] = True

    @classmethod
    def tuning_space(
        cls, target: Target, params: dict[str, Any] | None = None
    ) -> dict[str, tuple[Any, ...]]:
        """The part of ``search_space`` that can change a run on ``target`` with ``params``:
        ``score_model_params`` are dropped when the target has an exact score and the score
        source (``params["score"]``, default "auto") would use it, so no trial of the equal
        budget is spent on a knob that does nothing."""
        merged = {**cls.defaults, **(params or {})}
        exact = target.has_score and merged.get("score", "auto") in ("auto", "exact")
        return {
            k: v for k, v in cls.search_space.items() if not (exact and k in cls.score_model_params)
        }

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise SamplerError(
                f"{self.name}: unknown parameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults)}"
            )
        # NumPy scalars (np.float32(0.1), np.int64(3)) become the Python numbers they hold,
        # so the rules below read them as numbers and the rows record plain JSON values
        params = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
        self.params: dict[str, Any] = {**self.defaults, **params}
        errors = param_errors(self.param_specs, self.params)
        if errors:
            raise SamplerError(f"{self.name}: " + "; ".join(errors))
        self.target: Target | None = None
        self.train: Tensor | None = None
        self.fit_seconds: float = 0.0
        self.fit_info: dict[str, Any] = {}

    # -- public API ----------------------------------------------------------------------
    def fit(self, train: Tensor, target: Target, *, deadline: float | None = None) -> Sampler:
        """Prepare the method from the training split ``train`` (N, d) and the target.

        ``train`` may be a NumPy or CuPy (DLPack) array. ``deadline`` (a
        ``time.perf_counter()`` value) is seen by :func:`check_deadline` in long fits."""
        if not isinstance(target, Target):
            raise SamplerError(f"{self.name}: target must be a Target, got {type(target).__name__}")
        train = as_torch(train)
        if not isinstance(train, Tensor) or train.ndim != 2 or train.shape[0] < 2:
            shape = tuple(train.shape) if isinstance(train, Tensor) else type(train).__name__
            raise SamplerError(f"{self.name}: train must be an (N >= 2, d) tensor, got {shape}")
        check_particles(train, target.dim, what="train")
        missing = self.unmet_needs(target)
        if missing:
            raise SamplerError(f"{self.name}: target {target.name!r} lacks {missing}")
        if bool((train == train[:1]).all()):
            raise SamplerError(
                f"{self.name}: all {train.shape[0]} training points are equal: no spread to "
                "fit a kernel bandwidth, a score or a transport to"
            )
        self.target = target
        self.train = train
        t0 = time.perf_counter()
        with deadline_scope(deadline):
            self.fit_info = dict(self._fit(train, target) or {})
        self.fit_seconds = time.perf_counter() - t0
        return self

    def run(
        self,
        x0: Tensor,
        n_steps: int,
        *,
        seed: int,
        record_every: int = 0,
        progress: bool = False,
        deadline: float | None = None,
    ) -> SampleResult:
        """Move particles ``x0`` (m, d) for ``n_steps`` steps; deterministic given ``seed``.

        ``x0`` may be a NumPy or CuPy (DLPack) array. With ``deadline`` (a
        ``time.perf_counter()`` value), :func:`iterate` stops at the first step boundary after
        it and the result has ``info['timed_out'] = True`` and the steps done."""
        if self.target is None:
            raise SamplerError(f"{self.name}: call fit(train, target) before run()")
        x0 = as_torch(x0)
        check_particles(x0, self.target.dim)
        for what, value in (("n_steps", n_steps), ("record_every", record_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SamplerError(f"{self.name}: {what} must be an int >= 0, got {value!r}")
        if not is_seed(seed):
            raise SamplerError(f"{self.name}: seed must be an int in [0, 2**32 - 1], got {seed!r}")
        gen = make_generator(int(seed))  # on the CPU whatever x0's device: see common.random
        request = RunRequest(x0, n_steps, gen, record_every, progress, self.name)
        t0 = time.perf_counter()
        with deadline_scope(deadline):
            result = self._run(request)
        info = {
            "sampler": self.name,
            "params": dict(self.params),
            "fit_seconds": self.fit_seconds,
            "sample_seconds": time.perf_counter() - t0,
            **self.fit_info,
            **result.info,
        }
        return SampleResult(result.particles, result.trajectory, result.times, info)

    @classmethod
    def unmet_needs(cls, target: Target) -> list[str]:
        """Requirements of this method the target cannot meet (empty when runnable)."""
        missing = []
        if "log_prob" in cls.needs and not target.has_log_prob:
            missing.append("a log density")
        if "score_exact" in cls.needs and not target.has_score:
            missing.append("an analytic score")
        return missing

    @classmethod
    def unmet_budget(cls, n_train: int, n_particles: int) -> list[str]:
        """Budget requirements this method cannot meet for ``n_particles`` particles from
        ``n_train`` training points (empty when runnable). Most methods generate any m; the
        copying and quantising baselines need m <= N (see ``TrainingSplitBaseline``). The
        runner records an unmet budget as ``skipped`` (shown apart, never ranked)."""
        return []

    # -- to implement --------------------------------------------------------------------
    @abstractmethod
    def _fit(self, train: Tensor, target: Target) -> dict[str, Any] | None:
        """Method-specific fitting; returns facts to record (e.g. bandwidth, n_modes)."""

    def _run(self, run: RunRequest) -> SampleResult:
        """Method-specific sampling (inputs already validated). Default: the shared loop
        x <- self._step(x, t, run.gen) for t = 0..n_steps-1 (a method with per-run state
        resets it in ``_run`` and then calls ``super()._run(run)``)."""
        return run.iterate(lambda x, t: self._step(x, t, run.gen))

    def _step(self, x: Tensor, t: int, gen: torch.Generator) -> Tensor:
        """One update of the default loop: particles x (m, d) at step t -> (m, d); random
        draws from ``gen`` only. A method overrides this or :meth:`_run`."""
        raise SamplerError(f"{self.name}: a sampler must define _step(x, t, gen) or _run(run)")


def divergence_reason(x: Tensor, max_abs: float = DIVERGED_ABS) -> str | None:
    """Why particles x (m, d) count as diverged (a non-finite value or |x| > ``max_abs``), or
    None. One rule for the step loop (:func:`iterate`) and the one-shot samplers."""
    if not bool(torch.isfinite(x).all()):
        return "non-finite particles"
    if float(x.abs().max()) > max_abs:
        return f"|x| > {max_abs:g} particles"
    return None


def iterate(
    step: StepFn,
    x0: Tensor,
    n_steps: int,
    *,
    record_every: int = 0,
    progress: bool = False,
    desc: str = "",
    max_abs: float = DIVERGED_ABS,
    deadline: float | None = None,
) -> SampleResult:
    """Run ``x <- step(x, t)`` for t = 0..n_steps-1 with the shared bookkeeping.

    Records every ``record_every``-th state (and the last) in ``trajectory`` (T, m, d) with
    cumulative wall times (their step numbers in ``info['record_steps']``), shows a tqdm bar
    when ``progress``, and stops early with ``info['diverged'] = True`` when a particle
    becomes non-finite or exceeds ``max_abs``, or with ``info['timed_out'] = True`` at the
    first step boundary after ``deadline`` (a ``time.perf_counter()`` value; default: the
    one set by ``Sampler.run(..., deadline=...)``).
    """
    if deadline is None:
        deadline = _DEADLINE.get()
    timed_out = False
    x = x0.clone()
    frames: list[Tensor] = [x.clone()] if record_every > 0 else []
    times: list[float] = [0.0] if record_every > 0 else []
    record_steps: list[int] = [0] if record_every > 0 else []
    elapsed = 0.0
    diverged = False
    reason = ""
    steps_done = 0
    bar = tqdm(total=n_steps, desc=desc, disable=not show(progress), leave=False, unit="step")
    for t in range(n_steps):
        t0 = time.perf_counter()
        if deadline is not None and t0 >= deadline:
            timed_out = True
            reason = f"wall-time limit reached after {steps_done} of {n_steps} steps"
            break
        x = step(x, t)
        elapsed += time.perf_counter() - t0
        steps_done = t + 1
        bar.update(1)
        why = divergence_reason(x, max_abs)
        if why is not None:
            diverged = True
            reason = f"{why} at step {t + 1}"
            break
        if record_every > 0 and (steps_done % record_every == 0 or steps_done == n_steps):
            frames.append(x.clone())
            times.append(elapsed)
            record_steps.append(steps_done)
    finish(bar, steps_done)
    if timed_out and record_every > 0 and record_steps[-1] != steps_done:
        frames.append(x.clone())
        times.append(elapsed)
        record_steps.append(steps_done)
    if record_every > 0 and not times:
        times.append(elapsed)
    if record_every == 0:
        times = [elapsed]
    info: dict[str, Any] = {"steps": steps_done, "diverged": diverged, "step_seconds": elapsed}
    if diverged:
        info["diverged_reason"] = reason
    if timed_out:
        info["timed_out"] = True
        info["timeout_reason"] = reason
    if record_every > 0:
        info["record_steps"] = record_steps
    traj = torch.stack(frames) if frames else None
    return SampleResult(x, traj, np.asarray(times, dtype=float), info)


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------
#: every method, by name; a lookup first imports the modules of ``samplers`` (the shared
#: maths in ``samplers.core`` registers nothing). Tests use ``SAMPLERS.scoped()``.
SAMPLERS: Registry[type[Sampler]] = Registry("sampler", "samplers", SamplerError)


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise SamplerError(f"{cls.__name__} needs a class attribute 'name'")
    return SAMPLERS.add(name, cls)


def available_samplers() -> list[str]:
    """Names of every registered sampler."""
    return SAMPLERS.names()


def sampler_class(name: str) -> type[Sampler]:
    return SAMPLERS.get(name)


def get_sampler(name: str, **params: Any) -> Sampler:
    """Instantiate the registered sampler ``name`` with ``params`` over its defaults."""
    return sampler_class(name)(**params)
