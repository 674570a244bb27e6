"""Trivial-baseline verdicts for leaderboards: which methods fail to beat the best trivial
baseline (samplers with ``role = "baseline"``) in a column.

The harness names no baseline: a sampler is one when its class says so."""

from __future__ import annotations

import pandas as pd

from samplers.base import SamplerError, sampler_class

#: appended to a cell whose method does not beat the column's best trivial baseline
UNBEATEN_MARK = " ▽"
CAPTION = (
    f"`{UNBEATEN_MARK.strip()}` = does not beat the best trivial baseline (samplers with "
    '`role = "baseline"`: a training subsample, k-means centroids, KDE draws) in that column.'
)


def base_name(label: str) -> str:
    """The sampler name of a leaderboard label (``dmps[step_size=0.1]`` -> ``dmps``)."""
    return label.split("[", 1)[0]


def is_baseline(label: str) -> bool:
    """True when the sampler behind ``label`` declares ``role = "baseline"``."""
    try:
        return sampler_class(base_name(label)).role == "baseline"
    except (SamplerError, KeyError):
        return False


def mark_unbeaten(cells: pd.DataFrame, means: pd.DataFrame, sign: float) -> pd.DataFrame:
    """``cells`` (sampler x column text) with :data:`UNBEATEN_MARK` appended where a method's
    mean (``means``, same shape) is not strictly better than the best baseline's in that
    column; ``sign`` = +1 when lower is better, -1 when higher is better (NaN: unranked, no
    marks). Baselines and rows without a baseline-beating claim (NaN means) are left as is."""
    if sign != sign:  # NaN: unranked metric
        return cells
    baselines = [s for s in means.index if is_baseline(str(s))]
    if not baselines:
        return cells
    best = (sign * means.loc[baselines]).min(axis=0)
    out = cells.copy()
    for sampler in means.index:
        if sampler in baselines or sampler not in out.index or str(sampler) == "exact":
            continue
        for column in means.columns:
            v, b = sign * means.at[sampler, column], best.get(column)
            if pd.notna(v) and pd.notna(b) and not v < b:
                out.at[sampler, column] = f"{out.at[sampler, column]}{UNBEATEN_MARK}"
    return out
