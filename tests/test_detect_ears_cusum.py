"""EARS C1/C2/C3 and CUSUM against values computed by hand on small series."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.detect import detect


def frame(values, series="a") -> pd.DataFrame:
    return pd.DataFrame({"series": series, "t": np.arange(1, len(values) + 1), "observed": values})


# Baseline 2,4,2,4,2,4,2: mean = 20/7; squared deviations 4*(6/7)^2 + 3*(8/7)^2 = 336/49,
# variance = (336/49)/6 = 8/7, sd = sqrt(8/7) = 1.0690.
MEAN = 20 / 7
SD = math.sqrt(8 / 7)


def test_c1_hand_computed():
    out = detect(frame([2, 4, 2, 4, 2, 4, 2, 10]), "ears-c1")
    # the first 7 values have no 7-value baseline
    assert out["reason"].iloc[:7].eq("insufficient_baseline").all()
    assert not out["alarm"].iloc[:7].any() and out["expected"].iloc[:7].isna().all()
    last = out.iloc[7]
    assert last["expected"] == pytest.approx(MEAN)
    assert last["statistic"] == pytest.approx((10 - 20 / 7) / SD)  # (50/7)/1.0690 = 6.68
    assert last["threshold"] == pytest.approx(MEAN + 3 * SD)  # 2.857 + 3.207 = 6.064
    assert bool(last["alarm"]) and last["level"] == "yellow" and last["reason"] is None
    assert math.isnan(last["p_value"])


def test_c1_sd_floor_and_cutoff_inclusive():
    # constant baseline: sd 0 is floored at 1.0 for counts -> C1 = (5 - 3)/1 = 2 (no alarm),
    # (6 - 3)/1 = 3 (alarm: the cutoff is >= 3)
    out = detect(pd.concat([frame([3] * 7 + [5], "x"), frame([3] * 7 + [6], "y")]), "ears-c1")
    last = out.groupby("series").tail(1).set_index("series")
    assert last.loc["x", "statistic"] == pytest.approx(2.0) and not last.loc["x", "alarm"]
    assert last.loc["y", "statistic"] == pytest.approx(3.0) and last.loc["y", "alarm"]


def test_c2_skips_two_guard_values():
    # the two 100s sit in the guard band of t=10, so its baseline is 2,4,2,4,2,4,2 again
    out = detect(frame([2, 4, 2, 4, 2, 4, 2, 100, 100, 10]), "ears-c2")
    assert out["reason"].iloc[:9].eq("insufficient_baseline").all()
    last = out.iloc[9]
    assert last["expected"] == pytest.approx(MEAN)
    assert last["statistic"] == pytest.approx((10 - MEAN) / SD)
    assert bool(last["alarm"])


def test_c3_textbook_includes_current_day():
    y = [2, 4, 2, 4, 2, 4, 2, 4, 2, 5, 5, 5]
    out = detect(frame(y), "ears-c3")
    # C2 needs 7 baseline values ending 3 days back: first defined at index 9; C3 also needs
    # C2 at t-1 and t-2, so index 11 is the first with a C3 value.
    assert out["reason"].iloc[:11].eq("insufficient_baseline").all()
    # index 9: baseline y[0..6] mean 20/7 -> C2 = (5 - 20/7)/sqrt(8/7) = 15/sqrt(56) = 2.0045
    # index 10: baseline y[1..7] = 4,2,4,2,4,2,4 mean 22/7, same sd -> C2 = 13/sqrt(56) = 1.7372
    # index 11: baseline y[2..8] mean 20/7 -> C2 = 15/sqrt(56) = 2.0045
    c2 = [15 / math.sqrt(56), 13 / math.sqrt(56), 15 / math.sqrt(56)]
    c3 = sum(max(0.0, v - 1) for v in c2)  # 1.0045 + 0.7372 + 1.0045 = 2.7461
    last = out.iloc[11]
    assert last["statistic"] == pytest.approx(c3)
    assert bool(last["alarm"])  # C3 >= 2
    # surveillance::earsC leaves out the current day: 1.0045 + 0.7372 = 1.7417 < 2 (no alarm)
    assert sum(max(0.0, v - 1) for v in c2[:2]) < 2
    # threshold: C2_t must reach 1 + (2 - 1.7417) -> y = 20/7 + sqrt(8/7) * 1.2583
    prev = sum(v - 1 for v in c2[:2])
    assert last["threshold"] == pytest.approx(MEAN + SD * (1 + 2 - prev))


def test_cusum_hand_computed_with_reset():
    # baseline = the 7 values before t (guard 0), k = 0.5, h = 4
    y = [2, 4, 2, 4, 2, 4, 2, 5, 6, 7, 2]
    out = detect(frame(y), "cusum", baseline=7, guard=0, min_baseline=7, k=0.5, h=4)
    assert out["reason"].iloc[:7].eq("insufficient_baseline").all()
    # t index 7: z = (5 - 20/7)/sqrt(8/7) = 2.0045; S = 0 + 2.0045 - 0.5 = 1.5045
    s7 = (5 - MEAN) / SD - 0.5
    # index 8: baseline 4,2,4,2,4,2,5 -> mean 23/7, var = (3(4-23/7)^2 + 3(2-23/7)^2 + (5-23/7)^2)/6 = 11/7
    mu8 = 23 / 7
    sd8 = math.sqrt((3 * (4 - mu8) ** 2 + 3 * (2 - mu8) ** 2 + (5 - mu8) ** 2) / 6)
    s8 = s7 + (6 - mu8) / sd8 - 0.5  # 1.5045 + 2.1653 - 0.5 = 3.1697
    # index 9: baseline 2,4,2,4,2,5,6 -> mean 25/7, var 55/21
    mu9 = 25 / 7
    sd9 = math.sqrt((3 * (2 - mu9) ** 2 + 2 * (4 - mu9) ** 2 + (5 - mu9) ** 2 + (6 - mu9) ** 2) / 6)
    s9 = s8 + (7 - mu9) / sd9 - 0.5  # 3.1697 + 2.1186 - 0.5 = 4.7883 >= 4 -> alarm, then reset
    assert out["statistic"].iloc[7:10].tolist() == pytest.approx([s7, s8, s9])
    assert out["alarm"].iloc[7:10].tolist() == [False, False, True]
    # threshold at index 9: the y with S = h: mu9 + sd9 (h + k - S_8)
    assert out["threshold"].iloc[9] == pytest.approx(mu9 + sd9 * (4 + 0.5 - s8))
    # index 10: the sum restarted at 0 and z < 0.5 -> S = 0 (without the reset it would be ~3.1)
    assert out["statistic"].iloc[10] == pytest.approx(0.0)
    assert not out["alarm"].iloc[10]


def test_one_sided_decreases_never_alarm():
    y = [20, 22, 20, 22, 20, 22, 20, 22, 20, 22] * 4 + [0, 0, 0]
    for method in ("ears-c1", "ears-c2", "ears-c3", "cusum", "ewma", "regression", "switch"):
        out = detect(frame(y), method)
        assert not out["alarm"].iloc[-3:].any(), method
