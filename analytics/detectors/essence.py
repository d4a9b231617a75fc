"""ESSENCE detectors: EWMA, adaptive multiple regression, and the regression/EWMA switch.

References: Burkom HS. "Development, adaptation, and assessment of alerting algorithms for
biosurveillance". Johns Hopkins APL Tech Dig 2003;24(4):335-42; Burkom HS et al. "Developments
in the roles, features, and evaluation of alerting algorithms for disease outbreak monitoring".
Johns Hopkins APL Tech Dig 2008;27(4):313-31; the CDC NSSP reference implementation in R,
``Rnssp::alert_ewma``, ``alert_regression`` and ``alert_switch`` (CDCgov/Rnssp), whose constants
are used here.

Common to all three: a baseline of ``baseline`` = 28 values ending ``guard`` = 2 values before the
test value (the guard band keeps the start of an outbreak out of its own baseline). At the start
of a series the baseline grows from ``min_baseline`` = 11 values up to 28, as in ESSENCE; before
that the row has reason 'insufficient_baseline'. p-values are one-sided Student-t upper tails;
red p < 0.01, yellow 0.01 <= p < 0.05 (alarm = red or yellow). ``threshold`` is the smallest
observed value that would give p < 0.05.

EWMA
    ``z_t = w y_t + (1 - w) z_{t-1}`` (z_1 = y_1). Expected value: the baseline mean; sd ``s`` of
    the baseline (n values, n - 1 degrees of freedom). The EWMA's sd relative to the baseline mean
    is ``s * c(w, n, g)`` with ``c = sqrt(w/(2-w) + 1/n - 2(1-w)^(g+1)(1-(1-w)^n)/n)``; ESSENCE adds
    a small-count constant ``(0.1289 - (0.2414 - 0.1826(1-w)^4) log(0.5)) w / t_{0.95,n-1}`` and
    floors it at ``(w / t_{0.95,n-1})(1 + 0.5(1-w)^2)``. Test statistic ``(z_t - mean) / sigma``,
    p = P(T_{n-1} > stat). When the statistic exceeds the red limit the smoothed value is pulled
    back to that limit, so an outbreak does not keep the EWMA high afterwards. Smoothing 0.4
    (sensitive to gradual rises) and 0.9 (sudden rises, close to C2) are both computed by default
    and the smaller p-value is reported (ESSENCE); pass ``smoothing=0.4`` for one coefficient.

Adaptive multiple regression
    OLS on the baseline: ``y ~ 1 + time + day-of-week dummies`` (6 dummies, Sunday reference; the
    dummies are used only for daily data, i.e. when dates are daily or the period is 7; weekly
    data get ``1 + time``). Forecast for the test day (g + 1 steps after the baseline), floored at
    0. The test statistic divides the residual by the exact standard error of prediction
    ``sqrt(MSE (1 + x0'(X'X)^-1 x0))`` (Rnssp uses a closed-form approximation of the same
    quantity), floored at ``1.01 / t_{0.95,df}``; df = n - p. Adjusted R² of the fit is kept.

Switch
    Regression where its adjusted R² >= 0.60, otherwise EWMA with smoothing 0.4 (NSSP-ESSENCE).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from analytics.detectors.base import REASON_INSUFFICIENT_BASELINE, REASON_NONE, Result, rolling_baseline

BASELINE = 28
GUARD = 2
MIN_BASELINE = 11


def _as_tuple(smoothing) -> tuple[float, ...]:
    if isinstance(smoothing, (int, float)):
        vals = (float(smoothing),)
    else:
        vals = tuple(float(v) for v in smoothing)
    bad = [v for v in vals if not 0.0 < v <= 1.0]
    if not vals or bad:
        raise ValueError(f"EWMA smoothing must be in (0, 1]; got {bad or smoothing!r}")
    return vals


def ewma(
    Y: np.ndarray,
    smoothing: float | tuple[float, ...] = (0.4, 0.9),
    baseline: int = BASELINE,
    guard: int = GUARD,
    min_baseline: int = MIN_BASELINE,
) -> Result:
    """ESSENCE EWMA (see module docstring)."""
    ws = _as_tuple(smoothing)
    mean, sd, n = rolling_baseline(Y, int(baseline), int(guard), int(min_baseline))
    S, T = Y.shape
    ok = np.isfinite(mean)
    dfree = np.where(n > 1, n - 1, 1).astype(float)
    ucl_red = stats.t.ppf(0.99, dfree)  # per time (same for all series)
    ucl_yel = stats.t.ppf(0.95, dfree)
    best_p = np.full((S, T), np.nan)
    best_stat = np.full((S, T), np.nan)
    best_thr = np.full((S, T), np.inf)
    nf = np.where(n > 0, n, 1).astype(float)
    for w in ws:
        corr = np.sqrt(w / (2 - w) + 1 / nf - 2 * (1 - w) ** (guard + 1) * (1 - (1 - w) ** nf) / nf)
        min_sigma = (w / ucl_yel) * (1 + 0.5 * (1 - w) ** 2)
        const = (0.1289 - (0.2414 - 0.1826 * (1 - w) ** 4) * np.log(10 * 0.05)) * (w / ucl_yel)
        sigma = np.maximum(min_sigma[None, :], sd * corr[None, :] + const[None, :])
        z = np.empty(S)
        stat = np.full((S, T), np.nan)
        thr = np.full((S, T), np.nan)
        for t in range(T):
            y = Y[:, t]
            if t == 0:
                z = y.astype(float).copy()
                continue
            z_prev = z
            z = w * y + (1 - w) * z_prev
            okt = ok[:, t]
            if not okt.any():
                continue
            st = (z - mean[:, t]) / sigma[:, t]
            stat[:, t] = np.where(okt, st, np.nan)
            thr[:, t] = np.where(
                okt, (mean[:, t] + ucl_yel[t] * sigma[:, t] - (1 - w) * z_prev) / w, np.nan
            )
            clip = okt & (np.abs(st) > ucl_red[t])
            z = np.where(clip, mean[:, t] + np.sign(st) * ucl_red[t] * sigma[:, t], z)
        p = stats.t.sf(stat, dfree[None, :])
        better = np.isfinite(p) & ~(p >= best_p)  # first smoothing, or strictly smaller p
        best_p = np.where(better, p, best_p)
        best_stat = np.where(better, stat, best_stat)
        best_thr = np.fmin(best_thr, thr)
    res = Result.empty(Y.shape)
    res.expected = np.where(ok, mean, np.nan)
    res.statistic = best_stat
    res.p_value = best_p
    res.threshold = np.where(ok, best_thr, np.nan)
    res.reason = np.where(ok, REASON_NONE, REASON_INSUFFICIENT_BASELINE).astype(np.int8)
    res.set_levels_from_p()
    return res


def _design(n: int, dow_window: np.ndarray | None, dow_test: int | None, guard: int):
    """Design matrix of a baseline of n values (time 1..n) and the row of the test value."""
    time = np.arange(1, n + 1, dtype=float)
    cols = [np.ones(n), time]
    x0 = [1.0, float(n + guard + 1)]
    if dow_window is not None:
        for d in range(6):  # Monday..Saturday dummies, Sunday is the reference
            cols.append((dow_window == d).astype(float))
            x0.append(1.0 if dow_test == d else 0.0)
    X = np.column_stack(cols)
    x0 = np.asarray(x0)
    xtx_inv = np.linalg.pinv(X.T @ X)
    return X, xtx_inv @ X.T, float(x0 @ xtx_inv @ x0), x0


def regression(
    Y: np.ndarray,
    dow: np.ndarray | None = None,
    baseline: int = BASELINE,
    guard: int = GUARD,
    min_baseline: int = MIN_BASELINE,
    _return_r2: bool = False,
):
    """ESSENCE adaptive multiple regression (see module docstring).

    ``dow``: day of week (Monday=0..Sunday=6) of each time index, shape (T,), or None for
    non-daily data (no day-of-week terms).
    """
    S, T = Y.shape
    baseline, guard = int(baseline), int(guard)
    p_cols = 8 if dow is not None else 2
    min_baseline = max(int(min_baseline), p_cols + 3)
    res = Result.empty(Y.shape)
    r2 = np.full((S, T), np.nan)
    cache: dict = {}
    for i in range(T):
        hi = i - guard
        lo = max(0, hi - baseline)
        n = hi - lo
        if hi <= 0 or n < min_baseline:
            continue
        key = (n, None if dow is None else int(dow[lo]))
        if key not in cache:
            X, pinv, lev, x0 = _design(
                n, None if dow is None else dow[lo:hi], None if dow is None else int(dow[i]), guard
            )
            dfree = n - p_cols
            cache[key] = (X, pinv, lev, x0, dfree, 1.01 / stats.t.ppf(0.95, dfree), stats.t.ppf(0.95, dfree))
        X, pinv, lev, x0, dfree, min_sigma, q95 = cache[key]
        Yw = Y[:, lo:hi]
        beta = Yw @ pinv.T
        resid = Yw - beta @ X.T
        rss = np.einsum("ij,ij->i", resid, resid)
        dev = Yw - Yw.mean(axis=1, keepdims=True)
        tss = np.einsum("ij,ij->i", dev, dev)
        with np.errstate(invalid="ignore", divide="ignore"):
            r2_adj = 1 - (rss / tss) * (n - 1) / dfree
        r2[:, i] = np.where(tss > 0, r2_adj, 0.0)
        expected = np.maximum(0.0, beta @ x0)
        sigma = np.maximum(np.sqrt(rss / dfree * (1 + lev)), min_sigma)
        stat = (Y[:, i] - expected) / sigma
        res.expected[:, i] = expected
        res.statistic[:, i] = stat
        res.p_value[:, i] = stats.t.sf(stat, dfree)
        res.threshold[:, i] = expected + q95 * sigma
        res.reason[:, i] = REASON_NONE
    res.set_levels_from_p()
    return (res, r2) if _return_r2 else res


def switch(
    Y: np.ndarray,
    dow: np.ndarray | None = None,
    baseline: int = BASELINE,
    guard: int = GUARD,
    min_baseline: int = MIN_BASELINE,
    min_adj_r2: float = 0.60,
    smoothing: float = 0.4,
) -> Result:
    """NSSP-ESSENCE regression/EWMA switch: regression where adjusted R² >= 0.60, else EWMA(0.4)."""
    reg, r2 = regression(Y, dow, baseline, guard, min_baseline, _return_r2=True)
    ew = ewma(Y, smoothing, baseline, guard, min_baseline)
    use_reg = np.isfinite(r2) & (r2 >= min_adj_r2)
    out = Result.empty(Y.shape)
    for name in ("expected", "threshold", "statistic", "p_value", "alarm", "level", "reason"):
        setattr(out, name, np.where(use_reg, getattr(reg, name), getattr(ew, name)))
    return out
