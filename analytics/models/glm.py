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
    engine: str = "auto"  # "statsmodels" (one GLM per series), "batched" (vectorised IRLS), auto: batched above 200 series

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

    def _fit_batched(self, locs: list[str], k: int) -> dict[str, tuple | str]:
        """The same quasi-Poisson fits for many series at once: IRLS vectorised over series
        (used for large panels; a test checks it against statsmodels)."""
        X = np.stack([self._data[l][1] for l in locs])  # (S, T, p)
        Y = np.stack([self._data[l][0] for l in locs])  # (S, T)
        target = np.concatenate([Y[:, k:], np.full((len(locs), k), np.nan)], axis=1)
        mask = np.isfinite(target) & np.all(np.isfinite(X), axis=2)
        n = mask.sum(axis=1)
        p = X.shape[2]
        Xm = np.where(mask[:, :, None], X, 0.0)
        ym = np.where(mask, np.maximum(target, 0.0), 0.0)
        w0 = mask.astype(float)
        rank = np.linalg.matrix_rank(Xm)
        b = np.zeros((len(locs), p))
        b[:, 0] = np.log(ym.sum(axis=1) / np.maximum(n, 1) + 0.5)
        eye = 1e-10 * np.eye(p)
        for _ in range(100):
            eta = np.clip(np.einsum("stp,sp->st", Xm, b), -30, 30)
            mu = np.exp(eta)
            z = eta + (ym - mu) / mu
            w = mu * w0
            A = np.einsum("stp,st,stq->spq", Xm, w, Xm) + eye
            rhs = np.einsum("stp,st,st->sp", Xm, w, z)
            b_new = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
            done = np.nanmax(np.abs(b_new - b)) < 1e-9
            b = b_new
            if done:
                break
        mu = np.exp(np.clip(np.einsum("stp,sp->st", Xm, b), -30, 30))
        A = np.einsum("stp,st,stq->spq", Xm, mu * w0, Xm) + eye
        dof = np.maximum(n - p, 1)
        phi = (w0 * (ym - mu) ** 2 / mu).sum(axis=1) / dof
        alpha = (w0 * ((ym - mu) ** 2 - mu) / mu**2).sum(axis=1) / dof
        out: dict[str, tuple | str] = {}
        for i, loc in enumerate(locs):
            if n[i] < max(self.min_rows, p + 3):
                out[loc] = f"{self.name}: {int(n[i])} usable training rows for step {k}"
            elif rank[i] < p:
                out[loc] = f"{self.name}: design matrix is singular for step {k} (degenerate series)"
            elif not np.all(np.isfinite(b[i])):
                out[loc] = f"{self.name}: GLM did not converge for step {k}"
            else:
                cov = phi[i] * np.linalg.inv(A[i])
                out[loc] = (b[i], cov, max(float(alpha[i]), 1e-3), float(ym[i].max()))
        return out

    def _fit_one(self, loc: str, k: int) -> tuple | str:
        y, X = self._data[loc]
        try:
            res, alpha, ymax = self._fit_step(y, X, k)
        except SeriesFailure as exc:
            return str(exc)
        return res.params, res.cov_params(), alpha, ymax

    def predict(self, steps: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
        lv = np.asarray(levels)
        locs = []
        for loc, (y, X) in self._data.items():
            if np.all(np.isfinite(X[-1])):
                locs.append(loc)
            else:
                self.failures[loc] = f"{self.name}: the last period lacks a lag or affect value"
        engine = self.engine if self.engine != "auto" else ("batched" if len(locs) > 200 else "statsmodels")
        fits: dict[int, dict] = {}
        for k in steps:
            if engine == "batched" and locs:
                fits[int(k)] = self._fit_batched(locs, int(k))
            else:
                fits[int(k)] = {loc: self._fit_one(loc, int(k)) for loc in locs}
        out = {}
        for loc in locs:
            y, X = self._data[loc]
            x_now = X[-1]
            finite = y[np.isfinite(y)]
            integer = bool(np.all(finite == np.round(finite)))
            rng = np.random.default_rng(self.seed)
            rows = []
            for k in steps:
                fit = fits[int(k)][loc]
                if isinstance(fit, str):
                    self.failures[loc] = fit
                    break
                params, cov, alpha, ymax = fit
                eta = float(x_now @ params)
                se = float(np.sqrt(max(x_now @ cov @ x_now, 0.0)))
                cap = np.log(10 * ymax + 10)
                mu_s = np.exp(np.minimum(rng.normal(eta, se, self.n_sims), cap))
                lam = rng.gamma(1.0 / alpha, alpha * mu_s)
                sims = rng.poisson(lam) if integer else lam
                rows.append(np.quantile(sims, lv))
            else:
                out[loc] = np.vstack(rows)
        return out
