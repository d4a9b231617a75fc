"""Ensemble tails: inner quantiles are the members' level-wise median, the outer quantiles (90/95/98%
interval bounds) the members' envelope; the result is non-crossing, non-negative, and depends only on
the forecasts made at the reference date (no data after it)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.backtest import build_panel
from analytics.forecast import forecast_panel
from analytics.hubverse import read_target_csv
from analytics.models.ensemble import TAIL_LEVEL, combine, median_ensemble
from analytics.quantiles import LEVELS, LEVELS_ARRAY, check_values

OUTER = (LEVELS_ARRAY <= TAIL_LEVEL) | (LEVELS_ARRAY >= 1 - TAIL_LEVEL)


def _member(center: float, spread: float, skew: float = 0.0) -> np.ndarray:
    z = np.linspace(-2.3, 2.3, len(LEVELS))
    return center + spread * z + skew * z ** 2


def test_outer_levels_are_the_envelope_and_inner_levels_the_median():
    rng = np.random.default_rng(1)
    stack = np.stack([np.sort(_member(100, s, k) + rng.normal(0, 0.5, len(LEVELS)))
                      for s, k in ((5, 0), (12, 1), (20, -1))])[:, None, :]  # (members, steps=1, levels)
    out = combine(stack)
    check_values(out, LEVELS)  # non-crossing, non-negative, right width
    med = np.median(stack, axis=0)
    assert np.allclose(out[..., ~OUTER], med[..., ~OUTER])
    assert np.allclose(out[..., LEVELS_ARRAY <= TAIL_LEVEL], stack.min(axis=0)[..., LEVELS_ARRAY <= TAIL_LEVEL])
    assert np.allclose(out[..., LEVELS_ARRAY >= 1 - TAIL_LEVEL], stack.max(axis=0)[..., LEVELS_ARRAY >= 1 - TAIL_LEVEL])
    # the 95% interval is at least as wide as the plain median's, the 50% interval unchanged
    plain = combine(stack, tail=None)
    i025, i975, i25, i75 = (LEVELS.index(v) for v in (0.025, 0.975, 0.25, 0.75))
    assert out[0, i975] - out[0, i025] >= plain[0, i975] - plain[0, i025]
    assert np.isclose(out[0, i75] - out[0, i25], plain[0, i75] - plain[0, i25])


def test_envelope_stays_non_crossing_and_non_negative_when_members_disagree():
    # a narrow member far above a wide one: the envelope tails must not cross the median's inner levels
    narrow = _member(100, 1)
    wide = np.maximum(_member(5, 10), -3.0)  # negative lower tail
    shifted = _member(40, 3)
    out = median_ensemble({"a": {"x": narrow[None]}, "b": {"x": wide[None]}, "c": {"x": shifted[None]}}, ["a", "b", "c"])
    check_values(out["x"], LEVELS)
    assert out["x"][0, 0] == 0.0 and out["x"][0, -1] == narrow[-1]


def test_custom_levels_without_outer_tails_are_the_plain_median():
    lv = [0.25, 0.5, 0.75]
    stack = np.array([[[1.0, 2.0, 3.0]], [[0.0, 4.0, 9.0]], [[2.0, 3.0, 5.0]]])
    assert np.allclose(combine(stack, lv), np.median(stack, axis=0))


def test_ensemble_tails_use_only_data_known_at_the_reference_date(data_dir):
    target = read_target_csv(data_dir / "flusight" / "target-hospital-admissions.csv", locations=["06", "36", "48"])
    ref = pd.Timestamp("2023-01-07")
    truncated = target[target["date"] <= ref]
    future_changed = target.copy()
    later = future_changed["date"] > ref
    future_changed.loc[later, "value"] = future_changed.loc[later, "value"] * 10 + 1000  # nonsense after ref
    frames = []
    for t in (truncated, future_changed):
        panel = build_panel(t, ref, latency=1)
        fc = forecast_panel(panel, ref, models=["baseline", "glm", "qr", "ensemble"])
        frames.append(fc[fc.model == "ensemble"].sort_values(["location", "horizon", "output_type_id"])["value"].to_numpy())
    assert np.allclose(frames[0], frames[1])
