"""Direct multi-step quantile autoregression pooled across locations (after Delphi's ARX).

For each step k and quantile level tau, a linear quantile regression of the
log growth z_{t+k} - z_t (z = log1p count) on [1, dz_t, dz_{t-1}, z_t - mean_loc(z)] [+ affect a_t,
a_t - a_{t-1}], pooled over every location's history so short series borrow strength. The forecast
is expm1(z_T + prediction); crossing is repaired by sorting.

The quantile regressions are solved by iteratively reweighted least squares (the algorithm of
statsmodels' ``QuantReg``), vectorised over all quantile levels at once; a test checks the fit
against ``statsmodels.regression.quantile_regression.QuantReg``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.models.base import Model, Panel, SeriesFailure, log1p_series
from analytics.quantiles import LEVELS


def quantreg_irls(X: np.ndarray, y: np.ndarray, taus: np.ndarray, max_iter: int = 100, tol: float = 1e-6) -> np.ndarray:
    """Linear quantile regression for every level in ``taus`` at once; returns (len(taus), p)."""
    beta0 = np.linalg.lstsq(X, y, rcond=None)[0]
    B = np.tile(beta0, (len(taus), 1))
    ridge = 1e-9 * np.eye(X.shape[1])
    for _ in range(max_iter):
        R = y[:, None] - X @ B.T  # (n, Q)
        R = np.where(np.abs(R) < 1e-6, np.where(R >= 0, 1e-6, -1e-6), R)
        W = 1.0 / np.abs(np.where(R < 0, taus[None, :] * R, (1 - taus[None, :]) * R))
        XtW = X.T[None, :, :] * W.T[:, None, :]  # (Q, p, n)
        A = XtW @ X + ridge
        b = XtW @ y
        try:
            B_new = np.linalg.solve(A, b[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # a constant or collinear column (say an all-missing covariate): minimum-norm fit
            B_new = np.stack([np.linalg.lstsq(A[i], b[i], rcond=None)[0] for i in range(len(taus))])
        done = np.max(np.abs(B_new - B)) < tol
        B = B_new
        if done:
            break
    return B


def _features(z: np.ndarray, a: np.ndarray | None) -> np.ndarray:
    dz = np.r_[np.nan, np.diff(z)]
    dz1 = np.r_[np.nan, dz[:-1]]
    ok = np.isfinite(z)
    rel = z - (z[ok].mean() if ok.any() else 0.0)
    cols = [np.ones_like(z), dz, dz1, rel]
    if a is not None:
        da = np.vstack([np.full((1, a.shape[1]), np.nan), np.diff(a, axis=0)])
        cols += [a[:, j] for j in range(a.shape[1])] + [da[:, j] for j in range(a.shape[1])]
    return np.column_stack(cols)


@dataclass
class QuantRegModel(Model):
    name: str = "qr"
    pooled = True
    affect: bool = False
    affect_features: tuple[str, ...] | None = None
    max_history: int = 156
    max_rows: int = 20_000  # most recent pooled rows per step (keeps 3,000-region panels fast)
    min_rows: int = 30

    def __post_init__(self) -> None:
        self.uses_affect = self.affect
        if self.affect:
            self.name = "qr_affect"

    def fit(self, panel: Panel) -> "QuantRegModel":
        self.failures, self._z, self._X = {}, {}, {}
        if self.affect and not panel.affect:
            raise SeriesFailure(f"{self.name}: no affect features in the panel")
        for loc in panel.locations:
            y = panel.y[loc].to_numpy(dtype=float)[-self.max_history:]
            if not np.isfinite(y[-1]):
                self.failures[loc] = f"{self.name}: last period is missing"
            z = log1p_series(y)
            a = panel.affect_matrix(loc, self.affect_features) if self.affect else None
            self._z[loc] = z
            self._X[loc] = _features(z, a[-self.max_history:] if a is not None else None)
        return self

    def _training(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        Xs, rs, ts = [], [], []
        for loc, z in self._z.items():
            X = self._X[loc]
            r = np.r_[z[k:], np.full(k, np.nan)] - z
            ok = np.isfinite(r) & np.all(np.isfinite(X), axis=1)
            Xs.append(X[ok])
            rs.append(r[ok])
            ts.append(np.flatnonzero(ok) - len(z))  # recency (0 = newest)
        X, r, t = np.vstack(Xs), np.concatenate(rs), np.concatenate(ts)
        if len(r) > self.max_rows:
            keep = np.argsort(-t, kind="stable")[: self.max_rows]
            X, r = X[keep], r[keep]
        return X, r

    def predict(self, steps: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
        lv = np.asarray(levels)
        locs = [l for l in self._z if l not in self.failures]
        x_now = {l: self._X[l][-1] for l in locs}
        for l in list(locs):
            if not np.all(np.isfinite(x_now[l])):
                self.failures[l] = f"{self.name}: the last period lacks a lag or affect value"
                locs.remove(l)
        out = {l: np.empty((len(steps), len(lv))) for l in locs}
        if not locs:
            return {}
        Xnow = np.vstack([x_now[l] for l in locs])
        znow = np.array([self._z[l][-1] for l in locs])
        for i, k in enumerate(steps):
            X, r = self._training(int(k))
            if len(r) < max(self.min_rows, 3 * X.shape[1]):
                for l in locs:
                    self.failures[l] = f"{self.name}: {len(r)} pooled training rows for step {k}"
                return {}
            B = quantreg_irls(X, r, lv)
            preds = Xnow @ B.T
            vals = np.expm1(znow[:, None] + np.sort(preds, axis=1))
            for j, l in enumerate(locs):
                out[l][i] = vals[j]
        return out
