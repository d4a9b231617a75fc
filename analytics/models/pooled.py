"""Pooled multi-source models (after the UMass Flusion model; method from Ray et al. 2024,
"Flusion: integrating multiple data sources for accurate influenza predictions" — no code copied).

One model per step ahead, trained on every location of the panel AND on the 13 seasons of ILINet
in ``data/ili`` (only the weeks published before the reference date: ILINet appears about a week
after the week ends), all on the common scale of :mod:`analytics.features` (fourth root, scaled).
The response is the change ``x_{t+k} - x_t``; forecasts are ``(x_T + change)**4`` back on the
count scale.

* ``gbq``: gradient-boosted quantile regression (scikit-learn ``HistGradientBoostingRegressor``,
  ``loss="quantile"``) for a few levels (``FIT_LEVELS``), interpolated to the 23 FluSight levels in
  normal-quantile space and sorted (non-crossing). Unless the target is ILI itself, it trains on
  ILINet above its non-influenza floor (:func:`analytics.features.above_floor`), closer to a
  laboratory-confirmed signal.
* ``qar``: a linear quantile autoregression on the same scale and a subset of the features
  (``LINEAR_FEATURES``), solved by :func:`analytics.models.quantreg.quantreg_irls`.

A target of influenza admissions is completed with the vendored NHSN weeks it lacks before each
location's first week (:mod:`analytics.nhsn`), so a file that starts in the fall still has earlier
seasons; affect is absent on those weeks.

``*_affect`` variants add the panel's affect features (value and weekly change) — absent (NaN for
``gbq``, 0 = the location mean for ``qar``) on ILINet rows. Weekly data only: on daily panels
the whole model fails with that reason and every series falls back to the baseline.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics import features as F
from analytics.ilinet import ili_states, populations, published_by
from analytics.models.base import Model, Panel, SeriesFailure
from analytics.models.quantreg import quantreg_irls
from analytics.nhsn import history_before
from analytics.quantiles import LEVELS, interpolate_levels

FIT_LEVELS = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
FLOOR_KINDS = ("gbq",)  # chosen on the admissions folds (README, issue #10): gbq gains, qar loses
# Training rows per step: target rows first (at most half), then a seeded sample of the extra rows.
# gbq: 64,000 keeps every row of the backtests (~35,000 per step) and caps 3,000-region panels; with
# 16,000 it scored worse in leave-one-season-out validation (mean 0.822 vs 0.815; README, issue #10).
# qar samples QAR_ROWS of them for its linear fit.
MAX_ROWS = {"gbq": 64_000, "qar": 16_000}
QAR_ROWS = 8_000  # a linear model with ~10 coefficients needs far fewer rows than the trees


def _ilinet_series(reference_date) -> list[F.Series]:
    ili = published_by(ili_states(), reference_date)
    out = []
    for loc, g in ili.groupby("location", sort=True):
        g = g.sort_values("date")
        idx = pd.date_range(g["date"].iloc[0], g["date"].iloc[-1], freq="7D")
        y = g.set_index("date")["value"].reindex(idx).to_numpy(dtype=float)
        out.append(F.Series("ilinet", str(loc), idx, y))
    return out


def _first_weeks(target: list[F.Series]) -> dict[str, pd.Timestamp]:
    """Each target location's first observed week (locations with no value are left out)."""
    return {s.location: s.dates[np.isfinite(s.y)][0] for s in target if np.isfinite(s.y).any()}


def _before_target(extra: list[F.Series], target: list[F.Series]) -> list[F.Series]:
    """When the target is ILI itself, the vendored ILINet of a target location repeats the target's
    own weeks: keep only its weeks before the location's first observed target week (the earlier
    seasons the target lacks), so no week is trained on twice."""
    first = _first_weeks(target)
    out = []
    for s in extra:
        if s.location in first:
            keep = np.asarray(s.dates < first[s.location])
            if not keep.any():
                continue
            s = F.Series(s.source, s.location, s.dates[keep], s.y[keep], None if s.affect is None else s.affect[keep])
        out.append(s)
    return out


def _with_history(target: list[F.Series], reference_date) -> list[F.Series]:
    """Admissions targets: each location's series with the vendored NHSN weeks published by the
    reference date that precede its first observed week (:mod:`analytics.nhsn`) — a file that starts
    in the fall then still carries earlier seasons' shape and scale; a complete file is unchanged."""
    first = _first_weeks(target)
    hist = history_before(first, reference_date)
    return [F.prepend(s, *hist[s.location]) if s.location in hist else s for s in target]


@dataclass
class PooledModel(Model):
    name: str = "gbq"
    pooled = True
    weekly_only = True
    kind: str = "gbq"
    affect: bool = False
    affect_features: tuple[str, ...] | None = None
    use_ilinet: bool = True
    max_rows: int | None = None  # training rows per step (MAX_ROWS of the kind unless given)
    max_iter: int = 80  # boosting iterations per quantile level (gbq)
    seed: int = 0

    def __post_init__(self) -> None:
        self.uses_affect = self.affect
        if self.max_rows is None:
            self.max_rows = MAX_ROWS[self.kind]
        self.name = f"{self.kind}_affect" if self.affect else self.kind

    def fit(self, panel: Panel) -> "PooledModel":
        self.failures = {}
        if panel.freq != "W":
            raise SeriesFailure(f"{self.name}: weekly data only (season features); got freq {panel.freq!r}")
        if self.affect and not panel.affect:
            raise SeriesFailure(f"{self.name}: no affect features in the panel")
        ref = panel.reference_date if panel.reference_date is not None else panel.y.index[-1]
        idx = pd.DatetimeIndex(panel.y.index)
        target = []
        for loc in panel.locations:
            a = panel.affect_matrix(loc, self.affect_features) if self.affect else None
            target.append(F.Series("target", loc, idx, panel.y[loc].to_numpy(dtype=float), a))
        extra = panel.extra if panel.extra is not None else (_ilinet_series(ref) if self.use_ilinet else [])
        if panel.extra is None and panel.target_is_ili:
            extra = _before_target(extra, target)
        if panel.extra is None and panel.target_is_admissions and not panel.target_is_ili:
            target = _with_history(target, ref)
        for s in target:  # after the vendored history: it gives a short file's series their features
            n = int(np.isfinite(s.y).sum())
            if n < F.MIN_OBS:
                self.failures[s.location] = f"{self.name}: only {n} observations (needs {F.MIN_OBS})"
            elif not np.isfinite(s.y[-1]):
                self.failures[s.location] = f"{self.name}: last period is missing"
        floor = self.kind in FLOOR_KINDS and not panel.target_is_ili  # ILINet above its floor (features.above_floor)
        everything = target + [F.above_floor(s) if floor and s.source == "ilinet" else s for s in extra]
        sc = F.scales(everything, populations(), ("target", "nhsn") if panel.per_capita else ("nhsn",))
        n_aff = 0 if not self.affect else next(s.affect.shape[1] for s in target if s.affect is not None)
        self._columns = list(F.FEATURES if self.kind == "gbq" else F.LINEAR_FEATURES)
        # typical peak weeks only for a feature set that uses them (gbq's does not; ~2 s on 3,000 series)
        peaks, overall = F.typical_peaks(everything) if "from_peak_c" in self._columns else ({}, np.nan)
        self._columns += [f"affect{j}{d}" for j in range(n_aff) for d in ("", "_d1")]
        self._rows, self._now = [], {}
        slope1 = self._columns.index("slope1")  # a row is usable once its 1-week slope is known
        for s in everything:
            scale = sc[(s.source, s.location)]
            X, x = F.feature_matrix(s, scale, peaks.get(s.location, overall), s.source == "target", self._columns)
            usable = np.isfinite(X[:, slope1])
            self._rows.append((s.source, X, usable, x))
            if s.source == "target" and s.location not in self.failures:
                self._now[s.location] = (X[-1], x[-1], scale)
        return self

    def _training(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        tgt, ext = [], []
        for source, X, usable, x in self._rows:
            d = F.targets(x, k)
            ok = np.isfinite(d) & usable
            if ok.any():
                (tgt if source == "target" else ext).append((X[ok], d[ok]))
        if not tgt and not ext:
            return np.empty((0, len(self._columns))), np.empty(0)
        rng = np.random.default_rng(self.seed + k)
        Xt = np.vstack([p[0] for p in tgt]) if tgt else np.empty((0, len(self._columns)))
        dt = np.concatenate([p[1] for p in tgt]) if tgt else np.empty(0)
        if len(dt) > self.max_rows // 2:
            keep = np.sort(rng.choice(len(dt), self.max_rows // 2, replace=False))
            Xt, dt = Xt[keep], dt[keep]
        if ext:
            Xe, de = np.vstack([p[0] for p in ext]), np.concatenate([p[1] for p in ext])
            room = self.max_rows - len(dt)
            if len(de) > room:
                keep = np.sort(rng.choice(len(de), room, replace=False))
                Xe, de = Xe[keep], de[keep]
            Xt, dt = np.vstack([Xt, Xe]), np.concatenate([dt, de])
        return Xt, dt

    def _fit_predict(self, X: np.ndarray, d: np.ndarray, Xnow: np.ndarray) -> np.ndarray:
        """Quantiles of the change at ``FIT_LEVELS`` for each row of ``Xnow``: (rows, len(FIT_LEVELS))."""
        taus = np.asarray(FIT_LEVELS)
        if self.kind == "qar":
            keep = slice(None) if len(d) <= QAR_ROWS else np.random.default_rng(self.seed).choice(len(d), QAR_ROWS, replace=False)
            X1 = np.column_stack([np.ones(len(X)), np.nan_to_num(X)])[keep]
            Xnow1 = np.column_stack([np.ones(len(Xnow)), np.nan_to_num(Xnow)])
            varies = np.r_[True, np.ptp(X1[:, 1:], axis=0) > 0]  # a constant column (an absent covariate) adds nothing
            if not varies.all():  # only then a copy: the 40-step IRLS is not bit-stable under a re-laid-out copy
                X1, Xnow1 = X1[:, varies], Xnow1[:, varies]
            B = quantreg_irls(X1, d[keep], taus, max_iter=40, tol=1e-5)
            return Xnow1 @ B.T
        from sklearn.ensemble import HistGradientBoostingRegressor

        out = np.empty((len(Xnow), len(taus)))
        for j, tau in enumerate(taus):
            reg = HistGradientBoostingRegressor(loss="quantile", quantile=float(tau), max_iter=self.max_iter, learning_rate=0.08,
                                                max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
                                                early_stopping=False, random_state=self.seed)
            out[:, j] = reg.fit(X, d).predict(Xnow)
        return out

    def predict(self, steps: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
        # One thread for BLAS / OpenMP: parallelism comes from the worker processes (by step or by
        # reference date); threads that must meet at every boosting iteration crawl on a busy machine.
        # threadpoolctl limits only the libraries already loaded: import the trees' OpenMP runtime
        # first, or a process's first fit runs with every core's threads (4-40x slower under load).
        if self.kind == "gbq":
            import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime of HistGradientBoostingRegressor)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return self._predict(steps, levels)

    def _predict(self, steps: Sequence[int], levels: Sequence[float]) -> dict[str, np.ndarray]:
        locs = list(self._now)
        if not locs:
            return {}
        Xnow = np.vstack([self._now[l][0] for l in locs])
        xnow = np.array([self._now[l][1] for l in locs])
        scale = np.array([self._now[l][2] for l in locs])
        out = {l: np.empty((len(steps), len(levels))) for l in locs}
        for i, k in enumerate(steps):
            X, d = self._training(int(k))
            if len(d) < max(50, 5 * X.shape[1]):
                for l in locs:
                    self.failures[l] = f"{self.name}: {len(d)} pooled training rows for step {k}"
                return {}
            q = interpolate_levels(self._fit_predict(X, d, Xnow), FIT_LEVELS, levels)
            vals = (np.maximum(xnow[:, None] + q, 0.0) * scale[:, None]) ** 4
            for j, l in enumerate(locs):
                out[l][i] = vals[j]
        return out
