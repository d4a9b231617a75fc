"""Quasi-Poisson GLM on lagged log counts, direct multi-step (one fit per step ahead), per series.

Mean: log E[y_{t+k}] = b0 + b1 log1p(y_t) + b2 (log1p(y_t) - log1p(y_{t-1})) [+ affect a_t, a_t - a_{t-1}].
Predictive quantiles: the GLM's estimation uncertainty on the linear predictor (normal, quasi-
likelihood scale) mixed with negative-binomial noise whose dispersion is the method-of-moments
estimate from the step's in-sample residuals (gamma noise for non-integer data), by simulation.
No seasonal terms: the FluSight series hold under two seasons, too few to estimate seasonality.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.models.base import Model, Panel, SeriesFailure, check_series, log1p_series
from analytics.quantiles import LEVELS


def design(z: np.ndarray, a: np.ndarray | None) -> np.ndarray:
    """Design rows for every period t (NaN where lags are missing): [1, z_t, dz_t, a_t, da_t]."""
    dz = np.r_[np.nan, np.diff(z)]
    cols = [np.ones_like(z), z, dz]
    if a is not None:
        da = np.vstack([np.full((1, a.shape[1]), np.nan), np.diff(a, axis=0)])
        cols += [a[:, j] for j in range(a.shape[1])] + [da[:, j] for j in range(a.shape[1])]
    return np.column_stack(cols)


@dataclass
class GLMModel(Model):
    name: str = "glm"
    pooled = False
    affect: bool = False
    affect_features: tuple[str, ...] | None = None
    seed: int = 0
    max_history: int = 104
    min_rows: int = 10
    n_sims: int = 1000

    def __post_init__(self) -> None:
        self.uses_affect = self.affect
        if self.affect:
            self.name = "glm_affect"

    def fit(self, panel: Panel) -> "GLMModel":
        self.failures, self._data = {}, {}
        if self.affect and not panel.affect:
            raise SeriesFailure(f"{self.name}: no affect features in the panel")
        for loc in panel.locations:
            y = panel.y[loc].to_numpy(dtype=float)[-self.max_history:]
            try:
                check_series(y, self.min_rows + 3, self.name)
            except SeriesFailure as exc:
                self.failures[loc] = str(exc)
                continue
            a = panel.affect_matrix(loc, self.affect_features) if self.affect else None
            if a is not None:
                a = a[-self.max_history:]
            self._data[loc] = (y, design(log1p_series(y), a))
        return self

    def _fit_step(self, y: np.ndarray, X: np.ndarray, k: int):
        import statsmodels.api as sm

        target = np.r_[y[k:], np.full(k, np.nan)]
        rows = np.isfinite(target) & np.all(np.isfinite(X), axis=1)
        if rows.sum() < max(self.min_rows, X.shape[1] + 3):
            raise SeriesFailure(f"{self.name}: {int(rows.sum())} usable training rows for step {k}")
        Xr, yr = X[rows], np.maximum(target[rows], 0.0)
        if np.linalg.matrix_rank(Xr) < Xr.shape[1]:
            raise SeriesFailure(f"{self.name}: design matrix is singular for step {k} (degenerate series)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.GLM(yr, Xr, family=sm.families.Poisson()).fit(scale="X2")
        mu = res.fittedvalues
        if not np.all(np.isfinite(res.params)):
            raise SeriesFailure(f"{self.name}: GLM did not converge for step {k}")
        n, p = Xr.shape
        alpha = float(np.sum(((yr - mu) ** 2 - mu) / np.maximum(mu, 1e-9) ** 2) / max(n - p, 1))
        return res, max(alpha, 1e-3), float(yr.max())

    def predict(self, steps: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
        lv = np.asarray(levels)
        out = {}
        for loc, (y, X) in self._data.items():
            x_now = X[-1]
            if not np.all(np.isfinite(x_now)):
                self.failures[loc] = f"{self.name}: the last period lacks a lag or affect value"
                continue
            integer = bool(np.allclose(y[np.isfinite(y)], np.round(y[np.isfinite(y)])))
            rng = np.random.default_rng(self.seed)
            rows = []
            try:
                for k in steps:
                    res, alpha, ymax = self._fit_step(y, X, int(k))
                    eta = float(x_now @ res.params)
                    se = float(np.sqrt(max(x_now @ res.cov_params() @ x_now, 0.0)))
                    cap = np.log(10 * ymax + 10)
                    eta_s = np.minimum(rng.normal(eta, se, self.n_sims), cap)
                    mu_s = np.exp(eta_s)
                    lam = rng.gamma(1.0 / alpha, alpha * mu_s)
                    sims = rng.poisson(lam) if integer else lam
                    rows.append(np.quantile(sims, lv))
            except SeriesFailure as exc:
                self.failures[loc] = str(exc)
                continue
            out[loc] = np.vstack(rows)
        return out
