"""Rolling-origin backtests on target data (FluSight ``date, location, value`` format) without the
warehouse or Kafka. For each reference date only data dated on or before it are used; with an
``as_of`` column the latest vintage with ``as_of`` <= reference date is used (what was known then);
``latency`` hides the last N periods before the reference date (reporting delay).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from analytics.forecast import DEFAULT_MODELS, forecast_panel, period_days
from analytics import revisions
from analytics.models import COMPONENTS, Panel
from affectwatch.progress import progress

log = get_logger(__name__)


def vintage(target: pd.DataFrame, reference_date) -> pd.DataFrame:
    """Rows known on ``reference_date``: with ``as_of``, per (location, date) the latest vintage with
    as_of <= reference date; data dated after the reference date are always dropped."""
    ref = pd.Timestamp(reference_date)
    df = target[target["date"] <= ref]
    if "as_of" in df.columns:
        df = df[df["as_of"] <= ref].sort_values("as_of").drop_duplicates(["location", "date"], keep="last")
    return df


def wide(long: pd.DataFrame, value: str = "value", freq: str = "W", end=None, columns=None) -> pd.DataFrame:
    """Long (date, location, value) -> regular wide frame (dates x locations), NaN where missing."""
    w = long.pivot_table(index="date", columns="location", values=value, aggfunc="last")
    if w.empty:
        return w
    stop = pd.Timestamp(end) if end is not None else w.index.max()
    idx = pd.date_range(w.index.min(), stop, freq=f"{period_days(freq)}D")
    w = w.reindex(index=idx, columns=columns if columns is not None else w.columns)
    w.columns = [str(c) for c in w.columns]
    return w


def affect_wide(affect: pd.DataFrame | None, index, columns, features: Sequence[str] | None = None) -> dict[str, pd.DataFrame] | None:
    if affect is None or affect.empty:
        return None
    feats = features or [c for c in affect.columns if c not in ("location", "date", "n_devices", "n_observations", "suppression")
                         and pd.api.types.is_numeric_dtype(affect[c])]
    out = {}
    for f in feats:
        w = affect.pivot_table(index="date", columns="location", values=f, aggfunc="last")
        w.columns = [str(c) for c in w.columns]
        out[f] = w.reindex(index=index, columns=columns)
    return out


def build_panel(target: pd.DataFrame, reference_date, *, latency: int = 0, freq: str = "W",
                affect: pd.DataFrame | None = None, affect_features=None, correct_revisions: bool = True) -> Panel:
    """The panel a forecaster would have had on ``reference_date``. Affect features are taken up to
    the reference date itself (devices report in near real time; no reporting latency). With
    ``as_of`` vintages the newest weeks are corrected for the revisions learned from earlier
    vintages (:mod:`analytics.revisions`)."""
    ref = pd.Timestamp(reference_date)
    cutoff = ref - pd.Timedelta(days=period_days(freq) * latency)
    full = vintage(target, ref)
    known = full[full["date"] <= cutoff]
    y = wide(known, freq=freq)  # ends at the newest observation: horizons count from the reference date
    if correct_revisions and "as_of" in target.columns:
        factors = revisions.learn(target, ref)
        if factors:
            log.info("newest weeks corrected for reporting revisions", reference_date=str(ref.date()),
                     factors={k: round(v, 3) for k, v in factors.items()})
        y = revisions.correct(y, full, factors)  # lags count from the vintage's newest week
    aff = None
    if affect is not None and not y.empty:
        a = affect[affect["date"] <= ref]
        aff = affect_wide(a, y.index, y.columns, affect_features)
    return Panel(y, aff, freq)


def _one(target, ref, models, horizons, latency, freq, affect, affect_features, target_name, seed, components):
    panel = build_panel(target, ref, latency=latency, freq=freq, affect=affect, affect_features=affect_features)
    if panel.y.empty:
        log.warning("no data before reference date; skipped", reference_date=str(pd.Timestamp(ref).date()))
        return pd.DataFrame(), []
    fc = forecast_panel(panel, ref, models=models, horizons=horizons, target=target_name, seed=seed,
                        components=components)
    return fc, fc.attrs.get("fallbacks", [])


def backtest(
    target: pd.DataFrame,
    reference_dates: Sequence,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    horizons: Sequence[int] | None = None,
    latency: int = 0,
    freq: str = "W",
    affect: pd.DataFrame | None = None,
    affect_features: Sequence[str] | None = None,
    target_name: str = "wk inc flu_admissions",
    n_jobs: int = 2,
    seed: int = 0,
    components: Sequence[str] = COMPONENTS,
) -> pd.DataFrame:
    """Rolling-origin forecasts for every reference date, in hubverse format (+ ``model``).
    Reference dates run in parallel over ``n_jobs`` processes."""
    refs = [pd.Timestamp(r) for r in reference_dates]
    if freq == "W":
        bad = [r.date() for r in refs if r.dayofweek != 5]
        if bad:
            raise ValueError(f"reference dates must be Saturdays (MMWR week ends); not a Saturday: {bad[0]}")
    args = (models, horizons, latency, freq, affect, affect_features, target_name, seed, tuple(components))
    if n_jobs > 1 and len(refs) > 1:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_one)(target, r, *args) for r in refs)
    else:
        done = (_one(target, r, *args) for r in refs)
    results = list(progress(done, total=len(refs), desc="backtest", unit="ref date"))
    frames = [f for f, _ in results if len(f)]
    fallbacks = [dict(fb, reference_date=str(r.date())) for r, (_, fbs) in zip(refs, results) for fb in fbs]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["fallbacks"] = fallbacks
    log.info("backtest done", reference_dates=len(refs), rows=len(out), fallbacks=len(fallbacks))
    return out


def saturdays(start, end) -> list[pd.Timestamp]:
    s = pd.Timestamp(start)
    s = s + pd.Timedelta(days=(5 - s.dayofweek) % 7)
    return list(pd.date_range(s, pd.Timestamp(end), freq="7D"))
