"""Image-space diagnostics for latent targets: class coverage, sample grids, diffusion maps.

* :func:`load_or_train_classifier`: a small classifier trained on the real training images
  (MLP for 8x8 digits, a two-layer CNN otherwise), cached like the autoencoders
  (:mod:`datasets.images.model_cache`).
* :func:`class_coverage`: histogram of the classes the classifier assigns to generated
  images, against the real class frequencies p: total variation TV = 1/2 sum_k |p_k - q_k|
  and KL(p || q_s), where q_s = (counts + s) / (n + K s) is the sample histogram with
  additive smoothing s (default 1/2), so a dropped class costs a large but finite amount.
* :func:`save_image_grid`: a PNG grid of images ``(n, C, H, W)`` in [0, 1].
* :func:`diffusion_map` / :func:`diffusion_map_plot`: diffusion-map coordinates of latent
  codes coloured by label, as the reference notebook draws them (standardise, Gaussian
  kernel with eps = median |z_a - z_b|^2 / (2 log N), Markov matrix P = D^{-1} K,
  coordinates lambda_k^t psi_k of its right eigenvectors, k >= 1), via a dense symmetric
  eigendecomposition on at most ``max_points`` points.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor, nn

from common.geometry import pairwise_sq_distances
from common.random import make_generator
from datasets.images.early_stopping import EarlyStopping
from datasets.images.model_cache import cache_file, load_or_train
from datasets.images.readers import ImageDataset, check_image_shape


# ---------------------------------------------------------------------------------------
# Classifier
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that determines a trained classifier (all of it is in the cache key)."""

    dataset: str
    epochs: int = 30
    seed: int = 0
    max_train_images: int | None = 20_000
    batch_size: int = 128
    lr: float = 1e-3
    val_fraction: float = 0.1
    patience: int = 4
    threads: int | None = None  # cap on torch threads while training (speed only)

    def cache_meta(self) -> dict[str, Any]:
        meta = asdict(self)
        del meta["threads"]
        meta["max_train_images"] = -1 if self.max_train_images is None else self.max_train_images
        return meta


DEFAULT_CLASSIFIERS = {
    "digits": ClassifierConfig("digits", epochs=60, batch_size=64, lr=3e-3, patience=8, threads=1),
    "mnist": ClassifierConfig("mnist", epochs=4),
    # 4,000 training images: more passes for about the steps of 4 epochs on 12,000+
    "mnist_5k": ClassifierConfig("mnist_5k", epochs=15, threads=1),
    "fashion_mnist": ClassifierConfig("fashion_mnist", epochs=4),
    "cifar10": ClassifierConfig("cifar10", epochs=8),
}


class ImageClassifier(nn.Module):
    """Logits ``(n, n_classes)`` of images ``(n, C, H, W)``.

    H <= 8: MLP C*H*W -> 128 -> n_classes. Otherwise two Conv3x3 stride-2 blocks (32 and
    64 channels, ReLU), flatten, Linear 128 + ReLU, Linear n_classes.
    """

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        c, h, w = image_shape
        if h <= 8:
            self.net = nn.Sequential(
                nn.Flatten(), nn.Linear(c * h * w, 128), nn.ReLU(), nn.Linear(128, n_classes)
            )
        else:
            h2, w2 = (h + 3) // 4, (w + 3) // 4
            self.net = nn.Sequential(
                nn.Conv2d(c, 32, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(64 * h2 * w2, 128),
                nn.ReLU(),
                nn.Linear(128, n_classes),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@dataclass
class TrainedClassifier:
    """A trained :class:`ImageClassifier`; ``predict(images) -> (n,)`` int64 labels."""

    model: nn.Module
    config: ClassifierConfig
    image_shape: tuple[int, int, int]
    n_classes: int
    history: dict[str, Any]
    from_cache: bool

    def logits(self, images: Tensor, batch: int = 2048) -> Tensor:
        check_image_shape(images, self.image_shape)
        device = next(self.model.parameters()).device
        self.model.eval()
        with torch.no_grad():
            out = [
                self.model(images[i : i + batch].to(device, torch.float32)).cpu()
                for i in range(0, images.shape[0], batch)
            ]
        return torch.cat(out) if out else torch.zeros(0, self.n_classes)

    def predict(self, images: Tensor) -> Tensor:
        return self.logits(images).argmax(dim=1)

    def __call__(self, images: Tensor) -> Tensor:
        return self.predict(images)

    def accuracy(self, images: Tensor, labels: Tensor) -> float:
        return float((self.predict(images) == labels.cpu()).to(torch.float64).mean())


def _init_from(module: nn.Module, gen: torch.Generator) -> None:
    from datasets.images.autoencoders import init_parameters_

    init_parameters_(module, gen)


def train_classifier(
    model: nn.Module, images: Tensor, labels: Tensor, config: ClassifierConfig, *, progress: bool
) -> dict[str, Any]:
    """Adam on cross-entropy with a seeded validation split and early stopping on the
    validation accuracy; the best weights are restored. Returns the history."""
    from tqdm.auto import tqdm

    from common.progress import finish, show

    n = images.shape[0]
    n_val = max(1, int(round(config.val_fraction * n)))
    gen = make_generator(config.seed + 1)
    perm = torch.randperm(n, generator=gen)
    x_val, y_val = images[perm[:n_val]], labels[perm[:n_val]]
    x_tr, y_tr = images[perm[n_val:]], labels[perm[n_val:]]
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = nn.CrossEntropyLoss()
    stopper = EarlyStopping(config.patience, -1.0, lambda acc, best: acc > best)
    accs: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(
        range(config.epochs), desc=f"classifier {config.dataset}", disable=not show(progress)
    )
    for epoch in bar:
        model.train()
        order = torch.randperm(x_tr.shape[0], generator=gen)
        for i in range(0, order.shape[0], config.batch_size):
            idx = order[i : i + config.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(x_val).argmax(1) == y_val).to(torch.float64).mean())
        accs.append(acc)
        bar.set_postfix(val_acc=f"{acc:.3f}")
        if stopper.step(model, epoch, acc):
            break
    finish(bar, len(accs))
    stopper.restore(model)
    return {
        "val_accuracy": accs,
        "best_val_accuracy": stopper.best,
        "best_epoch": stopper.best_epoch,
        "train_seconds": time.perf_counter() - t0,
        "n_train": int(x_tr.shape[0]),
    }


def load_or_train_classifier(
    data: ImageDataset,
    *,
    cache_dir: str | os.PathLike[str],
    config: ClassifierConfig | None = None,
    progress: bool = True,
) -> TrainedClassifier:
    """The classifier for ``data.name`` trained on ``data`` (a training split), from the
    cache when valid, else trained (seconds for digits, about a minute on 28x28 CPU)."""
    config = config or DEFAULT_CLASSIFIERS.get(data.name) or ClassifierConfig(data.name)
    if config.dataset != data.name:
        raise ValueError(f"config is for {config.dataset!r} but the data are {data.name!r}")
    image_shape, n_classes = data.image_shape, data.n_classes
    meta = config.cache_meta()
    meta.update(image_shape="x".join(map(str, image_shape)), n_classes=n_classes, n=len(data))
    path = cache_file(cache_dir, "classifier", meta)

    def build() -> nn.Module:
        with torch.random.fork_rng(devices=[]):  # see autoencoders.build_autoencoder
            model = ImageClassifier(image_shape, n_classes)
        _init_from(model, make_generator(config.seed))
        return model

    def train(model: nn.Module) -> dict[str, Any]:
        from datasets.images.autoencoders import torch_threads

        index = data.subset_index(config.max_train_images, seed=config.seed + 2)
        with torch_threads(config.threads):
            return train_classifier(
                model, data.images(index), data.labels[index], config, progress=progress
            )

    cached = load_or_train(path, meta, build, train)
    return TrainedClassifier(
        cached.module, config, image_shape, n_classes, cached.extra, cached.from_cache
    )


# ---------------------------------------------------------------------------------------
# Class coverage
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassCoverage:
    """Predicted-class ``counts`` / ``frequencies`` of a sample vs ``real`` frequencies."""

    counts: Tensor
    frequencies: Tensor
    real: Tensor
    total_variation: float
    kl: float
    n_missing: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "class_counts": [int(c) for c in self.counts],
            "class_tv": self.total_variation,
            "class_kl": self.kl,
            "classes_missing": self.n_missing,
        }


def class_coverage(
    images: Tensor,
    classifier: Callable[[Tensor], Tensor],
    real_label_freqs: Tensor | Sequence[float],
    *,
    smoothing: float = 0.5,
) -> ClassCoverage:
    """Class histogram of ``images`` ``(n, C, H, W)`` under ``classifier`` vs ``real_label_freqs``.

    ``classifier(images)`` returns labels ``(n,)`` or logits ``(n, K)``. TV = 1/2 sum |p - q|;
    KL(p || q_s) with q_s = (counts + s) / (n + K s); ``n_missing`` = classes with p > 0 and
    no sample.
    """
    real = torch.as_tensor(real_label_freqs, dtype=torch.float64).reshape(-1)
    k = real.numel()
    if k == 0 or not bool(torch.isfinite(real).all()) or bool((real < 0).any()):
        raise ValueError("real_label_freqs must be finite non-negative frequencies")
    if abs(float(real.sum()) - 1.0) > 1e-6:
        raise ValueError(f"real_label_freqs must sum to 1, got {float(real.sum())}")
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"images must be a non-empty (n, C, H, W) tensor, got {tuple(images.shape)}"
        )
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values")
    out = classifier(images)
    labels = out.argmax(dim=1) if out.ndim == 2 else out
    labels = labels.to(torch.int64).cpu()
    if labels.shape != (images.shape[0],):
        raise ValueError(f"classifier returned shape {tuple(out.shape)}")
    if bool((labels < 0).any()) or bool((labels >= k).any()):
        raise ValueError(f"classifier returned labels outside 0..{k - 1}")
    counts = torch.bincount(labels, minlength=k).to(torch.float64)
    n = float(counts.sum())
    q = counts / n
    tv = 0.5 * float((real - q).abs().sum())
    q_s = (counts + smoothing) / (n + k * smoothing)
    support = real > 0
    kl = float((real[support] * torch.log(real[support] / q_s[support])).sum())
    missing = int(((counts == 0) & support).sum())
    return ClassCoverage(counts.to(torch.int64), q, real, tv, kl, missing)


# ---------------------------------------------------------------------------------------
# Image grid
# ---------------------------------------------------------------------------------------
def image_grid(images: Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images ``(n, C, H, W)`` in [0, 1] into a uint8 array ``(rows*(H+pad)+pad, ..)``
    (``(.., .., 3)`` for colour), ``nrow`` images per row (default ceil(sqrt(n)))."""
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError("images must be a (n, C, H, W) tensor with C = 1 or 3")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("no images to tile")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values")
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    arr = images.detach().to(torch.float64).clamp(0, 1).cpu().numpy()
    grid = np.ones((c, rows * (h + pad) + pad, nrow * (w + pad) + pad))
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y : y + h, x : x + w] = arr[i]
    out = np.rint(grid * 255).astype(np.uint8)
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def save_image_grid(
    images: Tensor, path: str | os.PathLike[str], nrow: int | None = None, scale: int = 4
) -> Path:
    """Write ``images`` ``(n, C, H, W)`` in [0, 1] as a PNG grid (each pixel ``scale``-fold)."""
    from PIL import Image

    grid = image_grid(images, nrow=nrow)
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, format="PNG")
    return path


# ---------------------------------------------------------------------------------------
# Diffusion map
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiffusionMap:
    """``coords`` ``(m, n_coords)`` = lambda_k^t psi_k(z) for k = 1..n_coords; the top
    ``n_coords + 1`` ``eigenvalues`` (1 first, descending) and right ``eigenvectors``
    ``(m, n_coords + 1)``; ``index`` of the points used; the kernel ``eps``."""

    coords: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    index: np.ndarray
    eps: float


def diffusion_map(
    latents: Tensor | np.ndarray,
    n_coords: int = 3,
    *,
    t: int = 1,
    max_points: int = 2000,
    seed: int = 0,
) -> DiffusionMap:
    """Diffusion-map coordinates of ``latents`` ``(N, d)`` (a random subset of ``max_points``).

    Standardise per coordinate; eps = median |z_a - z_b|^2 / (2 log m);
    K = exp(-|z_a - z_b|^2 / (2 eps)); P = D^{-1} K. With A = D^{-1/2} K D^{-1/2} = V L V^T
    (top n_coords + 1 eigenpairs only),
    psi = D^{-1/2} V are P's right eigenvectors (P psi = psi L), normalised so that
    sum_a pi_a psi_a^2 = 1 (pi = D / sum D); coordinates lambda_k^t psi_k, k = 1..n_coords.
    """
    z = torch.as_tensor(latents).detach().to(torch.float64).cpu()
    if z.ndim != 2 or z.shape[0] < n_coords + 2:
        raise ValueError(f"need (N, d) latents with N > {n_coords + 1}, got {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError("latents contain NaN or infinite values")
    n = z.shape[0]
    if n > max_points:
        index = torch.randperm(n, generator=make_generator(seed))[:max_points].sort().values
    else:
        index = torch.arange(n)
    z = z[index]
    std = z.std(dim=0)
    z = (z - z.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))
    d2 = pairwise_sq_distances(z, z, form="cdist")
    m = z.shape[0]
    eps = float(np.median(d2.numpy())) / (2.0 * math.log(m))  # np: mean of the middle two
    k = torch.exp(-d2 / (2.0 * eps))
    deg = k.sum(dim=1)
    a = (k / torch.sqrt(deg[:, None] * deg[None, :])).numpy()
    # only the top n_coords + 1 eigenpairs (LAPACK syevr): 3x faster than a full eigh at m=2000
    n_eig = n_coords + 1
    vals_np, vecs_np = scipy.linalg.eigh(a, subset_by_index=[m - n_eig, m - 1])
    vals = torch.from_numpy(vals_np[::-1].copy())
    vecs = torch.from_numpy(vecs_np[:, ::-1].copy())
    pi = deg / deg.sum()
    psi = vecs / torch.sqrt(deg)[:, None]
    psi = psi / torch.sqrt((pi[:, None] * psi**2).sum(dim=0, keepdim=True))
    coords = psi[:, 1 : n_coords + 1] * vals[1 : n_coords + 1] ** t
    return DiffusionMap(
        coords=coords.numpy(),
        eigenvalues=vals.numpy(),
        eigenvectors=psi.numpy(),
        index=index.numpy(),
        eps=eps,
    )


def _class_colours(n: int) -> list[Any]:
    """``n`` distinct categorical colours: tab10 up to 10 classes, then tab20."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n)]


def diffusion_map_plot(
    latents: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    path: str | os.PathLike[str],
    *,
    pairs: Sequence[tuple[int, int]] = ((1, 2), (1, 3), (2, 3)),
    max_points: int = 2000,
    seed: int = 0,
    title: str = "",
) -> Path:
    """PNG of diffusion-map coordinate pairs (DC_i vs DC_j) of ``latents`` coloured by
    ``labels``, one colour per class with a categorical legend (labels are classes, not a
    scale). Axes span the 1st..99th percentiles (the notebook drops outliers with a
    Gaussian mixture; clipping the view keeps every point and the same picture)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    labels = np.asarray(torch.as_tensor(labels).cpu())
    if labels.shape[0] != len(latents):
        raise ValueError(f"{len(latents)} latents but {labels.shape[0]} labels")
    n_coords = max(max(p) for p in pairs)
    dm = diffusion_map(latents, n_coords, max_points=max_points, seed=seed)
    lab = labels[dm.index]
    fig = Figure(figsize=(4.2 * len(pairs) + 1.2, 4.2), layout="constrained")
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    classes = np.unique(lab)
    colours = _class_colours(len(classes))
    for ax, (i, j) in zip(axes, pairs, strict=True):
        x, y = dm.coords[:, i - 1], dm.coords[:, j - 1]
        for colour, cls in zip(colours, classes, strict=True):
            keep = lab == cls
            ax.scatter(x[keep], y[keep], s=5, alpha=0.6, color=colour, label=str(cls))
        for v, axis_set in ((x, ax.set_xlim), (y, ax.set_ylim)):
            lo, hi = np.percentile(v, [1, 99])
            margin = 0.05 * (hi - lo + 1e-12)
            axis_set(lo - margin, hi + margin)
        ax.set_xlabel(f"Diffusion Map coord {i}")
        ax.set_ylabel(f"Diffusion Map coord {j}")
        ax.set_title(f"DC{i} vs DC{j}")
    # class labels are categories: one legend entry (colour) per class, outside the panels
    fig.legend(
        *axes[0].get_legend_handles_labels(),
        title="class",
        loc="outside right center",
        markerscale=3,
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
