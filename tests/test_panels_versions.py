"""Model-version adjustment of the forecast affect features (analytics.panels).

An on-device model update shifts arousal; the features must lose that step but keep the real
change that happens over the same weeks. The regression this guards: the shift was estimated as
"cells led by the new version minus cells led by the old one", i.e. after-rollout minus
before-rollout means, which also removed the season's change and hid a simulated 14-day lead
(lift lower bound 0.96 instead of > 1).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.panels import affect_features

SHIFT = 0.08
START = pd.Timestamp("2023-01-01", tz="UTC")  # a Sunday
ROLLOUT_WEEK = 10


def _windows(trend_per_week: float, seed: int = 1) -> pd.DataFrame:
    """Two regions x 12 devices, one daily window each for 20 weeks. Arousal rises by ``trend_per_week``
    (the season); from week 10 each device moves to v2.0 on its own day of that week (+SHIFT)."""
    rng = np.random.default_rng(seed)
    rows = []
    for region in ("06", "36"):
        for d in range(12):
            offset = rng.normal(0, 0.03)  # the device's own level
            switch = ROLLOUT_WEEK * 7 + d % 7
            for day in range(20 * 7):
                new = day >= switch
                arousal = -0.1 + trend_per_week * day / 7 + offset + (SHIFT if new else 0.0) + rng.normal(0, 0.01)
                start = START + pd.Timedelta(days=day)
                rows.append({
                    "device_id": f"{region}-{d:02d}", "region_id": region, "site_type": "ed",
                    "window_start": start, "window_end": start + pd.Timedelta(days=1),
                    "n_observations": 40, "n_abstained": 2, "valence_mean": 0.0, "arousal_mean": arousal,
                    "distress_share": 0.2, "confidence_mean": 0.8, "modality": "face",
                    "model_version": "v2.0" if new else "v1.3", "simulated": True,
                })
    return pd.DataFrame(rows)


@pytest.mark.parametrize("trend", [0.0, 0.02])
def test_version_step_removed_and_season_kept(trend, settings):
    w = _windows(trend)
    raw = affect_features(windows=w, freq="W", settings=settings, adjust_versions=False)
    adj = affect_features(windows=w, freq="W", settings=settings)
    assert (adj["suppression"] == 0).all()
    for region in ("06", "36"):
        r = raw[raw.location == region].set_index("date")["arousal"].to_numpy()
        a = adj[adj.location == region].set_index("date")["arousal"].to_numpy()
        before, after = slice(0, ROLLOUT_WEEK), slice(ROLLOUT_WEEK + 1, 20)
        # the raw series jumps by the model's shift on top of the season
        assert np.mean(r[after]) - np.mean(r[before]) == pytest.approx(SHIFT + trend * 10.5, abs=0.02)
        # adjusted: the season's rise stays (10.5 weeks between the two halves' centres), the step goes
        assert np.mean(a[after]) - np.mean(a[before]) == pytest.approx(trend * 10.5, abs=0.02)
        # weeks untouched by v2.0 are not changed
        assert np.allclose(a[before], r[before])


def test_no_overlap_means_no_adjustment(settings, caplog):
    """A switch of every device on one day leaves no region-hour with both versions: the shift cannot be
    told from a real change, so the features are left as measured."""
    w = _windows(0.02)
    switch_day = START + pd.Timedelta(days=ROLLOUT_WEEK * 7)
    w["model_version"] = np.where(w["window_start"] >= switch_day, "v2.0", "v1.3")
    raw = affect_features(windows=w, freq="W", settings=settings, adjust_versions=False)
    adj = affect_features(windows=w, freq="W", settings=settings)
    assert np.allclose(raw["arousal"], adj["arousal"])
