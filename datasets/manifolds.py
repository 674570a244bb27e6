"""Targets supported on low-dimensional manifolds or thin shells (family ``manifolds``).

Most have no density with respect to Lebesgue measure on R^d, so they give no
``log_prob``/``score`` (``has_score`` is False): score-driven samplers use a KDE score on
the training split. The shells do have one (uniform on the annulus r_min <= |x| <= r_max):
they give the constant ``log_prob`` (-inf outside) but, like the uniform ``bounded``
targets, report no score: the score is zero inside and undefined on the boundary, which
gives Langevin-type samplers nothing to follow (see ``datasets.bounded``).

Each target overrides :meth:`cap_mask` with an explicit region (the ``cap`` init scheme of
the DMPS/KSWGD experiments) and ``wrong_mask`` (the region a deliberately wrong sample is
drawn from, for the metric calibration test: half of the support, except ``shell100``).

Metric eps (family choice, in the standardised space): 0.05 x the reference set's median
squared pairwise distance for the 2-D and 3-D manifolds: a blur sqrt(eps) of about 0.4-0.55
standardised units, well below the size of the supports, and the smallest fraction at which
POT's standard iterations stay accurate (DESIGN.md); smaller fractions only raise the noise
floor of fresh samples and the iteration count (``results/targets/calibration.md``).
``shell100`` uses 1.0: in d = 100 the noise floor of fresh samples swamps any signal at
small eps (measured while choosing, n = 500: S(exact) 118.7 vs S(half) 119.0 at 0.05), and
even at large eps a half-space sample (which changes 1 coordinate of 100) stays within about
2x of the noise floor at n = 500 (2.1x at 1.0, 2.7x at 5.0). Its wrong sample is therefore
the cap region x_2 > 0.2 (mass stuck where the ``cap`` init put it), well separated at 1.0 x
median (``results/targets/calibration.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from common.random import make_generator
from datasets.base import Target, TargetError, register_target
from datasets.calibration import HalfSupportCorruption
from datasets.regions import UniformDensity, UpperCapRightHalf

TWO_PI = 2 * math.pi


def uniform_directions(n: int, dim: int, gen: torch.Generator) -> Tensor:
    """``n`` points uniform on the unit sphere S^{dim-1}: normalised standard Gaussians."""
    z = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return z / z.norm(dim=1, keepdim=True)


class UnitSphere(UpperCapRightHalf, Target):
    """Uniform (surface) measure on the unit sphere S^{d-1} in R^d (d = 2: the circle), or
    with ``upper_half`` on its half {|x| = 1, x_d > 0} (a sphere point with x_d -> |x_d|).

    Cap: ``x_2 > cap_threshold`` (second coordinate). Wrong sample: the half ``x_1 > 0``.
    """

    def __init__(
        self,
        name: str,
        dim: int,
        cap_threshold: float,
        upper_half: bool = False,
        metric_eps_fraction: float = 0.05,
    ) -> None:
        support = (
            f"the half-sphere {{|x| = 1, x_{dim} > 0}}"
            if upper_half
            else f"the unit sphere S^{dim - 1}"
        )
        super().__init__(
            name, dim, "manifolds", metric_eps_fraction, f"uniform on {support} in R^{dim}"
        )
        self.cap_threshold = cap_threshold
        self.upper_half = upper_half

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        u = uniform_directions(n, self.dim, gen)
        if self.upper_half:
            return torch.cat([u[:, :-1], u[:, -1:].abs()], dim=1)
        return u


class SphericalShell(UniformDensity, UpperCapRightHalf, Target):
    """Uniform (volume) measure on the annulus r_min <= |x| <= r_max in R^d.

    x = r u with u uniform on S^{d-1} and radial density prop. to r^{d-1} on [r_min, r_max]:
    r = (r_min^d + U (r_max^d - r_min^d))^{1/d}. log p = -log(vol B_d (r_max^d - r_min^d))
    inside, -inf outside; no score (zero inside, see module docstring).
    Cap: ``x_2 > cap_threshold``. Wrong sample: the half ``x_1 > 0`` (``wrong_region="half"``)
    or the cap (``wrong_region="cap"``, used in high dimension, see module docstring).
    """

    def __init__(
        self,
        name: str,
        dim: int,
        cap_threshold: float,
        metric_eps_fraction: float,
        r_min: float = 0.99,
        r_max: float = 1.0,
        wrong_region: str = "half",
    ) -> None:
        if wrong_region not in ("half", "cap"):
            raise TargetError(f"wrong_region must be 'half' or 'cap', got {wrong_region!r}")
        if not 0 < r_min < r_max:
            raise TargetError(f"need 0 < r_min < r_max, got {r_min}, {r_max}")
        super().__init__(
            name,
            dim,
            "manifolds",
            metric_eps_fraction,
            f"uniform on the shell {r_min} <= |x| <= {r_max} in R^{dim}",
        )
        self.cap_threshold = cap_threshold
        self.wrong_region = wrong_region
        self.r_min, self.r_max = r_min, r_max
        # log vol = (d/2) log pi - lgamma(d/2 + 1) + d log r_max + log(1 - (r_min/r_max)^d)
        self.log_volume = (
            0.5 * dim * math.log(math.pi)
            - math.lgamma(0.5 * dim + 1)
            + dim * math.log(r_max)
            + math.log1p(-((r_min / r_max) ** dim))
        )

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        u = uniform_directions(n, self.dim, gen)
        a = (self.r_min / self.r_max) ** self.dim
        v = torch.rand(n, 1, generator=gen, dtype=torch.float64)
        r = self.r_max * (a + v * (1 - a)) ** (1.0 / self.dim)
        return r * u

    def inside(self, x: Tensor) -> Tensor:
        r = x.norm(dim=1)
        return (r >= self.r_min) & (r <= self.r_max)

    def wrong_mask(self, x: Tensor) -> Tensor:
        return self.cap_mask(x) if self.wrong_region == "cap" else super().wrong_mask(x)


class SwissRoll(HalfSupportCorruption, Target):
    """Swiss roll surface (no noise): x = (t cos t, h, t sin t), t ~ U[1.5 pi, 4.5 pi],
    h ~ U[0, height] (the parametrisation of sklearn's ``make_swiss_roll``; uniform in the
    parameters, so denser near the inner end of the roll than the surface measure).

    The roll radius sqrt(x_1^2 + x_3^2) equals t. Cap: the inner end t < t_lo + 0.15
    (t_hi - t_lo) (15 % of the mass). Wrong sample: the inner half of the roll, t < (t_lo + t_hi)/2.
    """

    t_lo, t_hi = 1.5 * math.pi, 4.5 * math.pi

    def __init__(
        self, name: str = "swiss_roll", height: float = 21.0, metric_eps_fraction: float = 0.05
    ) -> None:
        super().__init__(
            name,
            3,
            "manifolds",
            metric_eps_fraction,
            "swiss roll surface (t cos t, h, t sin t), t in [1.5pi, 4.5pi], no noise",
        )
        self.height = height

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        u = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        t = self.t_lo + (self.t_hi - self.t_lo) * u[:, 0]
        h = self.height * u[:, 1]
        return torch.stack([t * torch.cos(t), h, t * torch.sin(t)], dim=1)

    @staticmethod
    def roll_parameter(x: Tensor) -> Tensor:
        """t = sqrt(x_1^2 + x_3^2), the position along the roll, ``(n,)``."""
        return torch.hypot(x[:, 0], x[:, 2])

    def cap_mask(self, x: Tensor) -> Tensor:
        return self.roll_parameter(x) < self.t_lo + 0.15 * (self.t_hi - self.t_lo)

    def wrong_mask(self, x: Tensor) -> Tensor:
        return self.roll_parameter(x) < 0.5 * (self.t_lo + self.t_hi)


class Torus(HalfSupportCorruption, Target):
    """Uniform (surface) measure on the torus (sqrt(x_1^2 + x_2^2) - R)^2 + x_3^2 = r^2.

    x = ((R + r cos a) cos b, (R + r cos a) sin b, r sin a); b ~ U[0, 2 pi) and the tube
    angle a has density (1 + (r/R) cos a) / (2 pi) (the area element), drawn exactly by
    rejection from U[0, 2 pi) with acceptance (R + r cos a) / (R + r).
    Cap: the sector x_2 > 0.9 sqrt(x_1^2 + x_2^2) (b within acos 0.9 of pi/2: 14.4 %).
    Wrong sample: the half ``x_1 > 0``.
    """

    def __init__(
        self,
        name: str = "torus",
        major: float = 2.0,
        minor: float = 0.5,
        metric_eps_fraction: float = 0.05,
    ) -> None:
        if not 0 < minor < major:
            raise TargetError(f"need 0 < minor < major, got {minor}, {major}")
        super().__init__(
            name,
            3,
            "manifolds",
            metric_eps_fraction,
            f"uniform on the torus in R^3, radii R = {major}, r = {minor}",
        )
        self.major, self.minor = major, minor

    def _tube_angles(self, n: int, gen: torch.Generator) -> Tensor:
        out: list[Tensor] = []
        got = 0
        accept = self.major / (self.major + self.minor)  # mean acceptance rate
        while got < n:
            m = int((n - got) / accept * 1.1) + 16
            a = TWO_PI * torch.rand(m, generator=gen, dtype=torch.float64)
            u = torch.rand(m, generator=gen, dtype=torch.float64)
            keep = a[u * (self.major + self.minor) < self.major + self.minor * torch.cos(a)]
            out.append(keep)
            got += keep.numel()
        return torch.cat(out)[:n] if out else torch.zeros(0, dtype=torch.float64)

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        a = self._tube_angles(n, gen)
        b = TWO_PI * torch.rand(n, generator=gen, dtype=torch.float64)
        rho = self.major + self.minor * torch.cos(a)
        return torch.stack([rho * torch.cos(b), rho * torch.sin(b), self.minor * torch.sin(a)], 1)

    def cap_mask(self, x: Tensor) -> Tensor:
        return x[:, 1] > 0.9 * torch.hypot(x[:, 0], x[:, 1])

    def wrong_mask(self, x: Tensor) -> Tensor:
        return x[:, 0] > 0


class TwoMoons(Target):
    """Two interleaved half circles (no noise by default), each with probability 1/2:
    outer (cos t, sin t), inner (1 - cos t, 1/2 - sin t), t ~ U[0, pi]; plus optional
    N(0, noise^2 I) noise (noise > 0 makes it a density, not given in closed form here).

    Cap: ``x_1 < -0.6``, the left tip of the outer moon (14.8 % of the mass).
    Wrong sample: the outer moon alone (the inner moon, half the mass, dropped).
    """

    def __init__(
        self, name: str = "two_moons", noise: float = 0.0, metric_eps_fraction: float = 0.05
    ) -> None:
        if noise < 0:
            raise TargetError(f"noise must be >= 0, got {noise}")
        super().__init__(
            name,
            2,
            "manifolds",
            metric_eps_fraction,
            f"two moons (unit half circles), noise std {noise}",
        )
        self.noise = noise

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        u = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        t = math.pi * u[:, 0]
        inner = u[:, 1] < 0.5
        c, s = torch.cos(t), torch.sin(t)
        x = torch.where(inner, 1 - c, c)
        y = torch.where(inner, 0.5 - s, s)
        out = torch.stack([x, y], dim=1)
        if self.noise > 0:
            out = out + self.noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        return out

    def cap_mask(self, x: Tensor) -> Tensor:
        return x[:, 0] < -0.6

    def _outer_moon(self, n: int, gen: torch.Generator) -> Tensor:
        t = math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
        out = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
        if self.noise > 0:
            out = out + self.noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        return out

    def wrong_mask(self, x: Tensor) -> Tensor:
        """On the outer moon (unit circle, x_2 >= 0): the wrong sample's region (noise 0)."""
        return ((x.norm(dim=1) - 1).abs() < 1e-9) & (x[:, 1] >= 0)

    def corrupted_sample(self, n: int, *, seed: int) -> Tensor:
        """``n`` points from the outer moon only (the inner moon, half the mass, dropped)."""
        if not isinstance(n, int) or n < 0:
            raise TargetError(f"n must be a non-negative int, got {n!r}")
        return self._outer_moon(n, make_generator(seed))


# ---------------------------------------------------------------------------------------
# Registered manifolds: name -> zero-argument factory (caps in percent of the mass)
# ---------------------------------------------------------------------------------------
MANIFOLDS: dict[str, Callable[[], Target]] = {
    # unit circle in R^2; cap: the arc x_2 > 0.9 (14.4 %)
    "circle": partial(UnitSphere, "circle", 2, cap_threshold=0.9, metric_eps_fraction=0.05),
    # unit sphere S^2 in R^3; cap: x_2 > 0.7 (15 % of the area)
    "sphere": partial(UnitSphere, "sphere", 3, cap_threshold=0.7, metric_eps_fraction=0.05),
    # upper half of S^2 (x_3 > 0); cap: x_2 > 0.7 (15 % of the half-sphere)
    "half_sphere": partial(
        UnitSphere, "half_sphere", 3, cap_threshold=0.7, metric_eps_fraction=0.05, upper_half=True
    ),
    # shell 0.99 <= |x| <= 1 in R^3; cap: x_2 > 0.7
    "shell3": partial(SphericalShell, "shell3", 3, cap_threshold=0.7, metric_eps_fraction=0.05),
    # shell 0.99 <= |x| <= 1 in R^100; cap: x_2 > 0.2 (about 2.5 %), also the wrong sample
    "shell100": partial(
        SphericalShell,
        "shell100",
        100,
        cap_threshold=0.2,
        metric_eps_fraction=1.0,
        wrong_region="cap",
    ),
    # noise-free swiss roll surface in R^3; cap: the inner end of the roll
    "swiss_roll": SwissRoll,
    # torus surface in R^3 (R = 2, r = 0.5); cap: the sector x_2 > 0.9 rho
    "torus": Torus,
    # noise-free two moons in R^2; cap: the left tip of the outer moon, x_1 < -0.6
    "two_moons": TwoMoons,
}
for _name, _factory in MANIFOLDS.items():
    register_target(_name, "manifolds")(_factory)
