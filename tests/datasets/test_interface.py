"""The Target interface shared by every family: splits, finite pools, missing data, registry."""

from __future__ import annotations

import pytest
import torch

from datasets import TARGETS, DataMissingError, StandardisedTarget, Target, TargetError
from datasets.base import available_targets, get_target, register_target
from tests.helpers.gaussian import GaussianTarget


@pytest.mark.parametrize("name", ["gaussian_2d", "circle", "dirichlet3"])
def test_sample_split_defaults_to_sample(name: str) -> None:
    target = get_target(name)
    assert not target.finite_pool
    for split in ("train", "reference"):
        assert torch.equal(target.sample_split(50, split=split, seed=3), target.sample(50, seed=3))


def test_standardised_sample_split_is_the_base_split_standardised() -> None:
    base = get_target("ring8")
    std = StandardisedTarget.from_samples(base, base.sample(200, seed=0))
    assert not std.finite_pool
    got = std.sample_split(40, split="reference", seed=5)
    assert torch.equal(got, std.to_standard(base.sample_split(40, split="reference", seed=5)))
    assert torch.equal(got, std.sample(40, seed=5))


def test_data_missing_is_a_file_not_found_error() -> None:
    assert issubclass(DataMissingError, FileNotFoundError)


def test_registry_scoped_registration_and_errors() -> None:
    with TARGETS.scoped():

        @register_target("_scoped_gauss", "mixtures")
        def scoped_gauss() -> Target:
            return GaussianTarget(torch.zeros(2), torch.eye(2), name="_scoped_gauss")

        assert "_scoped_gauss" in available_targets("mixtures")
        assert "_scoped_gauss" not in available_targets("manifolds")
        assert get_target("_scoped_gauss").dim == 2
        with pytest.raises(TargetError, match="registered twice"):
            register_target("_scoped_gauss", "mixtures")(scoped_gauss)
    assert "_scoped_gauss" not in available_targets()
    with pytest.raises(TargetError, match="unknown target '_scoped_gauss'"):
        get_target("_scoped_gauss")
    with pytest.raises(TargetError, match="unknown family"):
        register_target("_x", "nope")


@pytest.mark.parametrize(
    ("train", "match"),
    [
        (torch.full((5, 2), float("nan"), dtype=torch.float64), "NaN or infinite"),
        (torch.zeros(0, 2, dtype=torch.float64), "needs >= 2 training points, got 0"),
        (torch.zeros(1, 2, dtype=torch.float64), "needs >= 2 training points, got 1"),
        (torch.ones(5, 2, dtype=torch.int64), "floating tensor"),
        (torch.zeros(5, 3, dtype=torch.float64), "dimension 3, the target has dimension 2"),
    ],
)
def test_standardising_refuses_training_data_it_cannot_summarise(train, match) -> None:
    """NaN training data used to give a target with a NaN mean (the std fallback turned a
    NaN std into 1), found only later and elsewhere; now the split is refused at once."""
    with pytest.raises(TargetError, match=match):
        StandardisedTarget.from_samples(get_target("circle"), train)
    with pytest.raises(TargetError, match="must be finite"):
        StandardisedTarget(get_target("circle"), torch.tensor([0.0, float("nan")]), torch.ones(2))
