"""Fixtures shared by the harness tests."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import harness_plugin as hp


@pytest.fixture
def plugin(monkeypatch):
    """The harness test plug-in (target, metric, slow and crashing samplers), registered for
    this test only; the torch thread count a run pins is restored afterwards."""
    threads = torch.get_num_threads()
    with hp.use_in_process(monkeypatch):
        yield
    torch.set_num_threads(threads)
