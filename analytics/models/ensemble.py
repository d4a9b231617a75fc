"""Quantile ensembles.

* The validated ensemble (weekly data; :data:`CHOSEN`): members, combination and per-interval
  calibration chosen by leave-one-season-out validation (``analytics.validation``) — today the
  quantile mean of the pooled ``gbq`` (weight 0.7) and ``qar`` (0.3), each central interval widened
  by its factor for the forecast's horizon.
* The per-series ensemble (daily panels, or when the members differ from the validated ones): the
  median of the component models' values at each inner quantile level; at the outer levels
  (<= ``TAIL_LEVEL`` and >= 1 - ``TAIL_LEVEL``: the 90/95/98% interval bounds) the widest member,
  i.e. the minimum of the members' lower tails and the maximum of their upper tails.

Why the envelope tails: a level-wise median of members whose spreads disagree has the spread of the
middle member, so its 95% intervals under-cover when any one member is right to be wide (on the
FluSight 2022/23 admissions backtest the median gave 95% coverage 0.886, falling to 0.845 at
horizon 3). Taking the widest member's tails uses only the forecasts made at the reference date
(nothing after it), and WIS weights those intervals by alpha/2 (0.01-0.05), so the cost is small:
relative WIS 0.742 -> 0.765, 95% coverage 0.886 -> 0.938. Inner quantiles (50/80% intervals and
the median) stay the level-wise median.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from analytics.quantiles import LEVELS, repair


# Members, combination ("mean" | "median"), weights and calibration factors (for each horizon, one per
# central interval, lower levels first) chosen by leave-one-season-out validation over 15 folds (13 ILINet seasons,
# NHSN 2022-23, HHS 2021-22): ``analytics.validation.choose`` as printed by ``affectwatch bench
# forecast`` (README, issue #10); every one of the 15 nested choices picked the same members and
# weights. None would mean "not validated": the median of glm, qr, ets with envelope tails (below),
# which daily panels still use (the pooled models are weekly only).
CHOSEN: dict | None = {
    "members": ["gbq", "qar"], "how": "mean", "weights": [0.7, 0.3],
    "calibration": [  # per horizon 0, 1, 2, 3: one factor per central interval, the 98% interval first
        [1.15, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        [1.3, 1.1, 1.05, 1.05, 1.05, 1.05, 1.05, 1.05, 1.05, 1.05, 1.05],
        [1.45, 1.15, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1],
        [1.75, 1.3, 1.15, 1.15, 1.05, 1.05, 1.05, 1.05, 1.05, 1.05, 1.05],
    ],
    "loso_rel_wis": 0.8039,
}
SYMPTOM_ONLY = ("ets",)  # components without a fused variant; ensemble_affect uses them as they are
TAIL_LEVEL = 0.05  # levels <= this (and >= 1 - this) take the members' envelope instead of the median


def ensemble_members(models: list[str], fused: bool) -> list[str]:
    """Component models of ``ensemble`` (symptom-only models) or ``ensemble_affect`` (the fused
    variants, plus components that have no fused variant, shared with ``ensemble``)."""
    comps = [m for m in models if m != "baseline" and not m.startswith("ensemble")]
    if not fused:
        return [m for m in comps if not m.endswith("_affect")]
    return [m for m in comps if m.endswith("_affect") or m in SYMPTOM_ONLY]


def combine(stack: np.ndarray, levels: Sequence[float] = LEVELS, tail: float | None = TAIL_LEVEL) -> np.ndarray:
    """Combine member quantiles ``stack`` (members, ..., levels): level-wise median, with the outer
    levels (<= ``tail`` / >= 1 - ``tail``) replaced by the members' min / max (``tail=None``: plain
    median). Result is repaired: non-crossing and non-negative."""
    stack = np.asarray(stack, dtype=float)
    out = np.median(stack, axis=0)
    if tail is not None:
        lv = np.asarray(levels, dtype=float)
        if lv.size != stack.shape[-1]:
            raise ValueError(f"{lv.size} levels for {stack.shape[-1]} quantile values per row")
        lo, hi = lv <= tail + 1e-12, lv >= 1 - tail - 1e-12
        out[..., lo] = stack[..., lo].min(axis=0)
        out[..., hi] = stack[..., hi].max(axis=0)
    return repair(out)


def median_ensemble(preds: Mapping[str, Mapping[str, np.ndarray]], members: list[str],
                    levels: Sequence[float] = LEVELS, tail: float | None = TAIL_LEVEL) -> dict[str, np.ndarray]:
    """preds: model -> location -> (steps, levels). Locations missing from a member use the rest.
    Median of the members at inner levels, their envelope at the outer levels (see :func:`combine`)."""
    locations = sorted({loc for m in members for loc in preds.get(m, {})})
    out = {}
    for loc in locations:
        stack = [preds[m][loc] for m in members if loc in preds.get(m, {})]
        out[loc] = combine(np.stack(stack), levels, tail)
    return out


def weighted_combine(stack: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of member quantiles at each level (quantile averaging, as in Flusion and the
    FluSight ensemble); ``stack`` is (members, ..., levels). Repaired: sorted, non-negative."""
    stack = np.asarray(stack, dtype=float)
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    return repair(np.tensordot(w, stack, axes=1))


def calibrate(q: np.ndarray, factors: Sequence[float], levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Scale each quantile's distance from the median by the factor of its central interval
    (``factors[i]`` for levels i and len-1-i, lower levels first). Repaired."""
    q = np.asarray(q, dtype=float)
    lv = np.asarray(levels, dtype=float)
    m = int(np.flatnonzero(np.isclose(lv, 0.5))[0])
    if len(factors) != m or len(lv) != 2 * m + 1:
        raise ValueError(f"{len(factors)} calibration factors for {len(lv)} levels (needs {len(lv) // 2})")
    c = np.r_[np.asarray(factors, float), 1.0, np.asarray(factors, float)[::-1]]
    med = q[..., [m]]
    return repair(med + c * (q - med))


def horizon_factors(chosen: Mapping, horizon: int) -> list[float]:
    """The calibration factors of ``horizon`` (``chosen["calibration"]`` holds one list per horizon
    0, 1, 2, ...; a later horizon takes the last list)."""
    by_h = chosen["calibration"]
    return list(by_h[min(max(int(horizon), 0), len(by_h) - 1)])


def calibrate_by_horizon(q: np.ndarray, horizons: Sequence[int], chosen: Mapping,
                         levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Each row of ``q`` (rows, levels) calibrated with the factors of its horizon ``horizons[row]``."""
    q = np.asarray(q, dtype=float)
    horizons = np.asarray(horizons)
    if len(q) != len(horizons):
        raise ValueError(f"{len(q)} forecast rows for {len(horizons)} horizons")
    out = np.empty_like(q)
    for h in np.unique(horizons):
        m = horizons == h
        out[m] = calibrate(q[m], horizon_factors(chosen, int(h)), levels)
    return out


def chosen_ensemble(preds: Mapping[str, Mapping[str, np.ndarray]], members: list[str], chosen: Mapping,
                    horizons: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
    """The validated ensemble: weighted mean (or median) of the members' quantiles, then calibrated
    with the factors of each row's horizon (row i of a member's (steps, levels) array is ``horizons[i]``).
    ``members`` may be the fused variants (``gbq_affect`` takes ``gbq``'s weight)."""
    weight = dict(zip(chosen["members"], chosen.get("weights") or [1.0] * len(chosen["members"])))
    locations = sorted({loc for m in members for loc in preds.get(m, {})})
    out = {}
    for loc in locations:
        have = [m for m in members if loc in preds.get(m, {})]
        stack = np.stack([preds[m][loc] for m in have])
        w = [weight.get(m.removesuffix("_affect"), 1.0) for m in have]
        q = weighted_combine(stack, w) if chosen["how"] == "mean" else combine(stack, levels, tail=None)
        out[loc] = calibrate_by_horizon(q, horizons, chosen, levels)
    return out
