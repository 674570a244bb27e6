"""common/random.py: seeded draws through an explicit generator, made on its device."""

from __future__ import annotations

import torch

from common.random import make_generator, subsample_rows


def test_subsample_rows_is_the_head_of_a_seeded_permutation():
    z = torch.arange(40.0).reshape(20, 2)
    got = subsample_rows(z, 7, generator=make_generator(3))
    want = z[torch.randperm(20, generator=torch.Generator().manual_seed(3))[:7]]
    assert torch.equal(got, want)
    assert len(set(got[:, 0].tolist())) == 7  # without replacement
    # the same generator state gives the same rows; the draw advances the generator
    gen = make_generator(3)
    first = subsample_rows(z, 7, generator=gen)
    assert torch.equal(first, got) and not torch.equal(subsample_rows(z, 7, generator=gen), got)


def test_subsample_rows_keeps_a_small_cloud_and_draws_nothing():
    z = torch.randn(5, 3, generator=make_generator(0))
    gen = make_generator(1)
    assert subsample_rows(z, 5, generator=gen) is z
    assert subsample_rows(z, 9, generator=gen) is z
    assert torch.equal(torch.rand(1, generator=gen), torch.rand(1, generator=make_generator(1)))
