"""Device convention: every sampler fits and runs on CUDA and there draws the numbers its
CPU run draws (one seeded CPU generator per run, draws moved to the particles' device:
``common.random``), so a CUDA run equals the CPU run up to floating-point rounding; and the
convention left every CPU run bit for bit what it was before it (digests recorded at
a360873 by ``python -m tests.helpers.device_runs --write``)."""

from __future__ import annotations

import json

import pytest
import torch

from common import random
from samplers import available_samplers
from tests.helpers.device_runs import DIGESTS, digest, environment_key, smoke_run

SAMPLERS = available_samplers()

# CPU vs CUDA tolerance. Both runs draw the same numbers and compute in float64; they differ
# only by summation order (cuBLAS vs CPU BLAS, ~1e-16 relative per operation), amplified by
# the fit's eigensolves (1 / spectral gap) and a few dozen Adam steps in the neural fits. A
# different random draw moves particles by O(1) and a silent float32 path by ~1e-7 x scale
# per operation, compounded over the run; 1e-6 on unit-scale particles separates those from
# rounding with a wide margin on either side.
CUDA_ATOL = CUDA_RTOL = 1e-6


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", SAMPLERS)
def test_cuda_fit_and_run_match_the_cpu_run(name):
    cpu = smoke_run(name, "cpu")
    cuda = smoke_run(name, "cuda")  # asserts the particles stay on the CUDA device
    torch.testing.assert_close(cuda, cpu, atol=CUDA_ATOL, rtol=CUDA_RTOL)


@pytest.mark.parametrize("name", SAMPLERS)
def test_cpu_runs_are_bit_identical_to_before_the_device_convention(name):
    record = json.loads(DIGESTS.read_text())
    if record["environment"] != environment_key():
        pytest.skip(f"digests were made with {record['environment']}, not {environment_key()}")
    threads = torch.get_num_threads()
    torch.set_num_threads(record["threads"])
    try:
        assert digest(smoke_run(name, "cpu")) == record["digests"][name]
    finally:
        torch.set_num_threads(threads)


def test_draw_helpers_draw_what_torch_draws_on_the_generator_device():
    # on the CPU the helpers must be exactly torch's own draws (what kept CPU runs identical)
    pairs = [
        (
            random.randn(5, 3, generator=random.make_generator(3), dtype=torch.float32),
            torch.randn(5, 3, generator=random.make_generator(3), dtype=torch.float32),
        ),
        (
            random.rand(7, generator=random.make_generator(4)),
            torch.rand(7, generator=random.make_generator(4), dtype=torch.float64),
        ),
        (
            random.randint(0, 9, (6,), generator=random.make_generator(5)),
            torch.randint(0, 9, (6,), generator=random.make_generator(5)),
        ),
        (
            random.randperm(8, generator=random.make_generator(6)),
            torch.randperm(8, generator=random.make_generator(6)),
        ),
    ]
    for ours, torchs in pairs:
        assert torch.equal(ours, torchs)
    moved = random.randn(4, generator=random.make_generator(1), device="meta")
    assert moved.device.type == "meta" and moved.dtype == torch.float64


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_generator_draws_the_same_numbers_for_cuda():
    on_cuda = random.randn(100, 4, generator=random.make_generator(2), device="cuda")
    assert on_cuda.device.type == "cuda"
    assert torch.equal(on_cuda.cpu(), random.randn(100, 4, generator=random.make_generator(2)))
