"""EARS C1, C2 and C3 (CDC Early Aberration Reporting System).

References: Hutwagner L, Thompson W, Seeman GM, Treadwell T. "The bioterrorism preparedness and
response Early Aberration Reporting System (EARS)". J Urban Health 2003;80(2 Suppl 1):i89-96.
Fricker RD, Hegler BL, Dunfee DA. "Comparing syndromic surveillance detection methods: EARS'
versus a CUSUM-based methodology". Stat Med 2008;27:3407-29 (formulas below follow its section 2).

Let ``mu_t`` and ``s_t`` be the mean and sample sd (ddof=1) of a 7-value baseline.

* **C1**: baseline ``y[t-7..t-1]`` (no guard band); ``C1_t = (y_t - mu_t) / s_t``; alarm when
  ``C1_t >= 3``.
* **C2**: baseline ``y[t-9..t-3]`` (2-value guard band); ``C2_t = (y_t - mu_t) / s_t``; alarm when
  ``C2_t >= 3``.
* **C3** (textbook form, includes the current day):
  ``C3_t = sum_{i=t-2}^{t} max(0, C2_i - 1)``; alarm when ``C3_t >= 2``. The R ``surveillance``
  package's ``earsC(method="C3")`` sums over ``t-2..t-1`` only (it leaves out the current day);
  this implementation does not.

``s_t`` is floored at ``min_sd`` so that a constant baseline cannot divide by zero (default 1.0
for count data, 1e-6 otherwise; pass ``min_sd`` to change). All tests are one-sided (only
increases alarm). ``threshold`` is the smallest observed value that would have alarmed;
``p_value`` is not defined (NaN); an alarm has level 'yellow' (EARS defines no levels).
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

BASELINE = 7


def _c_stat(Y: np.ndarray, guard: int, min_sd: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean, sd, _ = rolling_baseline(Y, BASELINE, guard)
    floor = default_min_sd(Y) if min_sd is None else float(min_sd)
    sdf = np.maximum(sd, floor)
    return mean, sdf, (Y - mean) / sdf


def _finish(Y: np.ndarray, expected, threshold, stat, cutoff: float) -> Result:
    res = Result.empty(Y.shape)
    ok = np.isfinite(stat)
    res.expected = expected
    res.threshold = threshold
    res.statistic = stat
    res.alarm = ok & (stat >= cutoff)
    res.level = np.where(res.alarm, LEVEL_YELLOW, LEVEL_NONE).astype(np.int8)
    res.reason = np.where(ok, REASON_NONE, REASON_INSUFFICIENT_BASELINE).astype(np.int8)
    res.expected[~ok] = np.nan
    res.threshold[~ok] = np.nan
    return res


def c1(Y: np.ndarray, min_sd: float | None = None, cutoff: float = 3.0) -> Result:
    """EARS C1: 7-value baseline immediately before t, alarm at C1 >= 3."""
    mean, sdf, stat = _c_stat(Y, 0, min_sd)
    return _finish(Y, mean, mean + cutoff * sdf, stat, cutoff)


def c2(Y: np.ndarray, min_sd: float | None = None, cutoff: float = 3.0) -> Result:
    """EARS C2: 7-value baseline ending 3 values before t (2-value guard band), alarm at C2 >= 3."""
    mean, sdf, stat = _c_stat(Y, 2, min_sd)
    return _finish(Y, mean, mean + cutoff * sdf, stat, cutoff)


def c3(Y: np.ndarray, min_sd: float | None = None, cutoff: float = 2.0) -> Result:
    """EARS C3 (textbook): sum of max(0, C2 - 1) over t-2, t-1 and t; alarm at C3 >= 2."""
    mean, sdf, c2_stat = _c_stat(Y, 2, min_sd)
    excess = np.maximum(0.0, c2_stat - 1.0)  # NaN stays NaN
    prev = np.full(Y.shape, np.nan)
    prev[:, 2:] = excess[:, 1:-1] + excess[:, :-2]
    stat = prev + excess
    # smallest y_t that alarms: need max(0, C2_t - 1) >= cutoff - prev, i.e. C2_t >= 1 + cutoff - prev
    need = np.where(prev >= cutoff, -np.inf, 1.0 + cutoff - prev)
    threshold = np.where(np.isfinite(need), mean + need * sdf, 0.0)
    return _finish(Y, mean, threshold, stat, cutoff)
