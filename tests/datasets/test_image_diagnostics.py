"""Class coverage, image grids and diffusion maps, checked against direct computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.images.diagnostics import (
    class_coverage,
    diffusion_map,
    diffusion_map_plot,
    image_grid,
    load_or_train_classifier,
    save_image_grid,
)
from datasets.images.readers import load_images


def fixed_labels(labels: torch.Tensor):
    """A 'classifier' that returns known labels, so the expected histogram is exact."""
    return lambda images: labels


def test_class_coverage_exact_values() -> None:
    real = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    images = torch.zeros(8, 1, 2, 2)
    same = class_coverage(images, fixed_labels(torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])), real)
    assert same.total_variation == 0.0 and same.n_missing == 0
    assert same.counts.tolist() == [4, 2, 2]
    assert class_coverage(
        images, fixed_labels(torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])), real, smoothing=0.0
    ).kl == pytest.approx(0.0, abs=1e-15)
    one = class_coverage(images, fixed_labels(torch.zeros(8, dtype=torch.long)), real)
    assert one.total_variation == pytest.approx(0.5)
    assert one.n_missing == 2
    # KL(p || q_s) by hand, q_s = (counts + 1/2) / (8 + 3/2)
    q = np.array([8.5, 0.5, 0.5]) / 9.5
    p = real.numpy()
    assert one.kl == pytest.approx(float(np.sum(p * np.log(p / q))), rel=1e-12)
    # logits are accepted too
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    assert class_coverage(images[:4], fixed_labels(logits), real).total_variation == 0.0


def test_class_coverage_bad_input() -> None:
    images = torch.zeros(3, 1, 2, 2)
    with pytest.raises(ValueError, match="sum to 1"):
        class_coverage(images, fixed_labels(torch.zeros(3, dtype=torch.long)), [0.5, 0.2])
    with pytest.raises(ValueError, match="outside"):
        class_coverage(images, fixed_labels(torch.tensor([0, 1, 5])), [0.5, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        class_coverage(images * float("nan"), fixed_labels(torch.zeros(3)), [1.0])
    with pytest.raises(ValueError, match="non-empty"):
        class_coverage(torch.zeros(0, 1, 2, 2), fixed_labels(torch.zeros(0)), [1.0])


def test_digits_classifier_coverage(tmp_path: Path) -> None:
    train = load_images("digits", "train")
    test = load_images("digits", "test")
    clf = load_or_train_classifier(train, cache_dir=tmp_path, progress=False)
    assert not clf.from_cache
    assert clf.accuracy(test.images(), test.labels) > 0.9
    real = train.label_frequencies()
    cov = class_coverage(test.images(), clf, real)
    assert cov.total_variation < 0.05 and cov.n_missing == 0
    threes = test.images(torch.nonzero(test.labels == 3).flatten())
    single = class_coverage(threes, clf, real)
    assert single.total_variation > 0.8 and single.n_missing >= 5
    assert single.kl > 10 * cov.kl
    again = load_or_train_classifier(train, cache_dir=tmp_path, progress=False)
    assert again.from_cache
    assert torch.equal(again.predict(test.images()), clf.predict(test.images()))


def test_image_grid_and_png(tmp_path: Path) -> None:
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    imgs = torch.rand(5, 1, 4, 3, generator=gen)
    grid = image_grid(imgs, nrow=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 4 + 1) and grid.dtype == np.uint8
    # image 4 sits in row 1, column 1
    np.testing.assert_array_equal(grid[6:10, 5:8], np.rint(imgs[4, 0].numpy() * 255))
    assert (grid[0] == 255).all()
    path = save_image_grid(torch.rand(6, 3, 8, 8, generator=gen), tmp_path / "g" / "a.png", scale=2)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.size == (2 * (3 * 9 + 1), 2 * (2 * 9 + 1))
    with pytest.raises(ValueError, match="NaN"):
        save_image_grid(torch.full((2, 1, 3, 3), float("nan")), tmp_path / "b.png")
    with pytest.raises(ValueError, match="C = 1 or 3"):
        image_grid(torch.zeros(2, 2, 3, 3))


def test_diffusion_map_matches_dense_markov_eigenproblem() -> None:
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(120, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.5])
    dm = diffusion_map(z, n_coords=4)
    # independent: build P = D^{-1} K in numpy from the notebook's recipe
    x = z.numpy()
    x = (x - x.mean(0)) / x.std(0, ddof=1)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    eps = np.median(d2) / (2 * np.log(x.shape[0]))
    k = np.exp(-d2 / (2 * eps))
    p = k / k.sum(1, keepdims=True)
    lam = np.sort(np.linalg.eigvals(p).real)[::-1]
    assert dm.eps == pytest.approx(eps, rel=1e-12)
    assert dm.eigenvalues.shape == (5,) and dm.eigenvectors.shape == (120, 5)
    np.testing.assert_allclose(dm.eigenvalues, lam[:5], atol=1e-10)
    assert dm.eigenvalues[0] == pytest.approx(1.0, abs=1e-12)
    psi = dm.eigenvectors[:, :5]
    np.testing.assert_allclose(p @ psi, psi * dm.eigenvalues[:5], atol=1e-9)
    np.testing.assert_allclose(psi[:, 0], np.ones(120) * np.sign(psi[0, 0]), atol=1e-9)
    np.testing.assert_allclose(dm.coords, psi[:, 1:5] * dm.eigenvalues[1:5], atol=1e-12)


def test_diffusion_map_plot_subsamples(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(300, 4, generator=gen, dtype=torch.float64)
    labels = torch.arange(300) % 10
    path = diffusion_map_plot(z, labels, tmp_path / "dm.png", max_points=150, title="t")
    assert path.stat().st_size > 5000
    dm = diffusion_map(z, 3, max_points=150, seed=0)
    assert dm.coords.shape == (150, 3) and len(set(dm.index.tolist())) == 150
    with pytest.raises(ValueError, match="labels"):
        diffusion_map_plot(z, labels[:10], tmp_path / "x.png")
    with pytest.raises(ValueError, match="NaN"):
        diffusion_map(z * float("nan"))
