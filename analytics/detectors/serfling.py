"""Serfling-type seasonal regression with an epidemic-growth alarm, for weekly seasonal series (ILI %).

References: Serfling RE. "Methods for current statistics of mortality from influenza and
pneumonia". Public Health Rep 1963;78:494-506. Costagliola D et al. "A routine tool for detection
and assessment of epidemics of influenza-like syndromes in France". Am J Public Health
1991;81:97-9 (the same regression on ILI, fitted on non-epidemic weeks).

For the value at time t0:

* **Baseline** - ordinary least squares of ``y`` on ``1, time, sin(2 pi time / period),
  cos(2 pi time / period)`` over the ``b`` years before t0 (at least ``min_years``), fitted on the
  non-epidemic weeks only: the values at or below the ``keep_quantile`` quantile of that window
  (the epidemic weeks, i.e. the top ``1 - keep_quantile``, are left out, as in Costagliola 1991).
* **Expected** = the fitted curve at t0; ``sd`` = residual standard deviation of the fit.
  statistic ``z = (y - expected) / sd``; one-sided p-value ``1 - Phi(z)``; threshold
  ``expected + z_{1-alpha} sd``.
* **Alarm** - ``p < alpha`` AND the series is growing: ``y(t0) > (1 + min_growth) y(t0 - 1)``
  (``rise=True``; ``min_growth`` 0 by default). A
  seasonal epidemic then raises alarms on its way up - the weeks an official can still act on -
  and not through its plateau and decline. Level red when also ``p < alpha_red``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from analytics.detectors.base import LEVEL_NONE, LEVEL_RED, LEVEL_YELLOW, REASON_INSUFFICIENT_BASELINE, Result


def serfling(
    Y: np.ndarray,
    period: int = 52,
    b: int = 3,
    min_years: int = 1,
    keep_quantile: float = 0.75,
    alpha: float = 0.05,
    alpha_red: float = 0.001,
    rise: bool = True,
    min_growth: float = 0.0,
) -> Result:
    """Seasonal regression baseline + growth alarm; see the module docstring."""
    if not 0 < keep_quantile <= 1:
        raise ValueError(f"keep_quantile must be in (0, 1]; got {keep_quantile!r}")
    S, T = Y.shape
    period, b = int(period), int(b)
    res = Result.empty((S, T))
    window = b * period
    first = int(min_years) * period
    tt = np.arange(T, dtype=float)
    X_all = np.column_stack([np.ones(T), tt / period, np.sin(2 * np.pi * tt / period), np.cos(2 * np.pi * tt / period)])
    for t0 in range(first, T):
        lo = max(0, t0 - window)
        Yw = Y[:, lo:t0]  # (S, n)
        Xw = X_all[lo:t0]
        cut = np.quantile(Yw, keep_quantile, axis=1, keepdims=True)
        w = (Yw <= cut).astype(float)  # 1 = non-epidemic week used in the fit
        XtW = Xw.T[None, :, :] * w[:, None, :]  # (S, p, n)
        A = XtW @ Xw  # (S, p, p)
        rhs = np.einsum("spn,sn->sp", XtW, Yw)
        try:
            beta = np.linalg.solve(A + 1e-9 * np.eye(A.shape[1]), rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            continue
        fit = beta @ Xw.T
        n_used = w.sum(axis=1)
        dof = np.maximum(n_used - Xw.shape[1], 1.0)
        sd = np.sqrt((w * (Yw - fit) ** 2).sum(axis=1) / dof)
        sd = np.maximum(sd, 1e-6 + 0.01 * np.abs(fit.mean(axis=1)))  # a flat series still gets a scale
        mu = beta @ X_all[t0]
        z = (Y[:, t0] - mu) / sd
        p = stats.norm.sf(z)
        growing = Y[:, t0] > Y[:, t0 - 1] * (1.0 + min_growth) if rise else np.ones(S, dtype=bool)
        alarm = (p < alpha) & growing
        res.expected[:, t0] = mu
        res.threshold[:, t0] = mu + stats.norm.isf(alpha) * sd
        res.statistic[:, t0] = z
        res.p_value[:, t0] = p
        res.alarm[:, t0] = alarm
        res.level[:, t0] = np.where(alarm & (p < alpha_red), LEVEL_RED, np.where(alarm, LEVEL_YELLOW, LEVEL_NONE))
        res.reason[:, t0] = 0
    res.reason[:, :first] = REASON_INSUFFICIENT_BASELINE
    return res
