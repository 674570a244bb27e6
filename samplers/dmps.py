"""DMPS: diffusion-map particle system (LAWGD with a diffusion-map kernel; arXiv 2304.00200).

Data-driven: sees only the training samples X (N, d), never a score. Fit: diffusion-map
kernel with the alpha = 1/2 normalisation, leading eigenpairs (Phi, lam) of the symmetrised
Markov matrix P, LAWGD weights w_k = (eps / (lam_k + reg))^2 eps / (1 - lam_k). Run:
x_i <- x_i - (h / m) sum_a grad Kt_a(x_i) (Phi diag(w) Phi^T sum_l Kt(x_l))_a
(see :mod:`samplers.core.spectral` for the maths and the O(m N d + N K) step).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from common.geometry import (
    capped_median_bandwidth_sq,
    median_bandwidth_sq,
    reference_bandwidth_sq,
)
from datasets.base import Target
from samplers.base import RunRequest, Sampler, SamplerError, SampleResult, register_sampler
from samplers.core.connectivity import CONNECT_RULES, connected_spectrum, sparse_graph_info
from samplers.core.eigensolvers import EIG_TOL, sparse_top_eigenpairs
from samplers.core.sparse_diffusion_map import (
    NEIGHBOUR_MASS,
    SparseDiffusionMapKernel,
    landmark_count,
)
from samplers.core.spectral import SpectralError, lawgd_weights
from samplers.core.transport_run import (  # noqa: F401  (clipped_displacement re-exported)
    TRANSPORT_PARAM_SPECS,
    clipped_displacement,
    resolve_dtype,
    run_spectral_transport,
)
from samplers.params import NonNegative, OneOf, Positive

SPARSE_KERNEL_MIN_N = 20000
"""``kernel="auto"`` keeps the dense kernel up to this many training points. With the exp(-8)
truncation (``sparse_diffusion_map.BANDWIDTH_C``) sparse and dense DMPS agree within the
seed spread at N = 5,000 (``results/dmps/sparse_vs_dense.md``, Sinkhorn divergence over 3
seeds, dense vs sparse: circle 0.0246 vs 0.0255, half_sphere 0.0994 vs 0.0991, ring8 0.0059
vs 0.0058, digits 0.227 vs 0.232), but the sparse fit is the slower one at that size
(k ~ N / 2 on the circle: 32-66 s against 11-19 s dense in those runs), so it is used only
where the dense kernel stops being practical. At N = 20,000 the dense fit converges (block
Lanczos, every relative residual <= 1.9e-7, fit 41.6 s on 2 threads,
``results/dmps/fit20000/scaling.md``) and holds P in float64 and float32 (4.8 GB); at 30,000
those would be 10.8 GB: above it :func:`auto_kernel_plan` keeps 20,000 seeded landmarks."""


SPARSE_BLOCK_MIN_N = SPARSE_KERNEL_MIN_N
"""The sparse kernel's automatic solver is the block Lanczos above this many training points
(where ``kernel="auto"`` picks the sparse kernel) and ARPACK up to it. Fashion-MNIST
latents, N = 60,000, k = 416, tail rule on, K = 500, 2 threads: ARPACK 376 s; block
Lanczos with float32 products (0.49 s a 64-column block, against 44 ms a single vector
for ARPACK's float64 products) 205 s, every residual <= 2.6e-7 within the 6,064-vector
cap, peak resident memory 5.5 GB. Below it the sparse kernel is only chosen by hand
(the sparse-vs-dense and scaling studies, whose rows ARPACK made)."""


BANDWIDTH_RULES = ("capped_median", "reference", "median")
"""``bandwidth_rule``: "capped_median" (the default) =
:func:`common.geometry.capped_median_bandwidth_sq` (the median heuristic up to N = 1,000,
"reference" from there); "reference" = :func:`common.geometry.reference_bandwidth_sq` (median
heuristic at the fixed size 1,000: a bandwidth of the target, not of N); "median" =
:func:`common.geometry.median_bandwidth_sq` (divides by 2 log(N + 1): shrinks with N)."""


def rule_bandwidth(X: Tensor, rule: str) -> float:
    """eps of the bandwidth rule ``rule`` (:data:`BANDWIDTH_RULES`) on X (N, d)."""
    if rule == "capped_median":
        return capped_median_bandwidth_sq(X)
    if rule == "reference":
        return reference_bandwidth_sq(X)
    if rule == "median":
        return median_bandwidth_sq(X)
    raise SamplerError(f"bandwidth_rule must be one of {BANDWIDTH_RULES}, got {rule!r}")


def seeded_subset(X: Tensor, keep: int) -> Tensor:
    """``keep`` rows of X (N, d) drawn by a fixed seed (0) and kept in their order: the
    landmarks of a fit on more points than its kernel holds (a function of the data only)."""
    n = X.shape[0]
    if keep >= n:
        return X
    gen = torch.Generator().manual_seed(0)
    return X[torch.randperm(n, generator=gen)[:keep].sort().values.to(X.device)]


def auto_kernel_plan(X: Tensor, eps: float) -> tuple[str, int]:
    """``kernel="auto"`` with the default kNN and landmark options on X (N, d) at the rule's
    (scaled) eps: (kind, training points kept).

    Up to :data:`SPARSE_KERNEL_MIN_N` points: the dense kernel on all of them. Above, the
    exact (dense) kernel on a seeded subset of :data:`SPARSE_KERNEL_MIN_N` points, unless the
    kNN budget holds more points than that (``sparse_diffusion_map.landmark_count`` N' >
    SPARSE_KERNEL_MIN_N: narrow kernels), where the sparse kernel on N' points is used. Both
    estimate the same fixed-eps diffusion operator (variance ~ 1 / points kept), but the kNN
    kernel also drops the entries below exp(-8), which perturbs P's small eigenvalues, and
    the LAWGD weights (eps / (lam + reg))^2 eps / (1 - lam) are largest exactly there:
    two_moons at N = 3,000 keeps 43 modes above ``tol`` dense and 394 sparse (lambda_40:
    4.8e-6 dense, 2.4e-4 sparse), and S_eps is 0.122 against 0.135. At N = 30,000 the budget
    holds N' ~ 6,400-7,000 points in every column of ``results/dmps/more_data.md`` (6,428 of
    the 60,000 Fashion-MNIST codes), so the dense kernel on 20,000 keeps 3x more."""
    n = X.shape[0]
    if n <= SPARSE_KERNEL_MIN_N:
        return "dense", n
    n_sparse = landmark_count(X, eps)
    if n_sparse > SPARSE_KERNEL_MIN_N:
        return "sparse", n_sparse
    return "dense", SPARSE_KERNEL_MIN_N


def kernel_kind_for(n_train: int) -> str:
    """``kernel="auto"``: "dense" up to :data:`SPARSE_KERNEL_MIN_N` training points, else
    "sparse" (DMPS and EDMD-KSWGD's transport kernel)."""
    return "dense" if n_train <= SPARSE_KERNEL_MIN_N else "sparse"


def sparse_solver_for(n_train: int) -> str:
    """The sparse kernel's automatic eigensolver for ``n_train`` points (see
    :data:`SPARSE_BLOCK_MIN_N`)."""
    return "block" if n_train > SPARSE_BLOCK_MIN_N else "lanczos"


@register_sampler
class DMPS(Sampler):
    """Diffusion-map particle system.

    Parameters (defaults in ``DMPS.defaults``):

    - ``n_modes`` = 500: number K of leading eigenpairs of P kept (capped at N); the constant
      mode and modes with lam < ``tol`` get weight 0 and are dropped.
    - ``kernel`` = "auto": "dense" (N x N kernel, :mod:`samplers.core.spectral`) for
      N <= ``SPARSE_KERNEL_MIN_N`` (20000); above it (default kNN and landmark options)
      :func:`auto_kernel_plan`: the dense kernel on a seeded subset of 20,000 points, or the
      sparse kNN kernel (:mod:`samplers.core.sparse_diffusion_map`) where its budget holds
      more points than that; "dense"/"sparse" force one (on all N points).
    - ``n_neighbors`` = "auto": k of the sparse kernel (each training point and each
      particle sees its k nearest training points); "auto" = enough to hold the dense
      kernel above exp(-8) within a memory budget (``sparse_diffusion_map.auto_neighbours``).
    - ``neighbour_mass`` = 1.0: tail rule of the sparse kernel: a training point whose other
      neighbours hold less kernel mass than this at the global eps gets its own, wider
      bandwidth (``sparse_diffusion_map.tail_bandwidths``; the fit info counts them in
      ``n_tail_widened``); 0 switches it off.
    - ``landmarks`` = "auto": sparse kernel with automatic k and the rule's eps: when the kNN
      graph of the rule's bandwidth would not fit ``sparse_diffusion_map.NNZ_BUDGET``
      non-zeros, the fit keeps a seeded random subset of N' = sqrt(budget / f) training
      points (f the share of points within the kernel's support,
      ``sparse_diffusion_map.landmark_count``) instead of narrowing eps to the budget's k-th
      neighbour; ``info["n_landmarks"]`` records N'. "off" keeps every point (the previous
      rule: eps narrowed).
    - ``solver`` = "auto". Dense kernel: "dense" (full eigh) for N <= ``spectral.DENSE_MAX_N``
      (3000), else "topk" (block Lanczos until converged); "dense"/"topk" force one. Sparse
      kernel (:mod:`samplers.core.eigensolvers`): "block" (block Lanczos with float32
      products by the sparse P) for N > ``SPARSE_KERNEL_MIN_N``, else "lanczos" (ARPACK on
      P); "dense" densifies P (small N). See ``SPARSE_BLOCK_MIN_N``.
    - ``eig_tol`` = 1e-6: largest accepted relative eigen-residual of a truncated fit; every
      pair's residual is in ``info["eig_residuals"]``, and a fit over it says so in
      ``info["eig_warning"]`` (it still runs).
    - ``bandwidth`` = None: eps of k = exp(-|x - y|^2 / (2 eps)); None = ``bandwidth_rule``;
      a positive float sets eps directly.
    - ``bandwidth_rule`` = "capped_median": eps = median(|X_a - X_b|^2) / (2 log(min(N, 1000)
      + 1)) (:func:`common.geometry.capped_median_bandwidth_sq`): the median heuristic up to
      N = 1,000 training points, then fixed. "median" = median / (2 log(N + 1)) at every N
      (shrinks like 1 / log N: the rule before issue 24); "reference" = median / (2 log 1001)
      at every N. The three agree at N = 1,000; the suites' N <= 1,000 fits are unchanged.
      Why the shrinkage stops: DMPS's flow off the data depends on eps, not on N, because
      the out-of-sample kernel's first term M_a(x) / D_a decays like exp(-r^2 / (4 eps)) at
      distance r from the data and pushes particles off the data where the transport
      potential is positive, at a rate ~ 1 / eps; particles beyond a few sqrt(eps) see no
      field. With the shrinking eps, circle / cap (seed 0) scored 0.026 at N = 1,000 and 0.40
      at N = 10,000; with eps fixed from N = 1,000 on (and the dense kernel on 20,000
      landmarks above 20,000), S_eps at 30,000 (60,000 Fashion codes) is 0.50-0.98x that at
      N = 1,000 (1,200) in all six columns of ``results/dmps/more_data.md`` (seeds 0-2;
      two_moons / gaussian 0.98, and 1.12 on seed 0 with the sparse landmark kernel). The
      median of the pair distances is a
      consistent estimate, so from N = 1,000 on eps converges to a bandwidth of the target,
      and the diffusion-map operator at a fixed bandwidth converges as N grows (von
      Luxburg, Belkin & Bousquet 2008): more data only lowers its variance.
    - ``bandwidth_scale`` = 1.0: eps is multiplied by this (the tuner's knob; dense and sparse
      kernels alike).
    - ``connect`` = "widen": while the graph is (nearly) disconnected, 1 - lambda_1 < 1e-2,
      eps is doubled, at most 5 times (:mod:`samplers.core.connectivity`; the fit info
      records ``spectral_gap``, ``n_widened``, ``bandwidth_factor``); "off" disables it.
    - ``reg`` = 1e-3, ``tol`` = 1e-6: regulariser and eigenvalue cut-off of the weights.
    - ``weights`` = "intended": eps / (1 - lam); "notebook" = the reference notebook's
      clipped variant (eps / (1 - lam) replaced by eps * 1e12 for every mode), for
      comparison only.
    - ``step_rule`` = "first_step" (the default); "flow": each step
      is a time step tau_t of the N-independent LAWGD
      field F = (N / eps^2) v / m (:func:`samplers.core.spectral.lawgd_transport_scale`),
      tau_t = min(``flow_step``, ``max_move`` sqrt(eps) / max_i |F_i|, 1 / L_t), L_t the
      secant estimate of F's Lipschitz constant along the last step
      (:func:`samplers.core.spectral.flow_step_size`: no particle moves more than
      ``max_move`` sqrt(eps), no mode of the step overshoots); "first_step" = the previous
      rule, h fixed once so that the first step moves the median particle ``step_fraction``
      sqrt(eps) (:mod:`samplers.core.transport_run`). It stays the default: "flow"'s one
      time step for all particles is bound by the fastest one, so from far N(0, I) starts
      the slow particles off the data are stranded (circle / gaussian, N = 1,000: S_eps
      0.36 against 0.17, ``results/dmps/more_data.md``); with eps fixed from N = 1,000 on,
      "first_step"'s h no longer grows with N through eps.
    - ``flow_step`` = 0.2, ``max_move`` = 0.5: tau's ceiling and the displacement bound of
      "flow".
    - ``step_size`` = "auto": the step rule; a positive float fixes h. The first step's h is
      recorded in ``info["step_size"]``, its flow time in ``info["flow_step"]``.
    - ``step_fraction`` = 0.2: the fraction of sqrt(eps) of the "first_step" rule.
    - ``max_step`` = 1.0: safeguard, no particle moves more than ``max_step * sqrt(eps)`` in
      one step (its displacement is scaled down; ``info["n_clipped"]`` counts how often,
      ``info["clipped_fraction"]`` the share of particle-steps, and a share above 1 % flags
      the run in the leaderboards). Under "flow" it never binds (``max_move`` < ``max_step``).
      The explicit step can kick a particle that comes close to an isolated training point
      far out (measured: one jump of 173 with the median at 0.2 on N(0, I_16), N = 400);
      None disables it.
    - ``step_control`` = "damp": per-particle stability control
      (:func:`samplers.core.transport_run.damped_displacement`): a particle whose move hits
      the cap and reverses its previous one (an explicit step past its stability limit)
      halves its own step and regains 10 % a step under the cap, so the cap does not decide
      the run (issue 24: the one default-settings headline row over 1 % clipped, bounded
      dirichlet3 / support rep 1, fell from 1.93 % to 0.23 %); runs whose cap never binds are
      unchanged bit for bit. "off": the cap alone (``info["n_damped"]`` counts halvings).
    - ``dtype`` = "float64" ("float32" runs kernel, eigensolver and steps in float32).
    - ``max_abs`` = 1e4: a particle with a coordinate beyond this (standardised units) or a
      non-finite one ends the run with ``info["diverged"] = True``.

    The number of iterations is the runner's ``n_steps``. The device is the tensors' device
    (the fit runs where ``train`` lives, the steps where ``x0`` lives).
    """

    name = "dmps"
    needs = frozenset({"samples"})
    defaults: dict[str, Any] = {
        "n_modes": 500,
        "kernel": "auto",
        "n_neighbors": "auto",
        "neighbour_mass": NEIGHBOUR_MASS,
        "landmarks": "auto",
        "solver": "auto",
        "eig_tol": EIG_TOL,
        "bandwidth": None,
        "bandwidth_rule": "capped_median",
        "bandwidth_scale": 1.0,
        "connect": "widen",
        "reg": 1e-3,
        "tol": 1e-6,
        "weights": "intended",
        "step_rule": "first_step",
        "flow_step": 0.2,
        "max_move": 0.5,
        "step_size": "auto",
        "step_fraction": 0.2,
        "max_step": 1.0,
        "step_control": "damp",
        "dtype": "float64",
        "max_abs": 1e4,
    }
    param_specs = {
        "n_modes": Positive(int),
        "solver": OneOf("auto", "dense", "topk", "lanczos", "block"),
        "kernel": OneOf("auto", "dense", "sparse"),
        "n_neighbors": Positive(int, also=("auto",)),
        "neighbour_mass": NonNegative(),
        "landmarks": OneOf("auto", "off"),
        "eig_tol": Positive(),
        "bandwidth": Positive(also=(None,)),
        "bandwidth_rule": OneOf(*BANDWIDTH_RULES),
        "bandwidth_scale": Positive(),
        "connect": OneOf(*CONNECT_RULES),
        "reg": NonNegative(),
        "tol": NonNegative(),
        "weights": OneOf("intended", "notebook"),
        **TRANSPORT_PARAM_SPECS,
    }
    #: eps relative to the median rule (x0.5 to x4) and the automatic step's fraction
    search_space = {"bandwidth_scale": (1.0, 0.5, 2.0, 4.0), "step_fraction": (0.1, 0.2, 0.4)}
    #: widening limits: a bandwidth 1/8-16x the median rule's (beyond, the kernel is a
    #: nearest-neighbour graph or one constant mode); a first step of at most 1.6 sqrt(eps)
    #: (beyond, one step crosses the kernel's reach)
    search_limits = {"bandwidth_scale": (0.125, 16.0), "step_fraction": (0.0125, 1.6)}

    def _dtype(self) -> torch.dtype:
        return resolve_dtype("dmps", self.params["dtype"])

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        p = self.params
        step = p["step_size"]
        if step != "auto" and not (isinstance(step, (int, float)) and step > 0):
            raise SamplerError(f"dmps: step_size must be 'auto' or a positive number, got {step!r}")
        X = train.to(self._dtype())
        n_offered = X.shape[0]
        kind = p["kernel"]
        rule_eps = rule_bandwidth(X, p["bandwidth_rule"]) if p["bandwidth"] is None else None
        n_landmarks = None  # the sparse kernel's N', when the automatic plan counted it
        if kind == "auto":
            if self._automatic_landmarks() and X.shape[0] > SPARSE_KERNEL_MIN_N:
                kind, n_keep = auto_kernel_plan(X, float(p["bandwidth_scale"]) * rule_eps)
                if kind == "dense":
                    X = seeded_subset(X, n_keep)
                else:
                    n_landmarks = n_keep
            else:
                kind = kernel_kind_for(X.shape[0])
        if kind not in ("dense", "sparse"):
            raise SamplerError(f"dmps: kernel must be 'auto', 'dense' or 'sparse', got {kind!r}")
        if kind == "dense" and p["solver"] in ("lanczos", "block"):
            chosen = "" if p["kernel"] == "dense" else f" ('auto' chose it at N = {X.shape[0]})"
            raise SamplerError(
                f"dmps: solver {p['solver']!r} runs on the sparse kernel (kernel='sparse'); the "
                f"dense kernel{chosen} takes solver 'auto', 'dense' or 'topk'"
            )
        extra: dict[str, Any] = {"kernel": kind, "bandwidth_rule": p["bandwidth_rule"]}
        if X.shape[0] < n_offered:  # the dense kernel on a seeded subset (auto_kernel_plan)
            extra.update(n_landmarks=X.shape[0], n_train_offered=n_offered)
        try:
            if kind == "dense":  # a disconnected graph widens eps by the `connect` rule
                kernel, spec, graph = connected_spectrum(
                    X,
                    p["bandwidth"] if rule_eps is None else rule_eps,
                    p["n_modes"],
                    p["solver"],
                    scale=p["bandwidth_scale"],
                    rule=p["connect"],
                    eig_tol=float(p["eig_tol"]),
                )
                lam, vec, solver, eig_s = (
                    spec.eigenvalues,
                    spec.eigenvectors,
                    spec.solver,
                    spec.seconds,
                )
                extra.update(graph)
                extra.update(spec.info)
            else:
                kernel, lam, vec, solver, eig_s, extra = self._fit_sparse(X, rule_eps, n_landmarks)
                extra["bandwidth_rule"] = p["bandwidth_rule"]
            # the kNN graph has no connect rule: modes at or above 1 get weight 0 there
            w = lawgd_weights(
                lam,
                kernel.eps,
                reg=p["reg"],
                tol=p["tol"],
                variant=p["weights"],
                drop_non_decaying=kind == "sparse",
            )
        except SpectralError as err:
            raise SamplerError(f"dmps: {err}") from err
        keep = w > 0
        if not bool(keep.any()):
            raise SamplerError("dmps: no eigenmode passed the tolerance; lower tol or n_modes")
        self.kernel = kernel
        self.Phi = vec[:, keep].contiguous()
        self.w = w[keep]
        return {
            "eps": kernel.eps,
            "solver": solver,
            "eig_seconds": eig_s,
            "n_modes_used": int(keep.sum()),
            "lambda_max": float(lam[0]),
            "lambda_min_kept": float(lam[keep].min()),
            "n_train": n_offered,
            "dtype": p["dtype"],
            **extra,
        }

    def _automatic_landmarks(self) -> bool:
        """Whether the fit may keep a seeded subset of the training points (``landmarks``,
        ``n_neighbors`` automatic and eps from the bandwidth rule)."""
        p = self.params
        return p["landmarks"] == "auto" and p["n_neighbors"] == "auto" and p["bandwidth"] is None

    def _fit_sparse(
        self, X: Tensor, rule_eps: float | None, n_landmarks: int | None = None
    ) -> tuple[Any, Tensor, Tensor, str, float, dict[str, Any]]:
        """kNN kernel (the bandwidth rule's eps ``rule_eps`` in place of the median
        heuristic) and its top eigenpairs with residuals (see ``eig_tol``). ``n_landmarks``:
        the N' that :func:`auto_kernel_plan` already counted (None: count it here)."""
        p = self.params
        solver = p["solver"]
        if solver == "auto":
            solver = sparse_solver_for(X.shape[0])
        if solver not in ("lanczos", "block", "dense"):
            raise SamplerError(
                "dmps: the sparse kernel takes solver 'auto', 'lanczos', 'block' or 'dense', "
                f"got {solver!r}"
            )
        n_train = X.shape[0]
        if n_landmarks is None and self._automatic_landmarks():
            n_landmarks = landmark_count(X, float(p["bandwidth_scale"]) * rule_eps)
        if n_landmarks is not None:
            X = seeded_subset(X, n_landmarks)  # the fit stays a function of the data
        kernel = SparseDiffusionMapKernel.fit(
            X,
            p["n_neighbors"],
            p["bandwidth"],
            scale=float(p["bandwidth_scale"]),
            neighbour_mass=float(p["neighbour_mass"]),
            rule_eps=rule_eps,
        )
        k = min(int(p["n_modes"]), X.shape[0])
        res = sparse_top_eigenpairs(
            kernel.markov_matrix(), k, method=solver, tol=float(p["eig_tol"]), device=X.device
        )
        lam = res.eigenvalues.to(device=X.device, dtype=X.dtype)
        vec = res.eigenvectors.to(device=X.device, dtype=X.dtype)
        extra = {
            "kernel": "sparse",
            "n_landmarks": X.shape[0],
            "n_train_offered": n_train,
            "n_neighbors": kernel.n_neighbors,
            "n_tail_widened": kernel.n_widened,
            "tail_eps_max_ratio": 1.0
            if kernel.point_eps is None
            else float(kernel.point_eps.max()) / kernel.eps,
            **sparse_graph_info(kernel.markov_matrix(), lam),
            **res.info(),
        }
        return kernel, lam, vec, res.method, res.seconds, extra

    def _run(self, run: RunRequest) -> SampleResult:
        return run_spectral_transport(
            run, self.kernel, self.Phi, self.w, params=self.params, dtype=self._dtype()
        )
