"""n_train = "all": the whole training pool of image-latent targets (``--train-size all``)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.execution.data import prepare
from benchmarks.options import train_size
from datasets.base import get_target


def test_train_size_all_uses_the_whole_digits_training_pool() -> None:
    pool = get_target("digits_latent").pool("train")
    data = prepare("digits_latent", 0, "all", 50, 20, ("gaussian",), 1)
    assert data.train.shape == pool.shape  # all 1,257 codes of digits' training split
    # the standardisation maps the pool itself, so the training split is exactly it
    torch_close = (data.target.to_standard(pool) - data.train).abs().max()
    assert float(torch_close) == 0.0


def test_train_size_all_refuses_sampling_targets() -> None:
    with pytest.raises(ValueError, match="finite-pool"):
        prepare("circle", 0, "all", 50, 20, ("gaussian",), 1)


def test_train_size_option_parsing() -> None:
    assert train_size("all") == "all"
    assert train_size("60000") == 60000
    assert train_size("2") == 2
    for bad in ("0", "1", "-3", "most"):  # one training point has no spread to standardise by
        with pytest.raises(argparse.ArgumentTypeError, match="integer >= 2 or 'all'"):
            train_size(bad)
