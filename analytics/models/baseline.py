"""FluSight-style baseline: median = last observed value; spread from the past period-to-period
differences and their negatives (a symmetric distribution), summed over the steps ahead;
truncated at zero."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.models.base import Model, Panel, last_valid
from analytics.quantiles import LEVELS


@dataclass
class Baseline(Model):
    name: str = "baseline"
    pooled = False
    seed: int = 0
    n_sims: int = 4000

    def fit(self, panel: Panel) -> "Baseline":
        self.failures = {}
        self._series = {}
        for loc in panel.locations:
            y = panel.y[loc].to_numpy(dtype=float)
            i = last_valid(y)
            if i < 0:
                self.failures[loc] = "baseline: no observations"
                continue
            d = np.diff(y)
            d = d[np.isfinite(d)]
            self._series[loc] = (y[i], np.concatenate([d, -d]) if d.size else np.zeros(1), len(y) - 1 - i)
        return self

    def predict(self, steps: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
        lv = np.asarray(levels)
        out = {}
        for loc, (last, sym, gap) in self._series.items():
            rng = np.random.default_rng(self.seed)
            sims = np.empty((self.n_sims, len(steps)))
            for j, k in enumerate(steps):
                k_eff = max(int(k) + gap, 1)  # a missing tail widens the spread
                sims[:, j] = rng.choice(sym, size=(self.n_sims, k_eff)).sum(axis=1)
            q = np.quantile(sims, lv, axis=0).T  # (steps, levels): one call for every step
            q = (q - q[:, ::-1]) / 2.0  # exactly symmetric around 0 -> median = last value
            out[loc] = np.maximum(last + q, 0.0)
        return out
