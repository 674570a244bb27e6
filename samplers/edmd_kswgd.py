"""EDMD-KSWGD: the DMPS/LAWGD transport driven by an EDMD Koopman spectrum.

Data-driven: sees only the training samples X (N, d). Fit (see :mod:`samplers.core.edmd`):
one-step Langevin pairs X' = X + dt s_KDE(X) + sqrt(2 dt) xi; a dictionary (sparse dictionary
learning + constant by default) or kernel EDMD; A v = mu G v; generator eigenvalues
lambda_gen = (mu - 1)/dt; transport modes phi_k (eigenfunctions on X, unit Euclidean norm) with
weights w_k = -1/lambda_gen_k = dt/(1 - mu_k) > 0. Run: the DMPS step of
:func:`samplers.core.spectral.spectral_transport_step` with S = Phi diag(w) Phi^T:
    x_i <- x_i - (h/m) sum_a grad Kt_a(x_i) (S sum_l Kt(x_l))_a,
Kt the diffusion-map out-of-sample kernel on X (as in the reference notebook, which reuses the
KSWGD kernel for its EDMD transport).

Sign convention: LAWGD's kernel is (-L)^-1 = sum_k phi_k phi_k / (-lambda_k), positive on the
non-constant modes, so the weights are -1/lambda_gen > 0 and particles descend the KL. The
notebook's weights 1/lambda_gen are negative for decaying modes: with them the same update
ascends (``tests/samplers/test_edmd_kswgd.py`` measures both).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common.random import make_generator
from datasets.base import Target
from samplers.base import RunRequest, Sampler, SamplerError, SampleResult, register_sampler
from samplers.core.edmd import (
    EDMDError,
    MonomialDictionary,
    RBFDictionary,
    SparseDictionary,
    edmd_spectrum,
    kernel_edmd_spectrum,
    langevin_pairs,
    transport_modes,
)
from samplers.core.spectral import (
    DiffusionMapKernel,
    SpectralError,
)
from samplers.core.transport_run import resolve_dtype, run_spectral_transport

DICTIONARIES = ("sparse", "rbf", "monomial", "kernel")


@register_sampler
class EDMDKSWGD(Sampler):
    """EDMD-KSWGD (EDMD Koopman eigenfunctions in the KSWGD/LAWGD transport).

    Parameters (defaults in ``EDMDKSWGD.defaults``):

    Pairs
    - ``dt`` = 0.1: Langevin time step of the pairs (notebook's dt_edmd).
    - ``pair_bandwidth`` = "median": KDE bandwidth of the drift, h^2 = median|X_a-X_b|^2 /
      (2 log(N+1)) (the suite's heuristic); "notebook" = h^2 = median|X_a-X_b|^2, which
      shrinks the generator spectrum by ~1/(1 + h^2) (measured in tests/samplers/test_edmd.py);
      or h.
    - ``max_train`` = 2000: at most this many training points are used (a seeded subsample
      above; pairs, dictionary and the O(N^2) kernel all scale with N).
    - ``fit_seed`` = 0: seeds the pair noise, the subsample and scikit-learn's random_state.

    Dictionary / operator
    - ``dictionary`` = "sparse": "sparse" (MiniBatchDictionaryLearning codes + constant),
      "rbf" (Gaussian features on k-means centres + constant), "monomial" (total degree <=
      ``degree``) or "kernel" (kernel EDMD in Gram form, no dictionary).
    - ``n_atoms`` = 100: sparse atoms / RBF centres (notebook: 100).
    - ``dict_alpha`` = 1e-3, ``dict_batch`` = 256, ``dict_max_iter`` = 500,
      ``dict_fit_algorithm`` = "lars": notebook values; scikit-learn stops the mini-batch fit
      early (measured ~0.2 s for N = 1000, d = 2), so max_iter 500 is cheap.
    - ``dict_transform`` = "omp": scikit-learn's default sparse coder, as in the notebook
      (one nonzero coefficient per point when d < 20); "lasso_lars" uses alpha.
    - ``degree`` = 4: monomial degree.
    - ``kernel`` = "gaussian" (median bandwidth) or "polynomial" (degree ``degree``);
      ``kernel_rank`` = 200 and ``kernel_rtol`` = 1e-2: Gram truncation of kernel EDMD.
    - ``reg`` = 1e-3: Tikhonov term of G = Psi^T Psi / N + reg I (notebook's reg_edmd).

    Modes
    - ``mode_skip`` = 1 (the constant mode, eigenvalue nearest 1), ``mu_threshold`` = 1e-6
      (notebook's eig_threshold_edmd; modes need mu_threshold < Re mu < 1).
    - ``complex_modes`` = "pair": a conjugate pair (phi, conj phi) becomes Re phi, Im phi,
      both weighted Re(dt/(1 - mu)) (the symmetric part of the pair's spectral sum; see
      :func:`samplers.core.edmd.transport_modes`); "real": Re phi once, weight dt/(1 - Re mu);
      "drop": discard pairs (if then no mode survives, the fit uses "pair" and records it in
      ``info["complex_modes_used"]``). The Langevin generator is self-adjoint in L2(pi), so
      complex EDMD eigenvalues are finite-sample artefacts (~85% of the sparse-dictionary
      modes in 2-D); with centred modes all three options transport alike, "pair" was best
      or tied (energy distance on a 2-D two-Gaussian mixture from a cap, 3 fit seeds, 500
      steps: pair 0.070/0.057/0.078, real 0.067/0.064/0.086, drop 0.072/0.074/0.119).
      ``imag_tol`` = 1e-6: |Im mu| <= imag_tol |mu| counts as real. ``max_modes`` = None.
    - ``center_modes`` = True: subtract each eigenfunction's training mean (EDMD
      eigenfunctions are not orthogonal to constants; uncentred, particles were sent away in
      half the seeds, see :func:`samplers.core.edmd.transport_modes`).

    Transport (as DMPS)
    - ``bandwidth`` = None: eps of the diffusion-map kernel (median heuristic when None).
    - ``step_size`` = "auto": h such that the first step moves the median particle by
      ``step_fraction`` * sqrt(eps) (the DMPS rule, :func:`samplers.core.spectral.auto_step_size`);
      a positive float fixes h. ``step_fraction`` = 0.1.
    - ``dtype`` = "float64"; ``max_abs`` = 1e4: divergence threshold (standardised units).

    ``info`` records n_modes, n_complex (complex eigenvalues among the candidate modes),
    n_complex_total, the leading generator eigenvalues, and the fit time split
    (pairs_seconds, dictionary_seconds, eig_seconds, kernel_seconds).
    """

    name = "edmd_kswgd"
    needs = frozenset({"samples"})
    defaults: dict[str, Any] = {
        "dt": 0.1,
        "pair_bandwidth": "median",
        "max_train": 2000,
        "fit_seed": 0,
        "dictionary": "sparse",
        "n_atoms": 100,
        "dict_alpha": 1e-3,
        "dict_batch": 256,
        "dict_max_iter": 500,
        "dict_fit_algorithm": "lars",
        "dict_transform": "omp",
        "degree": 4,
        "kernel": "gaussian",
        "kernel_rank": 200,
        "kernel_rtol": 1e-2,
        "reg": 1e-3,
        "mode_skip": 1,
        "mu_threshold": 1e-6,
        "complex_modes": "pair",
        "center_modes": True,
        "imag_tol": 1e-6,
        "max_modes": None,
        "bandwidth": None,
        "step_size": "auto",
        "step_fraction": 0.1,
        "dtype": "float64",
        "max_abs": 1e4,
    }

    def _dtype(self) -> torch.dtype:
        return resolve_dtype("edmd_kswgd", self.params["dtype"])

    def _make_dictionary(self) -> SparseDictionary | RBFDictionary | MonomialDictionary:
        p = self.params
        if p["dictionary"] == "sparse":
            return SparseDictionary(
                n_components=int(p["n_atoms"]),
                alpha=float(p["dict_alpha"]),
                batch_size=int(p["dict_batch"]),
                max_iter=int(p["dict_max_iter"]),
                fit_algorithm=p["dict_fit_algorithm"],
                transform_algorithm=p["dict_transform"],
            )
        if p["dictionary"] == "rbf":
            return RBFDictionary(n_centres=int(p["n_atoms"]))
        return MonomialDictionary(degree=int(p["degree"]))

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        p = self.params
        if p["dictionary"] not in DICTIONARIES:
            raise SamplerError(
                f"edmd_kswgd: dictionary must be one of {DICTIONARIES}, got {p['dictionary']!r}"
            )
        step = p["step_size"]
        if step != "auto" and not (isinstance(step, (int, float)) and step > 0):
            raise SamplerError(f"edmd_kswgd: step_size must be 'auto' or > 0, got {step!r}")
        seed = int(p["fit_seed"])
        X = train.to(torch.float64)
        n_max = int(p["max_train"])
        if X.shape[0] > n_max:
            idx = torch.randperm(X.shape[0], generator=make_generator(seed))[:n_max]
            X = X[idx.to(X.device)]
        dt = float(p["dt"])
        try:
            t0 = time.perf_counter()
            Y, h_pairs = langevin_pairs(
                X, dt, make_generator(seed + 1), bandwidth=p["pair_bandwidth"]
            )
            t1 = time.perf_counter()
            x_np, y_np = X.cpu().numpy(), Y.cpu().numpy()
            if p["dictionary"] == "kernel":
                t2 = t1
                spec = kernel_edmd_spectrum(
                    x_np,
                    y_np,
                    dt,
                    kernel=p["kernel"],
                    degree=int(p["degree"]),
                    rank=int(p["kernel_rank"]),
                    rtol=float(p["kernel_rtol"]),
                )
                n_features = int(spec.mu.size)
            else:
                dictionary = self._make_dictionary().fit(x_np, seed)
                psi_x, psi_y = dictionary.transform(x_np), dictionary.transform(y_np)
                n_features = int(psi_x.shape[1])
                t2 = time.perf_counter()
                spec = edmd_spectrum(psi_x, psi_y, dt, reg=float(p["reg"]))
            select = {
                "mode_skip": int(p["mode_skip"]),
                "mu_threshold": float(p["mu_threshold"]),
                "imag_tol": float(p["imag_tol"]),
                "max_modes": p["max_modes"],
                "center": bool(p["center_modes"]),
            }
            try:
                modes = transport_modes(spec, complex_modes=p["complex_modes"], **select)
            except EDMDError:
                if p["complex_modes"] != "drop":
                    raise
                modes = transport_modes(spec, complex_modes="pair", **select)
            t3 = time.perf_counter()
            dtype = self._dtype()
            kernel = DiffusionMapKernel.fit(X.to(dtype), p["bandwidth"])
            t4 = time.perf_counter()
        except (EDMDError, SpectralError) as err:
            raise SamplerError(f"edmd_kswgd: {err}") from err
        if not np.all(np.isfinite(modes.phi)) or not np.all(np.isfinite(modes.weights)):
            raise SamplerError("edmd_kswgd: non-finite EDMD eigenfunctions or weights")
        self.kernel = kernel
        self.Phi = torch.from_numpy(modes.phi).to(device=X.device, dtype=dtype)
        self.w = torch.from_numpy(modes.weights).to(device=X.device, dtype=dtype)
        lam = spec.lambda_gen
        return {
            **modes.facts,
            "complex_modes_used": modes.facts["complex_modes"],
            "spectrum_method": spec.method,
            "n_features": n_features,
            "n_train": int(X.shape[0]),
            "pair_bandwidth_h": h_pairs,
            "eps": kernel.eps,
            "lambda_gen_leading": [complex(v) for v in lam[:6]],
            "weight_max": float(modes.weights.max()),
            "weight_min": float(modes.weights.min()),
            "pairs_seconds": t1 - t0,
            "dictionary_seconds": t2 - t1,
            "eig_seconds": t3 - t2,
            "kernel_seconds": t4 - t3,
            "dtype": p["dtype"],
        }

    def _run(self, run: RunRequest) -> SampleResult:
        params = {**self.params, "max_step": None}
        return run_spectral_transport(
            run, self.kernel, self.Phi, self.w, params=params, dtype=self._dtype()
        )
