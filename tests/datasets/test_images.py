"""Image loaders: IDX (gz) and CIFAR-10 pickle files built by hand and read by the real code."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets import DataMissingError
from datasets.images.readers import (
    DataFormatError,
    load_images,
    read_idx,
    write_idx,
)

FMNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding straight from the format spec (magic 0x0000 08 ndim, big-endian sizes)."""
    assert array.dtype == np.uint8
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.tobytes(order="C")


def write_mnist_like(folder: Path, n_train: int, n_test: int, *, gz: bool = True) -> dict:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, arr in arrays.items():
        raw = idx_bytes(arr)
        if gz:
            with gzip.open(folder / f"{stem}.gz", "wb") as f:
                f.write(raw)
        else:
            (folder / stem).write_bytes(raw)
    return arrays


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_idx_gz_round_trip_torchvision_layout(tmp_path: Path) -> None:
    arrays = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=5, n_test=3)
    before = snapshot(tmp_path / "MNIST" / "raw")
    train = load_images("mnist", "train", data_root=tmp_path)
    test = load_images("mnist", "test", data_root=tmp_path)
    assert train.data.shape == (5, 1, 28, 28) and train.data.dtype == torch.uint8
    np.testing.assert_array_equal(train.data[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(train.labels.numpy(), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(test.data[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    imgs = train.images()
    assert imgs.dtype == torch.float32
    assert torch.allclose(imgs * 255, train.data.float())
    # the originals are only read: same files, same bytes, same mtimes, nothing added
    assert snapshot(tmp_path / "MNIST" / "raw") == before


def test_idx_flat_debian_layout_and_plain_files(tmp_path: Path) -> None:
    arrays = write_mnist_like(tmp_path / "fashion-mnist", n_train=4, n_test=2)
    data = load_images("fashion_mnist", "train", data_root=tmp_path)
    np.testing.assert_array_equal(data.data[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert data.classes[0] == "T-shirt/top"
    plain = write_mnist_like(tmp_path / "other" / "FashionMNIST" / "raw", 3, 2, gz=False)
    data = load_images("fashion_mnist", "test", data_root=tmp_path / "other")
    np.testing.assert_array_equal(data.labels.numpy(), plain["t10k-labels-idx1-ubyte"])


def test_write_idx_matches_spec_bytes(tmp_path: Path) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr)
    with gzip.open(tmp_path / "a.gz", "rb") as f:
        assert f.read() == idx_bytes(arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)


def test_bad_idx_files_raise_format_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataFormatError, match="not an IDX file"):
        read_idx(bad)
    truncated = tmp_path / "trunc"
    truncated.write_bytes(idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3])
    with pytest.raises(DataFormatError, match="declares shape"):
        read_idx(truncated)
    notgz = tmp_path / "x.gz"
    notgz.write_bytes(b"not gzip at all")
    with pytest.raises(DataFormatError, match="cannot read"):
        read_idx(notgz)


def test_missing_idx_names_files_and_flag(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as err:
        load_images("mnist", "train", data_root=tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg and "--data-root" in msg
    # only one of the two files present: still missing
    write_mnist_like(tmp_path / "MNIST" / "raw", 2, 2)
    os.remove(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataMissingError, match="t10k-labels-idx1-ubyte"):
        load_images("mnist", "test", data_root=tmp_path)
    with pytest.raises(DataMissingError, match="dataset-fashion-mnist"):
        load_images("fashion_mnist", "test", data_root=tmp_path)


def write_cifar(folder: Path, per_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Batches as the CIFAR authors ship them: dict(b"data": (n, 3072) uint8 with the red
    plane, then green, then blue, each row-major 32x32; b"labels": list of ints)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    all_img, all_lab = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        img = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        lab = rng.integers(0, 10, per_batch)
        rows = np.concatenate([img[:, c].reshape(per_batch, 1024) for c in range(3)], axis=1)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rows, b"labels": lab.tolist(), b"batch_label": b"x"}, f)
        all_img.append(img)
        all_lab.append(lab)
    return np.concatenate(all_img), np.concatenate(all_lab)


def test_cifar_pickle_round_trip(tmp_path: Path) -> None:
    images, labels = write_cifar(tmp_path / "cifar-10-batches-py", per_batch=2)
    train = load_images("cifar10", "train", data_root=tmp_path)
    test = load_images("cifar10", "test", data_root=tmp_path)
    assert train.data.shape == (10, 3, 32, 32) and test.data.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(train.data.numpy(), images[:10])
    np.testing.assert_array_equal(test.data.numpy(), images[10:])
    np.testing.assert_array_equal(train.labels.numpy(), labels[:10])
    assert train.classes[1] == "automobile"


def test_cifar_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as err:
        load_images("cifar10", "train", data_root=tmp_path)
    msg = str(err.value)
    assert "data_batch_1" in msg and "data_batch_5" in msg
    assert str(tmp_path / "cifar-10-batches-py") in msg and "--data-root" in msg
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, per_batch=1)
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="test_batch"):
        load_images("cifar10", "test", data_root=tmp_path)


def test_download_goes_through_torchvision(tmp_path: Path, monkeypatch) -> None:
    """download=True calls torchvision's class, whose files the offline reader then finds."""
    import torchvision.datasets as tvd

    calls = []

    class FakeMNIST:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            write_mnist_like(Path(root) / "MNIST" / "raw", 3, 2)

    monkeypatch.setattr(tvd, "MNIST", FakeMNIST)
    with pytest.raises(DataMissingError):
        load_images("mnist", "train", data_root=tmp_path)
    assert calls == []
    data = load_images("mnist", "train", data_root=tmp_path, download=True)
    assert len(data) == 3 and calls[0] == (str(tmp_path), True, True)

    class Offline:
        def __init__(self, **kwargs) -> None:
            raise OSError("network unreachable")

    monkeypatch.setattr(tvd, "CIFAR10", Offline)
    with pytest.raises(DataMissingError, match="could not download"):
        load_images("cifar10", "train", data_root=tmp_path, download=True)


def test_digits_split_is_a_stratified_partition() -> None:
    from sklearn.datasets import load_digits

    train = load_images("digits", "train")
    test = load_images("digits", "test")
    assert (len(train), len(test)) == (1257, 540)
    assert train.image_shape == (1, 8, 8) and float(train.images().max()) == 1.0
    full = np.rint(load_digits().images).astype(np.uint8).reshape(1797, -1)
    both = torch.cat([train.data, test.data]).reshape(1797, -1).numpy()
    # same multiset of rows: sort lexicographically and compare
    key = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(key(both), key(full))
    freq = test.label_frequencies()
    assert float((freq - train.label_frequencies()).abs().max()) < 0.01


@pytest.mark.skipif(not FMNIST_DEBIAN.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian_package() -> None:
    data = load_images("fashion_mnist", "test", data_root=FMNIST_DEBIAN.parent)
    assert data.data.shape == (10_000, 1, 28, 28)
    assert torch.allclose(data.label_frequencies(), torch.full((10,), 0.1, dtype=torch.float64))
