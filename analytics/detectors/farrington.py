"""Farrington flexible and its Noufaily variant (quasi-Poisson GLM outbreak detection).

References: Farrington CP, Andrews NJ, Beale AD, Catchpole MA. "A statistical algorithm for the
early detection of outbreaks of infectious disease". J R Stat Soc A 1996;159:547-63.
Noufaily A, Enki DG, Farrington P, Garthwaite P, Andrews N, Charlett A. "An improved algorithm
for outbreak detection in multiple surveillance systems". Stat Med 2013;32:1206-22.
Salmon M, Schumacher D, Höhle M. "Monitoring count time series in R: aberration detection in
public health surveillance". J Stat Softw 2016;70(10) — ``surveillance::farringtonFlexible``,
whose defaults are used here.

For the value at time t0 (period length ``period``: 52 for weekly data, 365 for daily):

* **Reference values** — ``b_eff = min(b, floor((t0 - w) / period))`` past years (b = 5: as many
  as the series has, up to b; fewer than one gives 'insufficient_baseline').
  - flexible (``no_periods=1``): the windows ``t0 - j*period + (-w..w)``, j = 1..b_eff (w = 3).
  - Noufaily (``no_periods=10``): every value from ``t0 - b_eff*period - w`` to
    ``t0 - past_weeks_not_included - 1`` (26 most recent values left out), with a 10-level
    seasonal factor: level 0 = the windows above, the rest of each year cut into 9 equal blocks.
* **Model** — quasi-Poisson GLM with log link, ``log mu = a + beta*time (+ seasonal factor)``,
  fitted by IRLS (batched across all series and time points). Dispersion
  ``phi = max(1, sum(w (y-mu)^2/mu) / (n - p))``.
* **Down-weighting of past outbreaks** (``reweight``) — Anscombe residuals
  ``r = 3/2 (y^(2/3) - mu^(2/3)) / (mu^(1/6) sqrt(phi (1 - h)))`` from a first fit (h: leverage);
  values with ``r > weights_threshold`` (2.58 flexible/Noufaily; 1 in the 1996 original) get
  weight ``r^-2``, the others 1, rescaled to sum to n; the model is refitted with these weights.
* **Trend** — kept only if its (two-sided, t) p-value < 0.05, at least 3 years of reference data
  are used and the prediction does not exceed the largest reference value; otherwise the model
  without trend is used.
* **Threshold** (alpha = 0.05, one-sided):
  - ``delta`` (flexible): 2/3-power transformation, ``tau = phi + se(mu0)^2 / mu0``,
    ``U = (mu0^(2/3) + z_{1-alpha} sqrt(4/9 mu0^(1/3) tau))^(3/2)``; statistic = the standardised
    value ``(y^(2/3) - mu0^(2/3)) / sd``, p = its normal upper tail.
  - ``nbPlugin`` (Noufaily): U = the (1 - alpha) quantile of the negative binomial with mean mu0
    and size ``mu0 / (phi - 1)`` (Poisson when phi = 1); p = P(Y >= y); statistic
    ``(y - mu0) / sqrt(phi mu0)``.
* **Alarm** — ``y > U``, except when fewer than 5 cases occurred in the last 4 time points
  (current included; such a suppressed alarm has reason 'too_few_recent_cases').
  Level red when p < 0.01, else yellow. No population offset.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from analytics.detectors.base import (
    LEVEL_NONE,
    LEVEL_RED,
    LEVEL_YELLOW,
    REASON_NONE,
    REASON_TOO_FEW_RECENT_CASES,
    Result,
)

_MAX_CELLS = 4_000_000  # problems x reference values x parameters held at once


def _irls(y: np.ndarray, X: np.ndarray, pw: np.ndarray, max_iter: int = 30, tol: float = 1e-8):
    """Batched Poisson IRLS (log link) for problems sharing one design matrix X (n, p).

    y, pw: (N, n). Returns beta (N, p), mu (N, n), (X'WX)^-1 (N, p, p).
    """
    N, n = y.shape
    p = X.shape[1]
    ybar = (pw * y).sum(1) / np.maximum(pw.sum(1), 1e-12)
    beta = np.zeros((N, p))
    beta[:, 0] = np.log(np.maximum(ybar, 1e-3))
    ridge = 1e-10 * np.eye(p)
    active = np.ones(N, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        b = beta[idx]
        eta = np.clip(b @ X.T, -25, 25)
        mu = np.exp(eta)
        W = pw[idx] * mu
        z = eta + (y[idx] - mu) / mu
        A = W[:, :, None] * X[None, :, :]
        xtwx = np.swapaxes(A, 1, 2) @ X + ridge
        xtwz = np.einsum("Nnp,Nn->Np", A, z)
        new = np.linalg.solve(xtwx, xtwz[:, :, None])[:, :, 0]
        step = np.abs(new - b).max(axis=1)
        beta[idx] = new
        active[idx] = step > tol * (1 + np.abs(new).max(axis=1))
    eta = np.clip(beta @ X.T, -25, 25)
    mu = np.exp(eta)
    W = pw * mu
    A = W[:, :, None] * X[None, :, :]
    inv = np.linalg.inv(np.swapaxes(A, 1, 2) @ X + ridge)
    return beta, mu, inv


def _dispersion(y, mu, pw, p):
    n = y.shape[1]
    if n - p <= 0:
        return np.ones(y.shape[0])
    return np.maximum(1.0, (pw * (y - mu) ** 2 / mu).sum(1) / (n - p))


def _fit(y: np.ndarray, X: np.ndarray, x0: np.ndarray, reweight: bool, weights_threshold: float):
    """Fit (and optionally refit with outbreak down-weighting). Returns mu0, var(eta0), phi, beta, cov."""
    N, n = y.shape
    p = X.shape[1]
    pw = np.ones((N, n))
    beta, mu, inv = _irls(y, X, pw)
    phi = _dispersion(y, mu, pw, p)
    if reweight:
        XI = np.matmul(X[None, :, :], inv)  # (N, n, p)
        h = np.clip((XI * X[None, :, :]).sum(-1) * mu, 0.0, 1.0 - 1e-10)
        r = 1.5 * (np.cbrt(y) ** 2 - np.cbrt(mu) ** 2) / (mu ** (1 / 6) * np.sqrt(phi[:, None] * (1 - h)))
        omega = np.where(r > weights_threshold, 1.0 / np.maximum(r, 1e-12) ** 2, 1.0)
        pw = omega * (n / omega.sum(1, keepdims=True))
        beta, mu, inv = _irls(y, X, pw)
        phi = _dispersion(y, mu, pw, p)
    cov = phi[:, None, None] * inv
    var_eta0 = np.einsum("i,Nij,j->N", x0, cov, x0)
    mu0 = np.exp(np.clip(beta @ x0, -25, 25))
    return mu0, var_eta0, phi, beta, cov


def _reference(period: int, b_eff: int, w: int, no_periods: int, pwni: int):
    """Offsets (relative to t0) of the reference values and their seasonal level."""
    if no_periods <= 1:
        rel = np.array(sorted(-j * period + d for j in range(1, b_eff + 1) for d in range(-w, w + 1)))
        return rel, np.zeros(rel.size, dtype=int)
    rel = np.arange(-(b_eff * period + w), -pwni)
    o = np.mod(rel, period)
    in_window = (o <= w) | (o >= period - w)
    span = max(period - 2 * w - 1, 1)
    level = np.where(in_window, 0, 1 + ((o - (w + 1)) * (no_periods - 1)) // span)
    return rel, level


def _designs(rel: np.ndarray, level: np.ndarray, period: int):
    dummies = [(level == lv).astype(float) for lv in np.unique(level) if lv != 0]
    base = [np.ones(rel.size)]
    X_trend = np.column_stack(base + [rel / period] + dummies)
    X_flat = np.column_stack(base + dummies)
    x0_trend = np.zeros(X_trend.shape[1])
    x0_trend[0] = 1.0
    x0_flat = np.zeros(X_flat.shape[1])
    x0_flat[0] = 1.0
    return X_trend, x0_trend, X_flat, x0_flat


def farrington(
    Y: np.ndarray,
    period: int = 52,
    b: int = 5,
    w: int = 3,
    alpha: float = 0.05,
    alpha_red: float = 0.01,
    reweight: bool = True,
    weights_threshold: float = 2.58,
    trend: bool = True,
    p_trend: float = 0.05,
    min_trend_years: int = 3,
    limit54: tuple[int, int] = (5, 4),
    no_periods: int = 1,
    past_weeks_not_included: int | None = None,
    threshold_method: str = "delta",
    last: int | None = None,
) -> Result:
    """Farrington flexible (defaults) — see the module docstring; ``last`` evaluates only the last N times."""
    if threshold_method not in ("delta", "nbPlugin"):
        raise ValueError(f"threshold_method must be 'delta' or 'nbPlugin'; got {threshold_method!r}")
    S, T = Y.shape
    period, b, w = int(period), int(b), int(w)
    if period < 2 * w + 2:
        raise ValueError(f"period {period} too short for window half-width w={w}")
    pwni = w if past_weeks_not_included is None else int(past_weeks_not_included)
    res = Result.empty(Y.shape)
    start = period + w
    if last is not None:
        start = max(start, T - int(last))
    idx_all = np.arange(start, T)
    if idx_all.size == 0:
        return res
    b_eff_all = np.minimum(b, (idx_all - w) // period)
    csum = np.concatenate([np.zeros((S, 1)), np.cumsum(Y, axis=1)], axis=1)
    z = stats.norm.ppf(1 - alpha)
    for b_eff in np.unique(b_eff_all):
        idxs = idx_all[b_eff_all == b_eff]
        rel, level = _reference(period, int(b_eff), w, no_periods, pwni)
        if rel.size == 0:
            continue
        X_t, x0_t, X_f, x0_f = _designs(rel, level, period)
        yref_all = Y[:, idxs[:, None] + rel[None, :]].reshape(-1, rel.size)  # (S*m, n)
        y0_all = Y[:, idxs].reshape(-1)
        chunk = max(256, _MAX_CELLS // (rel.size * X_t.shape[1]))
        mu0 = np.zeros(y0_all.size)
        phi = np.ones(y0_all.size)
        var_eta = np.zeros(y0_all.size)
        for c0 in range(0, y0_all.size, chunk):
            sl = slice(c0, c0 + chunk)
            yref = yref_all[sl]
            nonzero = yref.sum(1) > 0
            if not nonzero.any():
                continue
            yr = yref[nonzero]
            m_f, v_f, ph_f, _, _ = _fit(yr, X_f, x0_f, reweight, weights_threshold)
            m, v, ph = m_f, v_f, ph_f
            if trend and b_eff >= min_trend_years:
                m_t, v_t, ph_t, beta_t, cov_t = _fit(yr, X_t, x0_t, reweight, weights_threshold)
                tstat = beta_t[:, 1] / np.sqrt(np.maximum(cov_t[:, 1, 1], 1e-300))
                p_tr = 2 * stats.t.sf(np.abs(tstat), max(rel.size - X_t.shape[1], 1))
                keep = (p_tr < p_trend) & (m_t <= yr.max(1))
                m = np.where(keep, m_t, m_f)
                v = np.where(keep, v_t, v_f)
                ph = np.where(keep, ph_t, ph_f)
            pos = np.flatnonzero(nonzero) + c0
            mu0[pos], var_eta[pos], phi[pos] = m, v, ph
        thr, pval, stat = _threshold(y0_all, mu0, var_eta, phi, z, alpha, threshold_method)
        recent = (csum[:, idxs + 1] - csum[:, np.maximum(idxs + 1 - limit54[1], 0)]).reshape(-1)
        enough = recent >= limit54[0]
        exceeds = y0_all > thr
        alarm = exceeds & enough
        level_code = np.where(alarm, np.where(pval < alpha_red, LEVEL_RED, LEVEL_YELLOW), LEVEL_NONE)
        shape = (S, idxs.size)
        res.expected[:, idxs] = mu0.reshape(shape)
        res.threshold[:, idxs] = thr.reshape(shape)
        res.statistic[:, idxs] = stat.reshape(shape)
        res.p_value[:, idxs] = pval.reshape(shape)
        res.alarm[:, idxs] = alarm.reshape(shape)
        res.level[:, idxs] = level_code.reshape(shape)
        blocked = exceeds & ~enough  # the reason is given only where it suppressed an alarm
        res.reason[:, idxs] = np.where(blocked, REASON_TOO_FEW_RECENT_CASES, REASON_NONE).reshape(shape)
    return res


def _threshold(y0, mu0, var_eta, phi, z, alpha, method):
    """Upper threshold U, p-value and statistic of each problem (see module docstring)."""
    zero = mu0 <= 0
    mu = np.where(zero, 1.0, mu0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if method == "delta":
            se_fit2 = (mu * mu) * var_eta  # delta method: var(mu0) = mu0^2 var(eta0)
            tau = phi + se_fit2 / mu
            sd = np.sqrt(4.0 / 9.0 * np.cbrt(mu) * tau)
            m23 = np.cbrt(mu) ** 2
            thr = (m23 + z * sd) ** 1.5
            stat = (np.cbrt(y0) ** 2 - m23) / sd
            pval = stats.norm.sf(stat)
        else:
            od = phi > 1.0 + 1e-9
            size = np.where(od, mu / np.where(od, phi - 1.0, 1.0), 1.0)
            prob = size / (size + mu)
            thr = np.where(od, stats.nbinom.ppf(1 - alpha, size, prob), stats.poisson.ppf(1 - alpha, mu))
            yc = np.ceil(y0) - 1
            pval = np.where(od, stats.nbinom.sf(yc, size, prob), stats.poisson.sf(yc, mu))
            stat = (y0 - mu) / np.sqrt(phi * mu)
    thr = np.where(zero, 0.0, thr)
    pval = np.where(zero, np.where(y0 > 0, 0.0, 1.0), pval)
    stat = np.where(zero, np.nan, stat)
    return thr, pval, stat


def noufaily(Y: np.ndarray, period: int = 52, **params) -> Result:
    """Noufaily et al. (2013): farringtonFlexible with noPeriods=10, pastWeeksNotIncluded=26, nbPlugin."""
    params.setdefault("no_periods", 10)
    params.setdefault("past_weeks_not_included", 26)
    params.setdefault("threshold_method", "nbPlugin")
    return farrington(Y, period=period, **params)
