"""The 23 FluSight quantile levels, validation with precise messages, and repair.

Repair = sort each row of quantile values (removes crossing) and clip at zero (counts are
non-negative). Validation errors show the offending value, after statsforecast's style.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

LEVELS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50,
    0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.975, 0.99,
)
LEVELS_ARRAY = np.asarray(LEVELS)
MEDIAN_INDEX = LEVELS.index(0.5)
# Central intervals reported as coverage: nominal level -> (lower level, upper level).
INTERVALS: dict[int, tuple[float, float]] = {50: (0.25, 0.75), 80: (0.10, 0.90), 95: (0.025, 0.975)}


class QuantileError(ValueError):
    """Bad quantile levels or quantile values."""


def validate_levels(levels: Iterable[float]) -> np.ndarray:
    """Return levels as an array; raise naming the bad value if any level is outside (0, 1),
    repeated, unsorted, or lacks the symmetric partner a WIS needs."""
    arr = np.asarray(list(levels), dtype=float)
    if arr.size == 0:
        raise QuantileError("quantile levels: empty list; expected e.g. the 23 FluSight levels")
    for q in arr:
        if not np.isfinite(q) or q <= 0 or q >= 1:
            raise QuantileError(f"quantile level {q!r} is outside the open interval (0, 1)")
    dup = [q for q in set(arr.tolist()) if (arr == q).sum() > 1]
    if dup:
        raise QuantileError(f"quantile level {dup[0]!r} is repeated")
    if np.any(np.diff(arr) <= 0):
        i = int(np.argmax(np.diff(arr) <= 0))
        raise QuantileError(f"quantile levels must increase: {arr[i]!r} is followed by {arr[i + 1]!r}")
    for q in arr:
        if not np.any(np.isclose(arr, 1 - q)):
            raise QuantileError(f"quantile level {q!r} has no symmetric partner {1 - q:.4g} (needed for WIS intervals)")
    return arr


def repair(values: np.ndarray, nonnegative: bool = True) -> np.ndarray:
    """Sort along the last axis (non-crossing) and clip at zero; NaN/inf raise."""
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        bad = v[~np.isfinite(v)].ravel()[0]
        raise QuantileError(f"quantile value {bad!r} is not finite")
    v = np.sort(v, axis=-1)
    if nonnegative:
        v = np.maximum(v, 0.0)
    return v


def check_values(values: np.ndarray, levels: Sequence[float] = LEVELS, nonnegative: bool = True) -> None:
    """Raise if a row of quantile values crosses, is negative, or has the wrong width."""
    v = np.asarray(values, dtype=float)
    if v.shape[-1] != len(levels):
        raise QuantileError(f"expected {len(levels)} quantile values per row, got {v.shape[-1]}")
    if not np.all(np.isfinite(v)):
        raise QuantileError(f"quantile value {v[~np.isfinite(v)].ravel()[0]!r} is not finite")
    if nonnegative and np.any(v < 0):
        raise QuantileError(f"quantile value {v[v < 0].ravel()[0]!r} is negative")
    d = np.diff(v, axis=-1)
    if np.any(d < -1e-9):
        idx = np.argwhere(d < -1e-9)[0]
        j = idx[-1]
        row = v[tuple(idx[:-1])] if v.ndim > 1 else v
        raise QuantileError(
            f"quantiles cross: level {levels[j]} has value {row[j]!r} > level {levels[j + 1]} value {row[j + 1]!r}"
        )


def interpolate_levels(values: np.ndarray, from_levels: Sequence[float], to_levels: Sequence[float]) -> np.ndarray:
    """Quantile values at ``to_levels`` from values at ``from_levels`` (last axis): sorted (non-
    crossing), then linear in the normal quantile function of the level, extrapolated linearly
    beyond the outermost levels (a normal-shaped tail)."""
    from scipy.stats import norm

    v = np.sort(np.asarray(values, dtype=float), axis=-1)
    zf, zt = norm.ppf(np.asarray(from_levels, dtype=float)), norm.ppf(np.asarray(to_levels, dtype=float))
    j = np.clip(np.searchsorted(zf, zt) - 1, 0, len(zf) - 2)
    w = (zt - zf[j]) / (zf[j + 1] - zf[j])
    return v[..., j] + w * (v[..., j + 1] - v[..., j])
