"""Exponential smoothing (statsmodels ETSModel) on log1p counts, per series: additive errors,
damped additive trend; predictive quantiles from simulated future paths, back-transformed.
Symptom-only: ETS takes no covariates (the fused variants are glm_affect and qr_affect)."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.models.base import Model, Panel, SeriesFailure, check_series, log1p_series
from analytics.quantiles import LEVELS


@dataclass
class ETSModel(Model):
    name: str = "ets"
    pooled = False
    affect: bool = False
    affect_features: tuple[str, ...] | None = None
    seed: int = 0
    max_history: int = 104
    min_obs: int = 12
    n_sims: int = 1000
    trend: str | None = None  # "add" = damped additive trend; None = level only (better on flu waves)

    def __post_init__(self) -> None:
        if self.affect:
            raise ValueError("ets has no affect-fused variant (ETS takes no covariates); use glm_affect or qr_affect")

    def fit(self, panel: Panel) -> "ETSModel":
        self.failures, self._z = {}, {}
        for loc in panel.locations:
            y = panel.y[loc].to_numpy(dtype=float)[-self.max_history:]
            try:
                check_series(y, self.min_obs, self.name)
            except SeriesFailure as exc:
                self.failures[loc] = str(exc)
                continue
            ok = np.flatnonzero(np.isfinite(y))
            y = y[ok[0]:]
            if np.isnan(y).any():  # ETS needs a gap-free series: carry the last value over gaps
                y = _ffill(y)
            self._z[loc] = log1p_series(y)
        return self

    def predict(self, steps: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel as SMETS

        lv = np.asarray(levels)
        out = {}
        horizon = int(max(steps))
        for loc, z in self._z.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = SMETS(z, error="add", trend=self.trend, damped_trend=self.trend is not None).fit(disp=False, maxiter=200)
                    sims = res.simulate(horizon, repetitions=self.n_sims, anchor="end",
                                        rng=np.random.default_rng(self.seed))
            except Exception as exc:  # noqa: BLE001 - any fit failure falls back for this series only
                self.failures[loc] = f"{self.name}: fit failed ({type(exc).__name__}: {exc})"
                continue
            sims = np.asarray(sims).reshape(horizon, -1)
            cap = np.log(10 * np.expm1(z.max()) + 10)
            rows = [np.expm1(np.minimum(np.quantile(sims[int(k) - 1], lv), cap)) for k in steps]
            out[loc] = np.vstack(rows)
        return out


def _ffill(y: np.ndarray) -> np.ndarray:
    out = y.copy()
    for i in range(1, len(out)):
        if not np.isfinite(out[i]):
            out[i] = out[i - 1]
    return out
