"""Widening a search space where tuning chose an edge: the rule that keeps tuning from
flattering a method whose best setting lies outside the space it was given.

After the equal-budget draw (``benchmarks.tuning``), a chosen numeric setting that sits on
the smallest or largest value of its knob is an edge: the optimum may lie beyond it. The
space is then extended by one step past that edge, continuing the knob's own spacing
(geometric when every value is positive: v_new = v_edge^2 / v_next; arithmetic otherwise:
v_new = 2 v_edge - v_next), clipped to the sampler's declared ``search_limits`` (its
stability or budget limit, documented on each sampler). The new settings (the chosen one
with that knob moved) are scored on the same tuning repetitions, and the choice is made
again; repeated until the choice is interior or at the limit, for at most
``MAX_WIDEN_ROUNDS`` rounds. The rule is the same for every sampler, and every added trial
is recorded, so a leaderboard shows how much of each sampler's space its trials covered.
"""

from __future__ import annotations

import json
from typing import Any

#: at most this many widening rounds per (sampler, target): each adds at most one trial per
#: knob on an edge, so the extra cost is bounded by rounds x knobs x repetitions fits
MAX_WIDEN_ROUNDS = 3

#: significant digits a widened value keeps: 0.025^2 / 0.05 is 0.012500000000000004 in
#: floating point, and two widening paths to "0.0125" gave two different settings
SIGNIFICANT_DIGITS = 12


def canonical(value: Any) -> Any:
    """A float rounded to :data:`SIGNIFICANT_DIGITS` significant digits (other values as
    they are), so the same setting reached by different arithmetic has one key."""
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value


def _numeric(values: tuple[Any, ...]) -> list[float]:
    return sorted(
        {float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)}
    )


def step_past(values: list[float], edge: str, is_int: bool) -> float | None:
    """The value one step past the ``edge`` ("low"/"high") of sorted numeric ``values``
    (>= 2 of them), continuing their spacing (geometric when all are positive)."""
    if len(values) < 2:
        return None
    a, b = (values[0], values[1]) if edge == "low" else (values[-1], values[-2])
    new = a * a / b if (a > 0 and b > 0) else 2 * a - b
    new = float(round(new)) if is_int else canonical(new)
    return None if new == a else new


def edge_moves(
    space: dict[str, tuple[Any, ...]],
    chosen: dict[str, Any],
    defaults: dict[str, Any],
    limits: dict[str, tuple[float, float]],
) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """For a chosen setting (overrides of ``defaults``) in ``space``: the moves
    [(knob, new value)] one step past every edge the choice sits on (within ``limits``), and
    each edge knob's state: "edge: widened", "edge: at limit" (the limit is the edge itself),
    "edge: no declared limit" (not widened). Knobs whose values are not numbers (choices,
    None among numbers is kept as a separate option) are never edges."""
    moves: list[tuple[str, Any]] = []
    state: dict[str, str] = {}
    for knob, values in sorted(space.items()):
        nums = _numeric(values)
        value = chosen.get(knob, defaults.get(knob))
        if len(nums) < 2 or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if float(value) not in (nums[0], nums[-1]):
            continue
        edge = "low" if float(value) == nums[0] else "high"
        if knob not in limits:
            state[knob] = "edge: no declared limit"
            continue
        lo, hi = limits[knob]
        is_int = all(isinstance(v, int) and not isinstance(v, bool) for v in values if v in nums)
        new = step_past(nums, edge, is_int)
        if new is not None:
            new = min(max(new, lo), hi)
        if new is None or new == float(value):
            state[knob] = "edge: at limit"
            continue
        moves.append((knob, int(new) if is_int else new))
        state[knob] = "edge: widened"
    return moves, state


def normalised(setting: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A setting as its overrides of ``defaults`` only (keys sorted, floats
    :func:`canonical`)."""
    values = {k: canonical(setting[k]) for k in sorted(setting)}
    return {k: v for k, v in values.items() if v != defaults.get(k)}


def setting_key(setting: dict[str, Any]) -> str:
    return json.dumps(setting, sort_keys=True, default=str)


def space_size(space: dict[str, tuple[Any, ...]]) -> int:
    """Number of distinct settings of a (widened) space: the product of its knobs' counts."""
    n = 1
    for values in space.values():
        n *= max(1, len(set(json.dumps(v, default=str) for v in values)))
    return n


def widening_round(
    space: dict[str, tuple[Any, ...]],
    settings: list[dict[str, Any]],
    choices: dict[str, dict[str, Any]],
    defaults: dict[str, Any],
    limits: dict[str, tuple[float, float]],
    *,
    last: bool,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """One widening round of one (sampler, target): for each init's chosen setting
    (``choices``: init -> setting), the settings one step past every edge it sits on
    (:func:`edge_moves`) that were never tried, and each init's edge states. A step that was
    tried already (and lost) makes the choice "interior after widening"; in the ``last``
    round no step is added ("edge: rounds exhausted"). The new settings are appended to
    ``settings`` and their values to ``space`` (both updated in place) and returned."""
    known = {setting_key(p) for p in settings}
    added: list[dict[str, Any]] = []
    states: dict[str, dict[str, str]] = {}
    for init, best in choices.items():
        moves, state = edge_moves(space, best, defaults, limits)
        states[init] = state
        for knob, value in moves:
            setting = normalised({**best, knob: value}, defaults)
            if setting_key(setting) in known:
                state[knob] = "interior after widening"
                continue
            if last:
                state[knob] = "edge: rounds exhausted"
                continue
            if value not in space[knob]:
                space[knob] = (*space[knob], value)
            known.add(setting_key(setting))
            added.append(setting)
    settings.extend(added)
    return added, states
