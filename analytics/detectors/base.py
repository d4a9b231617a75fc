"""Shared pieces of the detectors: the result container and vectorised rolling baselines.

Every detector works on a matrix ``Y`` of shape (series, time) holding series of equal length
(the orchestrator in ``analytics/detect.py`` groups series that way) and returns a
:class:`Result` of arrays of the same shape. Work is vectorised across series; loops over time
remain only where a method is recursive (EWMA, CUSUM) or fits a model per time point (regression,
Farrington), and those loops do matrix work across all series at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# level codes (mapped to 'yellow' / 'red' / None by analytics/detect.py)
LEVEL_NONE, LEVEL_YELLOW, LEVEL_RED = 0, 1, 2
LEVELS = {LEVEL_NONE: None, LEVEL_YELLOW: "yellow", LEVEL_RED: "red"}

# reason codes: why a row has no verdict (or no alarm is allowed)
REASON_NONE = 0
REASON_INSUFFICIENT_BASELINE = 1  # not enough past data for the method's baseline
REASON_TOO_FEW_RECENT_CASES = 2  # Farrington: fewer than 5 cases in the last 4 periods (no alarm)
REASONS = {
    REASON_NONE: None,
    REASON_INSUFFICIENT_BASELINE: "insufficient_baseline",
    REASON_TOO_FEW_RECENT_CASES: "too_few_recent_cases",
}


@dataclass
class Result:
    """Per-cell output of one detector; arrays of shape (series, time)."""

    expected: np.ndarray
    threshold: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    alarm: np.ndarray
    level: np.ndarray
    reason: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> "Result":
        nan = lambda: np.full(shape, np.nan)  # noqa: E731
        return cls(
            expected=nan(), threshold=nan(), statistic=nan(), p_value=nan(),
            alarm=np.zeros(shape, dtype=bool),
            level=np.zeros(shape, dtype=np.int8),
            reason=np.full(shape, REASON_INSUFFICIENT_BASELINE, dtype=np.int8),
        )

    def set_levels_from_p(self, alpha_yellow: float = 0.05, alpha_red: float = 0.01) -> None:
        """ESSENCE convention: red p < 0.01, yellow 0.01 <= p < 0.05; alarm = yellow or red."""
        p = self.p_value
        ok = np.isfinite(p)
        red = ok & (p < alpha_red)
        yellow = ok & (p < alpha_yellow) & ~red
        self.level = np.where(red, LEVEL_RED, np.where(yellow, LEVEL_YELLOW, LEVEL_NONE)).astype(np.int8)
        self.alarm = red | yellow


def rolling_baseline(
    Y: np.ndarray, length: int, guard: int, min_length: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sample sd (ddof=1) and size of the baseline window of every cell.

    The baseline of time index ``i`` is ``Y[:, lo:hi]`` with ``hi = i - guard`` (the ``guard``
    most recent values before ``i`` are skipped) and ``lo = max(0, hi - length)``. While fewer
    than ``length`` values exist the window grows (ESSENCE style) as long as it has at least
    ``min_length`` values (default: ``length``); cells with a shorter window get NaN.
    Computed from cumulative sums of values centred per series (numerically safe for counts).
    """
    S, T = Y.shape
    min_length = length if min_length is None else min_length
    centre = np.nanmean(Y, axis=1, keepdims=True) if T else np.zeros((S, 1))
    Z = Y - centre
    c1 = np.concatenate([np.zeros((S, 1)), np.cumsum(Z, axis=1)], axis=1)
    c2 = np.concatenate([np.zeros((S, 1)), np.cumsum(Z * Z, axis=1)], axis=1)
    i = np.arange(T)
    hi = i - guard
    lo = np.maximum(0, hi - length)
    n = np.where(hi > 0, hi - lo, 0)
    valid = (n >= max(min_length, 2)) & (hi > 0)
    hi_c = np.clip(hi, 0, T)
    lo_c = np.clip(lo, 0, T)
    s1 = c1[:, hi_c] - c1[:, lo_c]
    s2 = c2[:, hi_c] - c2[:, lo_c]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n + centre
        var = (s2 - s1 * s1 / n) / (n - 1)
    sd = np.sqrt(np.clip(var, 0.0, None))
    mean[:, ~valid] = np.nan
    sd[:, ~valid] = np.nan
    return mean, sd, np.where(valid, n, 0)


def default_min_sd(Y: np.ndarray) -> float:
    """Floor for a baseline sd: 1.0 for count data (all values integers), else 1e-6."""
    finite = Y[np.isfinite(Y)]
    if finite.size and np.all(np.equal(np.mod(finite, 1), 0)):
        return 1.0
    return 1e-6
