"""Shared fixtures. Importing ``benchmarks`` first guarantees ``datasets`` is this repo's."""

from __future__ import annotations

import os

import pytest
import torch

import benchmarks  # noqa: F401

# Tests must not oversubscribe a 2-core CI machine.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def gaussian2d():
    from tests.helpers.gaussian import correlated_gaussian_2d

    return correlated_gaussian_2d()
