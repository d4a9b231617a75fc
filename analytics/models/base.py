"""The model interface: fit on a panel of region series, predict quantiles per series.

A panel is wide: one row per period (regular weekly or daily index), one column per location,
NaN where a value is missing. ``steps`` count periods after the panel's last row, so a
forecast made with reporting latency simply asks for larger steps.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.quantiles import LEVELS


AFFECT_Z_LIMIT = 3.0  # affect features are winsorised at this many standard deviations


class SeriesFailure(Exception):
    """A model cannot handle one series (too short, constant, fit failed); the orchestrator
    falls back to the baseline for that series and logs this reason."""


@dataclass
class Panel:
    """History known at forecast time. ``affect`` maps feature name -> frame aligned with ``y``."""

    y: pd.DataFrame
    affect: dict[str, pd.DataFrame] | None = None
    freq: str = "W"
    reference_date: pd.Timestamp | None = None  # set by forecast_panel; pooled models use it to cut extra sources
    # Pooled models' extra training series (analytics.features.Series); None = the vendored ILINet
    # published by the reference date. Leave-one-season-out validation passes its own.
    extra: list | None = None
    per_capita: bool = True  # pooled models may put the panel on one per-capita scale (populations known)
    # the target is ILI itself: pooled models keep the extra ILINet raw (no floor), minus the target's own weeks
    target_is_ili: bool = False
    # the target is influenza admissions (NHSN): pooled models add the vendored admissions weeks the
    # panel lacks before each location's first week (analytics.nhsn)
    target_is_admissions: bool = False

    def __post_init__(self) -> None:
        if not self.y.index.is_monotonic_increasing:
            self.y = self.y.sort_index()
        if self.affect:
            self.affect = {k: v.reindex(index=self.y.index, columns=self.y.columns) for k, v in self.affect.items()}

    @property
    def locations(self) -> list[str]:
        return [str(c) for c in self.y.columns]

    def affect_matrix(self, location: str, features: Sequence[str] | None) -> np.ndarray | None:
        """Affect features of one location, standardised on its own history (mean 0, sd 1) and
        winsorised at +-3 sd (a value far outside the history, e.g. a survey signal in a new wave,
        must not make a linear model extrapolate without bound), missing/suppressed cells set to 0
        (the location mean). Shape (T, F) or None."""
        if not self.affect:
            return None
        names = [f for f in (features or sorted(self.affect)) if f in self.affect]
        if not names:
            return None
        cols = []
        for f in names:
            a = self.affect[f][location].to_numpy(dtype=float)
            ok = np.isfinite(a)
            if ok.sum() < 3:
                cols.append(np.zeros_like(a))
                continue
            mu, sd = a[ok].mean(), a[ok].std()
            z = np.clip((a - mu) / (sd if sd > 1e-12 else 1.0), -AFFECT_Z_LIMIT, AFFECT_Z_LIMIT)
            cols.append(np.where(ok, z, 0.0))
        return np.column_stack(cols)


@dataclass
class Model(ABC):
    """Fit on history, predict quantiles. ``failures`` lists series the model could not handle."""

    name: str = "model"
    uses_affect: bool = False
    failures: dict[str, str] = field(default_factory=dict)

    @abstractmethod
    def fit(self, panel: Panel) -> "Model": ...

    @abstractmethod
    def predict(self, steps: Sequence[int], levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
        """Return location -> array (len(steps), len(levels)) of raw quantile values."""


def log1p_series(y: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(y, 0.0))


def last_valid(y: np.ndarray) -> int:
    """Index of the last finite value, -1 if none."""
    ok = np.flatnonzero(np.isfinite(y))
    return int(ok[-1]) if ok.size else -1


def check_series(y: np.ndarray, min_obs: int, name: str) -> None:
    """Raise SeriesFailure if a series is too short or constant for ``name``."""
    ok = np.isfinite(y)
    n = int(ok.sum())
    if n < min_obs:
        raise SeriesFailure(f"{name}: only {n} observations (needs {min_obs})")
    if not np.isfinite(y[-1]):
        raise SeriesFailure(f"{name}: last period is missing")
    tail = y[ok][-min_obs:]
    if np.nanmax(tail) == np.nanmin(tail):
        raise SeriesFailure(f"{name}: constant series (all {tail[0]:g} over the last {min_obs} periods)")
