"""Quantile ensemble: the median of the component models' values at each quantile level."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analytics.quantiles import repair


SYMPTOM_ONLY = ("ets",)  # components without a fused variant; ensemble_affect uses them as they are


def ensemble_members(models: list[str], fused: bool) -> list[str]:
    """Component models of ``ensemble`` (symptom-only models) or ``ensemble_affect`` (the fused
    variants, plus components that have no fused variant, shared with ``ensemble``)."""
    comps = [m for m in models if m != "baseline" and not m.startswith("ensemble")]
    if not fused:
        return [m for m in comps if not m.endswith("_affect")]
    return [m for m in comps if m.endswith("_affect") or m in SYMPTOM_ONLY]


def median_ensemble(preds: Mapping[str, Mapping[str, np.ndarray]], members: list[str]) -> dict[str, np.ndarray]:
    """preds: model -> location -> (steps, levels). Locations missing from a member use the rest."""
    locations = sorted({loc for m in members for loc in preds.get(m, {})})
    out = {}
    for loc in locations:
        stack = [preds[m][loc] for m in members if loc in preds.get(m, {})]
        out[loc] = repair(np.median(np.stack(stack), axis=0))
    return out
