"""Sparse (k-nearest-neighbour) diffusion-map kernel for DMPS on large training sets.

The dense kernel of :mod:`samplers.spectral` is N x N (28.8 GB in float64 at N = 60,000).
Here every training point keeps only its ``k`` nearest neighbours (itself included; exact
kNN, see :func:`knn_search`), and the graph is symmetrised by union:

    W_ab = exp(-|X_a - X_b|^2 / (2 eps))  if b in kNN(a) or a in kNN(b), else 0,

then the same alpha = 1/2 normalisation and Markov symmetrisation as the dense kernel:

    p = W 1,  Kt = diag(p)^-1/2 W diag(p)^-1/2,  D = Kt 1,
    P = (Kt diag(1/D) + diag(1/D) Kt) / 2          (symmetric, scipy CSR, ~N k non-zeros).

Bandwidth rule (``eps=None``): eps = min(eps_dense, median_a r_{a,k}^2 / (2 c)), c = 8,
where r_{a,k} is the distance from X_a to its k-th neighbour and eps_dense the dense
kernel's median heuristic. So the kernel weight at the median point's k-th neighbour is at
most exp(-8) ~ 3.4e-4 (the dropped entries of a typical row are below 0.034 % of its largest),
and the sparse kernel is never wider than the dense one: as k grows it becomes the dense
kernel with the dense bandwidth (k = N reproduces it exactly).

Tail rule (``neighbour_mass`` m = 1, :func:`tail_bandwidths`): under one global eps, a point
in the tails of the data whose neighbours all lie many sqrt(eps) away keeps its whole mass
on itself (P_aa -> 1) and adds an eigenvalue near 1 (Fashion-MNIST latents, N = 60,000,
k = 416: 554 points with P_aa > 0.99 and the top 500 eigenvalues crowded in [0.994, 1.003]).
So each training point gets its own bandwidth eps_a >= eps, the smallest with

    sum_{b in kNN(a), b != a} exp(-|X_a - X_b|^2 / (2 eps_a)) >= m

(eps_a = eps wherever the global bandwidth already gives the neighbours that mass), at most
the dense kernel's eps (so the rule acts only where the kNN budget narrowed eps below it,
and k = N still reproduces the dense kernel), and a pair uses the wider of its two:

    W_ab = exp(-|X_a - X_b|^2 / (2 max(eps_a, eps_b))).

Where no point needs widening the kernel is the global-eps one above, bit for bit; eps
stays the global eps in the LAWGD weights and the step rule (the widened points diffuse on
a longer time scale there).

Number of neighbours (``n_neighbors="auto"``, :func:`auto_neighbours`): the median, over
512 sampled points, of how many training points lie within the radius where the dense
kernel (eps_dense) falls to exp(-c), clipped to [64, max(64, NNZ_BUDGET // N)] (at least 64
keeps the graph connected in high d, where few points fall in that radius). When the
clip does not bind, the rule above returns eps ~ eps_dense and the sparse kernel is the
dense one with entries below exp(-8) dropped; when it binds (low-dimensional data at large
N), eps shrinks so that the k neighbours still hold the kernel's bulk.

Out-of-sample kernel at particles x (m, d): only the k nearest training points of each
particle, idx (m, k), enter (the set is locally constant, so the gradient below is exact
almost everywhere); a particle has the global eps, so its pair bandwidth is eps_j:

    k_j(x) = exp(-|x - X_j|^2 / (2 eps_j)), p(x) = sum_j k_j, M_j = k_j / sqrt(p(x) p_j),
    Q = sum_j M_j,  Kt_j(x) = (M_j / D_j + M_j / Q) / 2,       j in idx(x).

One transport step x_i <- x_i - (h/m) sum_j grad Kt_j(x_i) s_j, s = Phi diag(w) Phi^T
sum_l Kt(x_l), costs the kNN query plus O(m k d + N K): sum_l Kt(x_l) is a scatter-add of
(m, k) values and the gradient contraction works on (m, k, d) tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from common.geometry import capped_median_bandwidth_sq
from samplers.core.spectral import SpectralError, TargetPoints, _check_matrix, _check_modes

BANDWIDTH_C = 8.0
"""c of the bandwidth rule eps = median r_k^2 / (2 c) and of the automatic k: weight
exp(-8) ~ 3.4e-4 at the median point's k-th neighbour. The out-of-sample kernel at a particle
sums over its k nearest training points only, and the dropped tail biases the transport
field the same way at every step: with c = 3 (weight 0.05 dropped) particles drifted off a
noisy circle, 24 % of their displacement away from the dense kernel's trajectories after
100 steps (N = 600) and sparse DMPS scored 1.26 against 0.26 on circle at N = 5,000; with
c = 8, 0.3 % (tests/samplers/test_sparse_dmps.py). k grows as c^(d/2) for d-dimensional
data until the ``NNZ_BUDGET`` clip binds; then eps shrinks instead."""

NNZ_BUDGET = 25_000_000
"""Cap on N k of the automatic k: W and P in CSR take ~12 bytes a non-zero each (double the
kNN entries after symmetrisation at most), so ~1.2 GB at the cap; and the ARPACK products
cost O(N k) each."""

NEIGHBOUR_MASS = 1.0
"""m of the tail rule: every training point's other neighbours hold at least the kernel mass
of its own self-loop (weight 1), so no point keeps most of its mass at a step. On the
60,000 Fashion-MNIST latents (k = 416) it widens 8,284 points (13.8 %; largest eps_a / eps
8.2, below the dense eps cap of ~10), leaves no point with P_aa > 0.99 (554 before) and
spreads the top 500 eigenvalues from [0.994, 1.003] to [0.820, 1.003]: ARPACK's solve fell
from 1,090 s to 376 s (``results/dmps/sparse_scaling_fashion60k.md``). On the 12 training
sets of ``results/dmps/sparse_vs_dense.md`` (circle, ring8, half_sphere at N = 5,000, digits
codes; seeds 0-2) it widens no point, so those kernels are unchanged."""

KD_TREE_MAX_DIM = 8
"""kNN queries use scikit-learn's KD-tree up to this dimension (d = 6 Fashion-MNIST latents:
1,024 queries among 60,000 points in ~0.1 s) and chunked brute force in torch above it,
where trees lose to a GEMM (d = 16: KD-tree 3.6 s against 0.6 s brute force for the same
query, measured on this machine under load)."""


def knn_search(
    queries: Tensor,
    X: Tensor,
    k: int,
    *,
    tree: Any | None = None,
    chunk_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    """Exact k nearest neighbours of ``queries`` (m, d) among ``X`` (N, d).

    Returns (d2, idx), both (m, k): squared distances (recomputed as |q - X_j|^2 from the
    differences, so no cancellation) and indices into X, nearest first. With ``tree`` (a
    fitted ``sklearn.neighbors.KDTree`` on X) the tree answers; otherwise brute force in
    row chunks of ``chunk_size`` (an (chunk, N) block of distances and a top-k).
    """
    m = queries.shape[0]
    if tree is not None:
        _, idx_np = tree.query(queries.detach().cpu().numpy(), k=k, sort_results=True)
        idx = torch.from_numpy(idx_np).to(device=X.device, dtype=torch.long)
    else:
        sq_X = (X * X).sum(1)
        parts = []
        for lo in range(0, m, chunk_size):
            q = queries[lo : lo + chunk_size].detach()
            # |q|^2 is constant along a row: leave it out of the ranking
            d2 = torch.addmm(sq_X[None, :], q, X.T, alpha=-2.0)
            parts.append(torch.topk(d2, k, dim=1, largest=False, sorted=True).indices)
        idx = torch.cat(parts)
    d2 = (queries[:, None, :] - X[idx]).pow(2).sum(-1)
    return d2, idx


def support_counts(X: Tensor, eps: float, *, n_probe: int = 512, seed: int = 0) -> Tensor:
    """For ``n_probe`` seeded points of X (N, d), how many of X lie within r^2 <= 2 c eps
    (the kernel's exp(-c) support at bandwidth eps; the point itself included) ->
    (n_probe,). One (n_probe, N) distance block."""
    n = X.shape[0]
    gen = torch.Generator().manual_seed(seed)
    probe = X[torch.randperm(n, generator=gen)[: min(n_probe, n)].to(X.device)]
    sq = (X * X).sum(1)
    d2 = torch.addmm(sq[None, :], probe, X.T, alpha=-2.0).add_((probe * probe).sum(1)[:, None])
    return (d2 <= 2 * BANDWIDTH_C * eps).sum(1)


def auto_neighbours(X: Tensor, eps: float, *, n_probe: int = 512, seed: int = 0) -> int:
    """k for the sparse kernel: the median of :func:`support_counts`, clipped to
    [64, max(64, NNZ_BUDGET // N)]."""
    n = X.shape[0]
    count = int(support_counts(X, eps, n_probe=n_probe, seed=seed).median())
    return int(min(max(count, 64), max(64, NNZ_BUDGET // n), n))


def neighbour_fraction(X: Tensor, eps: float, *, n_probe: int = 512, seed: int = 0) -> float:
    """f = the median of :func:`support_counts` over N: the share of X (N, d) in the
    kernel's support at bandwidth eps; the kNN graph that holds this kernel has ~ f N^2
    non-zeros."""
    return float(support_counts(X, eps, n_probe=n_probe, seed=seed).median()) / X.shape[0]


def landmark_count(X: Tensor, eps: float, budget: int | None = None) -> int:
    """How many training points a kNN kernel at bandwidth eps holds within ``budget``
    non-zeros: N' = min(N, sqrt(budget / f)), f = :func:`neighbour_fraction`, so that
    k = f N' neighbours per point fit in N' k <= budget (None: ``NNZ_BUDGET``).

    Past N', the automatic k would be clipped to budget / N and the kernel's eps narrowed
    to the k-th neighbour's distance (Fashion-MNIST latents, N = 60,000: eps 0.048 against
    the rule's 0.78, and DMPS's S_eps 2.16 against 0.98 at N = 1,200: particles off the
    data see no field). A seeded subset of N' points keeps the rule's eps instead; the
    diffusion-map operator at a fixed eps is estimated from N' points with variance
    ~ 1 / N', already small at the N' >= 1,000s this gives."""
    n = X.shape[0]
    budget = NNZ_BUDGET if budget is None else budget
    f = max(neighbour_fraction(X, eps), 1.0 / n)
    return int(min(n, math.isqrt(int(budget / f))))


def tail_bandwidths(
    d2: Tensor, eps: float, neighbour_mass: float, cap: float, *, iterations: int = 60
) -> Tensor | None:
    """Per-point bandwidths eps_a (N,) of the tail rule, or None when no point needs one.

    d2 (N, k): squared distances to each point's k nearest training points, the point itself
    first. eps_a = eps where m_a(eps) >= ``neighbour_mass``, with
    m_a(e) = sum_{j >= 1} exp(-d2_aj / (2 e)) (increasing in e); elsewhere the e with
    m_a(e) = neighbour_mass, by bisection in log e (``iterations`` halvings of the log-ratio,
    relative error ~2^-60 of it), but never above ``cap`` (the dense kernel's eps: the rule
    only undoes the narrowing that the kNN budget forced, so where eps = cap nothing
    changes). m is capped at half of the k - 1 other neighbours (the most a finite e can
    reach is k - 1). ``neighbour_mass`` = 0 switches the rule off.
    """
    if neighbour_mass < 0 or not math.isfinite(neighbour_mass):
        raise SpectralError(f"neighbour_mass must be >= 0 and finite, got {neighbour_mass!r}")
    r = d2[:, 1:]
    if neighbour_mass == 0 or r.shape[1] == 0 or not eps < cap:
        return None
    target = min(float(neighbour_mass), 0.5 * r.shape[1])

    def mass(e: Tensor) -> Tensor:
        return torch.exp(-r_need / (2 * e[:, None])).sum(1)

    r_need = r
    need = mass(torch.full((r.shape[0],), eps, dtype=r.dtype, device=r.device)) < target
    if not bool(need.any()):
        return None
    r_need = r[need]
    # at e = max r^2 / (2 log 2) every neighbour weighs >= 1/2, so the mass is >= target
    lo = torch.full((r_need.shape[0],), eps, dtype=r.dtype, device=r.device)
    hi = torch.maximum(r_need.max(1).values / (2 * math.log(2.0)), lo).clamp_max(cap)
    for _ in range(iterations):
        mid = torch.sqrt(lo * hi)
        ok = mass(mid) >= target
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    out = torch.full((r.shape[0],), eps, dtype=r.dtype, device=r.device)
    out[need] = hi
    return out


def _build_tree(X: Tensor) -> Any | None:
    """A KD-tree of X for CPU data of dimension <= KD_TREE_MAX_DIM; None elsewhere (on a GPU
    the chunked brute-force search runs on the device, where a GEMM and a top-k beat a
    round trip to a CPU tree)."""
    if X.shape[1] > KD_TREE_MAX_DIM or X.device.type != "cpu":
        return None
    from sklearn.neighbors import KDTree

    return KDTree(X.detach().cpu().numpy())


@dataclass
class SparseDiffusionMapKernel(TargetPoints):
    """kNN diffusion-map kernel fitted on X (N, d); see the module docstring for the maths.

    Attributes: X (N, d), eps (global), n_neighbors k, p (N,) degrees of W, D (N,) degrees of Kt,
    point_eps (N,) the tail rule's eps_a (None: every point has eps),
    P the (N, N) symmetric Markov matrix (scipy CSR, float64; None after :meth:`to`, which
    keeps only what the transport needs), tree the KD-tree of X (None: brute-force kNN).
    """

    X: Tensor
    eps: float
    n_neighbors: int
    p: Tensor
    D: Tensor
    P: sp.csr_matrix | None = None
    tree: Any | None = field(default=None, repr=False)
    point_eps: Tensor | None = None

    @property
    def n_widened(self) -> int:
        """Training points whose bandwidth the tail rule widened."""
        return 0 if self.point_eps is None else int((self.point_eps > self.eps).sum())

    @classmethod
    def fit(
        cls,
        X: Tensor,
        n_neighbors: int | str = "auto",
        eps: float | None = None,
        *,
        scale: float = 1.0,
        neighbour_mass: float = NEIGHBOUR_MASS,
        rule_eps: float | None = None,
    ) -> SparseDiffusionMapKernel:
        """Fit on X (N, d): exact kNN graph (k = ``n_neighbors``, or :func:`auto_neighbours`
        for "auto"), bandwidth (rule above unless ``eps`` given) times ``scale`` (DMPS's
        ``bandwidth_scale``: the automatic k counts neighbours at the scaled dense eps, and the
        rule's eps is scaled, so k = N still reproduces the dense kernel at scale * eps),
        the tail rule's per-point bandwidths (``neighbour_mass``; 0 = off), W, p, D and P.
        ``rule_eps``: the dense bandwidth rule's eps in place of the median heuristic
        (``samplers.dmps.rule_bandwidth``). Memory O(N k); time one kNN search plus O(N k)."""
        _check_matrix(X, "X")
        n = X.shape[0]
        if n < 2:
            raise SpectralError(f"need at least 2 target points, got {n}")
        scale = float(scale)
        if not math.isfinite(scale) or scale <= 0:
            raise SpectralError(f"bandwidth scale must be a positive finite number, got {scale!r}")
        dense_eps = capped_median_bandwidth_sq(X) if rule_eps is None else float(rule_eps)
        eps_ref = scale * (dense_eps if eps is None else float(eps))
        if n_neighbors == "auto":
            n_neighbors = auto_neighbours(X, eps_ref)
        k = int(n_neighbors)
        if k < 2:
            raise SpectralError(f"n_neighbors must be >= 2 (the point itself and one), got {k}")
        k = min(k, n)
        tree = _build_tree(X)
        d2, idx = knn_search(X, X, k, tree=tree)
        if eps is None:
            eps = min(dense_eps, float(d2[:, -1].median()) / (2 * BANDWIDTH_C))
        eps = scale * float(eps)
        if not math.isfinite(eps) or eps <= 0:
            raise SpectralError(f"bandwidth eps must be a positive finite number, got {eps!r}")
        point_eps = tail_bandwidths(d2, eps, float(neighbour_mass), eps_ref)
        if point_eps is None:
            bandwidth: float | Tensor = eps
        else:
            bandwidth = torch.maximum(point_eps[:, None], point_eps[idx])
        vals = torch.exp(-d2 / (2 * bandwidth)).reshape(-1).to(torch.float64).cpu().numpy()
        rows = np.repeat(np.arange(n), k)
        W = sp.csr_matrix((vals, (rows, idx.reshape(-1).cpu().numpy())), shape=(n, n))
        W = W.maximum(W.T).tocsr()  # union of the kNN pairs; equal values where both hold
        p = np.asarray(W.sum(axis=1)).ravel()
        inv_sqrt_p = 1.0 / np.sqrt(p)
        Kt = sp.diags(inv_sqrt_p) @ W @ sp.diags(inv_sqrt_p)
        D = np.asarray(Kt.sum(axis=1)).ravel()
        inv_D = sp.diags(1.0 / D)
        P = (0.5 * (Kt @ inv_D + inv_D @ Kt)).tocsr()
        P.sort_indices()
        as_t = lambda a: torch.from_numpy(a).to(device=X.device, dtype=X.dtype)  # noqa: E731
        return cls(
            X=X,
            eps=eps,
            n_neighbors=k,
            p=as_t(p),
            D=as_t(D),
            P=P,
            tree=tree,
            point_eps=None if point_eps is None else point_eps.to(X.dtype),
        )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> SparseDiffusionMapKernel:
        """A copy on ``device`` / in ``dtype`` for the transport (P is left out)."""
        return SparseDiffusionMapKernel(
            X=self.X.to(device=device, dtype=dtype),
            eps=self.eps,
            n_neighbors=self.n_neighbors,
            p=self.p.to(device=device, dtype=dtype),
            D=self.D.to(device=device, dtype=dtype),
            P=None,
            tree=self.tree,
            point_eps=None
            if self.point_eps is None
            else self.point_eps.to(device=device, dtype=dtype),
        )

    def markov_matrix(self) -> sp.csr_matrix:
        """The symmetric sparse P (N, N) of the fit."""
        if self.P is None:
            raise SpectralError("this kernel copy has no Markov matrix (made by .to())")
        return self.P

    # -- out-of-sample evaluation -------------------------------------------------------------
    def neighbours(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(d2, idx), both (m, k): the k nearest training points of each particle."""
        tree = self.tree if self.X.device.type == "cpu" else None  # GPU: search on the device
        return knn_search(x, self.X, self.n_neighbors, tree=tree)

    def _parts(self, x: Tensor, idx: Tensor) -> dict[str, Tensor]:
        """Stabilised pieces on the neighbour sets idx (m, k), differentiable in x.

        With e_j = r_j / (2 eps_j) and e_min = min_j e_j: k~ = exp(-(e - e_min)),
        p~ = sum_j k~_j, sc = exp(-e_min / 2), M~ = k~ / sqrt(p~ p_j), Q~ = sum_j M~_j; then
        M = sc M~, Q = sc Q~ (as in the dense kernel: every quantity stays finite for
        particles far from the data). "g" is grad_x(-e_j) = (X_j - x) / eps_j, (m, k, d).
        """
        diff = self.X[idx] - x[:, None, :]  # (m, k, d)
        r = diff.pow(2).sum(-1)
        if self.point_eps is None:  # one bandwidth: the global-eps form, as before the rule
            r_min = r.min(dim=1, keepdim=True).values.detach()
            kt = torch.exp(-(r - r_min) / (2 * self.eps))
            sc = torch.exp(-r_min / (4 * self.eps))
            g = diff / self.eps
        else:
            bw = self.point_eps[idx]
            e = r / (2 * bw)
            e_min = e.min(dim=1, keepdim=True).values.detach()
            kt = torch.exp(-(e - e_min))
            sc = torch.exp(-e_min / 2)
            g = diff / bw[:, :, None]
        pt = kt.sum(1, keepdim=True)
        m_t = kt / (pt * self.p[idx]).sqrt()
        return {
            "g": g,
            "k": kt,
            "pt": pt,
            "sc": sc,
            "m": m_t,
            "q": m_t.sum(1, keepdim=True),
        }

    def evaluate(self, x: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Kt_j(x) on the neighbour sets: values (m, k) and idx (m, k)."""
        _check_matrix(x, "x", self.dim)
        if idx is None:
            idx = self.neighbours(x)[1]
        f = self._parts(x, idx)
        D = self.D[idx]
        return 0.5 * (f["sc"] * f["m"] / D + f["m"] / f["q"]), idx

    def evaluate_dense(self, x: Tensor) -> Tensor:
        """Kt(x) scattered into an (m, N) matrix (zeros off the neighbour sets; for tests)."""
        vals, idx = self.evaluate(x)
        out = torch.zeros(x.shape[0], self.n_targets, dtype=vals.dtype, device=vals.device)
        return out.scatter_(1, idx, vals)

    def _grad_parts(self, x: Tensor, idx: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """grad M~_j = M~_j (g_j - gbar / 2), g_j = (X_j - x) / eps_j, gbar = sum_j k~_j g_j / p~,
        and grad Q~ = sum_j grad M~_j: returns (parts, grad_m (m, k, d), grad_q (m, d))."""
        f = self._parts(x, idx)
        g = f["g"]
        gbar = (f["k"][:, :, None] * g).sum(1) / f["pt"]
        grad_m = f["m"][:, :, None] * (g - 0.5 * gbar[:, None, :])
        return f, grad_m, grad_m.sum(1)

    def gradient(self, x: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """grad_x Kt_j(x_i) as (m, k, d) with idx (m, k) (analytic):
        grad Kt_j = (sc grad M~_j / D_j + grad M~_j / Q~ - M~_j grad Q~ / Q~^2) / 2."""
        _check_matrix(x, "x", self.dim)
        if idx is None:
            idx = self.neighbours(x)[1]
        f, grad_m, grad_q = self._grad_parts(x, idx)
        D = self.D[idx][:, :, None]
        q = f["q"][:, :, None]
        term_q = grad_m / q - f["m"][:, :, None] * grad_q[:, None, :] / q**2
        return 0.5 * (f["sc"][:, :, None] * grad_m / D + term_q), idx

    # -- transport ------------------------------------------------------------------------------
    def push(self, vals: Tensor, idx: Tensor, Phi: Tensor, w: Tensor) -> Tensor:
        """s = Phi diag(w) Phi^T sum_l Kt(x_l), (N,), from the (m, k) values: O(m k + N K)."""
        kt_sum = torch.zeros(self.n_targets, dtype=vals.dtype, device=vals.device)
        kt_sum.index_add_(0, idx.reshape(-1), vals.reshape(-1))
        return Phi @ (w * (Phi.T @ kt_sum))

    def transport_direction(self, x: Tensor, Phi: Tensor, w: Tensor) -> Tensor:
        """v_i = sum_j grad Kt_j(x_i) s_j (m, d), s = Phi diag(w) Phi^T sum_l Kt(x_l).

        The step is x <- x - (h / m) v. One kNN query, then O(m k d + N K); the largest
        tensor is (m, k, d). Contracted without forming grad Kt:
        v = (sc sum_j grad M~_j s_j / D_j + sum_j grad M~_j s_j / Q~
             - (sum_j M~_j s_j) grad Q~ / Q~^2) / 2.
        """
        _check_matrix(x, "x", self.dim)
        _check_modes(self, Phi, w)  # type: ignore[arg-type]
        idx = self.neighbours(x)[1]
        f, grad_m, grad_q = self._grad_parts(x, idx)
        D = self.D[idx]
        vals = 0.5 * (f["sc"] * f["m"] / D + f["m"] / f["q"])
        s = self.push(vals, idx, Phi, w)[idx]  # (m, k)
        term_d = f["sc"] * torch.einsum("ikd,ik->id", grad_m, s / D)
        term_q = (
            torch.einsum("ikd,ik->id", grad_m, s) / f["q"]
            - (f["m"] * s).sum(1, keepdim=True) * grad_q / f["q"] ** 2
        )
        return 0.5 * (term_d + term_q)
