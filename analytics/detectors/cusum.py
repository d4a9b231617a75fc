"""One-sided (upper) CUSUM on standardised counts, reset after each alarm.

Reference: Page ES. "Continuous inspection schemes". Biometrika 1954;41:100-115; in the
surveillance form of Fricker RD, Hegler BL, Dunfee DA, Stat Med 2008;27:3407-29 (section 2.3)
and Rossi G, Lampugnani L, Marchi M, "An approximate CUSUM procedure for surveillance of health
events", Stat Med 1999;18:2111-22.

For each time t a baseline mean ``mu_t`` and sample sd ``s_t`` (floored at ``min_sd``) are taken
from the ``baseline`` values ending ``guard`` values before t (defaults 28 and 2, as the ESSENCE
detectors; at least ``min_baseline`` = 7 values). With ``z_t = (y_t - mu_t) / s_t``:

    S_t = max(0, S_{t-1} + z_t - k)        alarm when S_t >= h, then S_t is reset to 0

with reference value ``k = 0.5`` (tuned to detect a shift of one sd) and decision interval
``h = 4`` (in-control ARL of about 168 under normality; Montgomery, Introduction to Statistical
Quality Control, table 9.3 for k = 0.5, h = 4). ``statistic`` is S_t before the reset,
``threshold`` the smallest observed value that would alarm
(``mu_t + s_t (h + k - S_{t-1})``), ``p_value`` is not defined (NaN), alarms are 'yellow'.
"""
from __future__ import annotations

import numpy as np

from analytics.detectors.base import (
    LEVEL_NONE,
    LEVEL_YELLOW,
    REASON_INSUFFICIENT_BASELINE,
    REASON_NONE,
    Result,
    default_min_sd,
    rolling_baseline,
)


def cusum(
    Y: np.ndarray,
    k: float = 0.5,
    h: float = 4.0,
    baseline: int = 28,
    guard: int = 2,
    min_baseline: int = 7,
    min_sd: float | None = None,
) -> Result:
    """Upper CUSUM with a rolling baseline; see the module docstring for the definition."""
    mean, sd, _ = rolling_baseline(Y, int(baseline), int(guard), int(min_baseline))
    floor = default_min_sd(Y) if min_sd is None else float(min_sd)
    sdf = np.maximum(sd, floor)
    z = (Y - mean) / sdf
    S, T = Y.shape
    stat = np.full((S, T), np.nan)
    thr = np.full((S, T), np.nan)
    alarm = np.zeros((S, T), dtype=bool)
    s_prev = np.zeros(S)
    for t in range(T):
        zt = z[:, t]
        ok = np.isfinite(zt)
        st = np.where(ok, np.maximum(0.0, s_prev + np.where(ok, zt, 0.0) - k), np.nan)
        thr[:, t] = np.where(ok, mean[:, t] + sdf[:, t] * (h + k - s_prev), np.nan)
        fired = ok & (st >= h)
        stat[:, t] = st
        alarm[:, t] = fired
        # reset after an alarm; cells without a baseline keep the running sum at 0
        s_prev = np.where(fired | ~ok, 0.0, st)
    res = Result.empty(Y.shape)
    ok = np.isfinite(stat)
    res.expected = np.where(ok, mean, np.nan)
    res.threshold = thr
    res.statistic = stat
    res.alarm = alarm
    res.level = np.where(alarm, LEVEL_YELLOW, LEVEL_NONE).astype(np.int8)
    res.reason = np.where(ok, REASON_NONE, REASON_INSUFFICIENT_BASELINE).astype(np.int8)
    return res
