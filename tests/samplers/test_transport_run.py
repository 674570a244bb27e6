"""The shared transport loop's per-particle stability control (issue 24: the cap as a signal,
not the mechanism): closed-form checks on a linear field and on DMPS runs."""

from __future__ import annotations

import pytest
import torch

from samplers import get_sampler
from samplers.base import SamplerError
from samplers.core.transport_run import clipped_displacement, damped_displacement
from tests.helpers.gaussian import GaussianTarget

F64 = torch.float64
BLOB = GaussianTarget(torch.zeros(2), torch.eye(2), name="blob")


def linear_run(control: str, rate: float, x0: float = 5.5, steps: int = 200):
    """x <- x - dx with the undamped move raw = rate * x (explicit Euler on dx/dt = -x with
    h = rate) and the cap 1: (caps, damps, trajectory)."""
    x = torch.tensor([[x0]], dtype=F64)
    gain = torch.ones(1, 1, dtype=F64)
    last = torch.zeros_like(x)
    caps = damps = 0
    traj = []
    for _ in range(steps):
        raw = rate * x
        if control == "off":
            dx, n_cap = clipped_displacement(raw, 1.0, 1.0)
            n_damp = 0
        else:
            dx, gain, n_cap, n_damp = damped_displacement(raw, gain, last, 1.0)
            last = dx
        x = x - dx
        caps += n_cap
        damps += n_damp
        traj.append(float(x))
    return caps, damps, torch.tensor(traj, dtype=F64)


def test_stable_steps_are_bit_for_bit_the_capped_step() -> None:
    """h = 1.5 < 2 is a stable explicit step: the cap binds only on the way in (5 steps from
    5.5), no move reverses at the cap, and the damped run is the capped run exactly."""
    off = linear_run("off", 1.5)
    damp = linear_run("damp", 1.5)
    assert off[0] == damp[0] == 5 and damp[1] == 0
    assert torch.equal(off[2], damp[2])


@pytest.mark.parametrize("rate", [3.0, 10.0])
def test_an_unstable_step_is_damped_not_held_by_the_cap(rate: float) -> None:
    """h = 3 or 10 > 2: explicit Euler flips and grows by |1 - h| a step. With the cap alone
    the particle is held at the closed-form 2-cycle +-0.5 (5.5 steps down by 1 to 0.5, then
    the capped move of 1 overshoots to -0.5 and back) and every step is capped. Damped, the
    gain halves at each capped reversal and climbs back by 10 % a step, so it hovers at the
    stability limit 2 / h: measured 29 (h = 3) and 31 (h = 10) capped steps of 200, and a
    mean |x| of 0.20 / 0.16 over the last 100 steps; the bounds leave ~30 % of margin."""
    caps, damps, traj = linear_run("off", rate)
    assert caps == 200
    assert torch.allclose(traj[100:].abs(), torch.full((100,), 0.5, dtype=F64))
    caps, damps, traj = linear_run("damp", rate)
    assert damps > 0
    assert caps <= 40  # <= 20 % of the steps, against 100 %
    assert float(traj[100:].abs().mean()) < 0.26  # against 0.5 held by the cap


def _dmps_runs(step_fraction: float, max_step: float):
    g = torch.Generator().manual_seed(3)
    train = torch.randn(300, 2, generator=g, dtype=F64)
    x0 = 2.5 * torch.randn(60, 2, generator=g, dtype=F64)
    out = {}
    for control in ("off", "damp"):
        s = get_sampler(
            "dmps",
            n_modes=40,
            step_fraction=step_fraction,
            max_step=max_step,
            step_control=control,
        ).fit(train, BLOB)
        out[control] = s.run(x0, 100, seed=0)
    return out


def test_dmps_step_control_changes_only_runs_where_the_cap_met_a_reversal() -> None:
    """Defaults (0.2, cap 1): the cap binds a few times (0.08 % of particle-steps) but never
    against a reversal, so "damp" and "off" agree bit for bit. A 5x step with half the cap
    (1.0, 0.5): "off" caps 12.7 % of the particle-steps; damping halves the oscillating
    particles' steps and caps 3.5 % (measured; asserted: under half of "off")."""
    runs = _dmps_runs(0.2, 1.0)
    assert runs["off"].info["clipped_fraction"] > 0 and runs["damp"].info["n_damped"] == 0
    assert torch.equal(runs["off"].particles, runs["damp"].particles)
    runs = _dmps_runs(1.0, 0.5)
    off, damp = runs["off"].info, runs["damp"].info
    assert off["step_control"] == "off" and off["n_damped"] == 0
    assert damp["n_damped"] > 0
    assert damp["clipped_fraction"] < 0.5 * off["clipped_fraction"]
    assert off["clipped_fraction"] > 0.1


def test_step_control_rejects_unknown_values() -> None:
    with pytest.raises((SamplerError, ValueError), match="step_control"):
        get_sampler("dmps", step_control="halve")
