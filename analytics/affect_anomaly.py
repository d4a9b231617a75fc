"""Affect anomaly detector: is a region's affect signal in the current period unusual?

Input: rows shaped like the ``affect_windows`` table (sql/migrations/001_core.sql). Output: one
row per region with a verdict for the current period (default: the last 24 hours of data), or
an abstention with a stated reason.

Method (robust, weighted, version-aware):

1. Windows become the **hour cells of the one cell definition** (``analyst.affect_cells``,
   SQL ``sql/views/intermediate/int_affect_cells.sql``; one cell per region, clock hour and model
   version): device-weighted mean signal, weight ``sum(n_observations x confidence_mean x
   quality)`` (``n_observations`` = scored observations; quality = mean of the reported capture
   indicators, snr_db mapped 0 dB -> 0 .. 20 dB -> 1, 1 when none is reported) and a suppression
   code computed with the detector's minimums (``settings.privacy``, or tighter ones from an alert
   rule). Only cells with code 0 are used (privacy rule 3 of DESIGN.md applies to the detector's
   inputs too); a current period without a usable cell abstains with the reason of its codes.
3. **Version-aware baseline.** Affect scores depend on the on-device model, so the baseline uses
   only windows of the model version that carries most weight in the current period (and the
   current period is restricted to it as well). After a version change the new version has no
   history yet: the detector abstains with reason ``model_version_change`` until
   ``min_baseline_periods`` periods of the new version exist. A version change therefore can
   never raise an alarm by itself.
4. **Robust baseline per region and hour of week**: the weighted median of the baseline cells
   (``baseline_days`` = 28 days before the current period) with the same hour of week (hour of
   day when fewer than 3 such cells). Residual = cell value - that median.
5. The baseline is cut into periods of the same length as the current period; each period's
   weighted mean residual gives a reference distribution (this keeps the autocorrelation of
   hourly values out of the scale). ``statistic = (r_now - median) / (1.4826 MAD)`` (scale
   floored at ``min_scale``), one-sided normal p-value; red p < 0.01, yellow p < 0.05.

Abstention reasons: ``no_data``; when no current hour cell is usable, the reason of the code
covering most of them (``too_few_observations`` 1, ``too_few_devices`` 2 or 5, ``low_quality`` 4);
then ``model_version_change``, ``insufficient_baseline``. When a region abstains
for a privacy reason its observed/expected values are not reported (NaN).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analyst import affect_cells
from affectwatch.logs import get_logger
from affectwatch.privacy import Suppression
from affectwatch.settings import Settings, get_settings

log = get_logger(__name__)

REQUIRED = ("device_id", "region_id", "window_start", "n_observations", "n_abstained", "confidence_mean",
            "model_version")
SIGNALS = ("distress_share", "valence_mean", "arousal_mean")
OUTPUT_COLUMNS = (
    "region_id", "period_start", "period_end", "signal", "model_version", "observed", "expected", "threshold",
    "statistic", "p_value", "alarm", "level", "reason", "n_devices", "n_observations", "quality", "baseline_periods",
)
_PRIVACY_REASONS = {"no_data", "too_few_devices", "too_few_observations"}
# cell code -> abstention reason, and back (the alert evidence stores the code of its reason)
_CODE_REASONS = {int(Suppression.TOO_FEW_OBSERVATIONS): "too_few_observations",
                 int(Suppression.TOO_FEW_DEVICES): "too_few_devices",
                 int(Suppression.COMPLEMENTARY): "too_few_devices",
                 int(Suppression.LOW_QUALITY): "low_quality"}
REASON_CODES = {"no_data": int(Suppression.NO_DATA), "too_few_observations": int(Suppression.TOO_FEW_OBSERVATIONS),
                "too_few_devices": int(Suppression.TOO_FEW_DEVICES), "low_quality": int(Suppression.LOW_QUALITY)}


def _wmedian(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w)
    if c[-1] <= 0:
        return float(np.median(v))
    return float(v[np.searchsorted(c, 0.5 * c[-1])])


def _validate(windows: pd.DataFrame, signal: str) -> pd.DataFrame:
    missing = [c for c in (*REQUIRED, signal) if c not in windows.columns]
    if missing:
        raise ValueError(
            f"affect windows are missing column(s): {', '.join(missing)}; columns available: {', '.join(map(str, windows.columns))}"
        )
    w = windows.reset_index(drop=True).copy()
    w["window_start"] = pd.to_datetime(w["window_start"], utc=True, errors="coerce")
    problems = []
    bad = w["window_start"].isna().to_numpy()
    if bad.any():
        problems.append(f"window_start unparseable at rows {np.flatnonzero(bad)[:5].tolist()}")
    for col in ("n_observations", "n_abstained", "confidence_mean", signal):
        vals = pd.to_numeric(w[col], errors="coerce")
        bad = vals.isna().to_numpy()
        if bad.any():
            problems.append(f"{col} non-numeric or missing at rows {np.flatnonzero(bad)[:5].tolist()}")
        w[col] = vals
    if problems:
        raise ValueError("bad affect windows: " + "; ".join(problems))
    return w


def _hour_cells(w: pd.DataFrame, signal: str, settings: Settings) -> pd.DataFrame:
    """Hour cells of the one cell definition, indexed by hour, with the columns the detector uses."""
    cells = affect_cells.from_windows(w, "hour", settings)
    out = pd.DataFrame({
        "region_id": cells["region_id"].to_numpy(),
        "model_version": cells["model_version"].to_numpy(),
        "code": cells["suppression"].astype(int).to_numpy(),
        "n_scored": cells["n_scored"].to_numpy(dtype=float),
        "quality": cells["quality"].to_numpy(dtype=float),
        "W": cells["weight"].to_numpy(dtype=float),
        "value": cells[signal].to_numpy(dtype=float),
    }, index=pd.DatetimeIndex(pd.to_datetime(cells["period_start"]).dt.tz_localize("UTC"), name="hour"))
    out["how"] = out.index.dayofweek * 24 + out.index.hour
    out["hod"] = out.index.hour
    return out


def _region(
    rw: pd.DataFrame, rc: pd.DataFrame, cur_start, end, period: pd.Timedelta, p: dict
) -> dict:
    out: dict = {"model_version": None, "observed": np.nan, "expected": np.nan, "threshold": np.nan,
                 "statistic": np.nan, "p_value": np.nan, "alarm": False, "level": None, "reason": None,
                 "n_devices": 0, "n_observations": 0, "quality": np.nan, "baseline_periods": 0}
    cur = rw[(rw["window_start"] >= cur_start) & (rw["window_start"] < end)]
    if cur.empty:
        return {**out, "reason": "no_data"}
    out["n_devices"] = int(cur["device_id"].nunique())
    out["n_observations"] = int(cur["n_observations"].sum())
    cur_cells = rc[(rc.index >= cur_start) & (rc.index < end)]
    shown = cur_cells["quality"].notna() & (cur_cells["n_scored"] > 0)
    if shown.any():
        out["quality"] = float(np.average(cur_cells.loc[shown, "quality"], weights=cur_cells.loc[shown, "n_scored"]))
    usable = rc[rc["code"] == 0]
    cur_u = usable[(usable.index >= cur_start) & (usable.index < end)]
    if cur_u.empty:  # no current cell passes: the code covering most scored observations says why
        by_code = cur_cells.groupby("code")["n_scored"].sum().sort_index()
        return {**out, "reason": _CODE_REASONS.get(int(by_code.idxmax()), "too_few_devices")}
    version = cur_u.groupby("model_version")["W"].sum().idxmax()
    out["model_version"] = version
    cells = usable[usable["model_version"] == version]
    now = cells[(cells.index >= cur_start) & (cells.index < end)]
    base = cells[cells.index < cur_start]
    other_versions = (usable.loc[usable.index < cur_start, "model_version"] != version).any()
    # block k holds the hours in [cur_start - (k+1) period, cur_start - k period)
    block = (np.ceil((cur_start - base.index) / period) - 1).astype(int) if len(base) else np.array([], dtype=int)
    n_periods = int(np.unique(block).size)
    out["baseline_periods"] = n_periods
    if now.empty:
        # the current period has data but not enough comparable (same-version) devices per cell
        return {**out, "reason": "model_version_change" if cur_u["model_version"].nunique() > 1 else "too_few_devices"}
    if n_periods < p["min_baseline_periods"]:
        return {**out, "reason": "model_version_change" if other_versions else "insufficient_baseline"}
    # robust expected value per hour of week (hour of day when the hour of week is thin)
    how_med = {k: (_wmedian(g["value"].to_numpy(), g["W"].to_numpy()), len(g)) for k, g in base.groupby("how")}
    hod_med = {k: _wmedian(g["value"].to_numpy(), g["W"].to_numpy()) for k, g in base.groupby("hod")}
    overall = _wmedian(base["value"].to_numpy(), base["W"].to_numpy())

    def expected(frame: pd.DataFrame) -> np.ndarray:
        return np.array([
            how_med[h][0] if h in how_med and how_med[h][1] >= 3 else hod_med.get(d, overall)
            for h, d in zip(frame["how"], frame["hod"])
        ])

    base_resid = base["value"].to_numpy() - expected(base)
    ref = pd.DataFrame({"b": block, "r": base_resid * base["W"].to_numpy(), "W": base["W"].to_numpy()})
    per = ref.groupby("b").sum()
    period_stats = (per["r"] / per["W"]).to_numpy()
    centre = float(np.median(period_stats))
    scale = max(1.4826 * float(np.median(np.abs(period_stats - centre))), p["min_scale"])
    exp_now = expected(now)
    r_now = float(np.average(now["value"] - exp_now, weights=now["W"]))
    stat = (r_now - centre) / scale
    pval = float(stats.norm.sf(stat))
    exp_level = float(np.average(exp_now, weights=now["W"]))
    level = "red" if pval < p["alpha_red"] else "yellow" if pval < p["alpha"] else None
    return {**out, "observed": float(np.average(now["value"], weights=now["W"])),
            "expected": exp_level + centre,
            "threshold": exp_level + centre + stats.norm.ppf(1 - p["alpha"]) * scale,
            "statistic": stat, "p_value": pval, "alarm": level is not None, "level": level}


def affect_anomalies(
    windows: pd.DataFrame,
    signal: str = "distress_share",
    min_devices: int | None = None,
    min_observations: int | None = None,
    min_quality: float | None = None,
    period_hours: int = 24,
    baseline_days: int = 28,
    min_baseline_periods: int = 7,
    at=None,
    alpha: float = 0.05,
    alpha_red: float = 0.01,
    min_scale: float = 0.01,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """One verdict per region for the period ending at ``at`` (default: end of the last data hour).

    Minimums are ``settings.privacy`` (k_min, min_devices, min_quality); the arguments can only
    tighten them (a lower value is ignored). See the module docstring for the method and reasons.
    """
    s = settings or get_settings()
    tight = s.privacy.model_copy(update={
        "min_devices": max(s.privacy.min_devices, int(min_devices or 0)),
        "k_min": max(s.privacy.k_min, int(min_observations or 0)),
        "min_quality": max(s.privacy.min_quality, float(min_quality or 0.0)),
    })
    s = s.model_copy(update={"privacy": tight})
    p = {"min_baseline_periods": int(min_baseline_periods), "alpha": alpha, "alpha_red": alpha_red,
         "min_scale": float(min_scale)}
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}; choose one of: {', '.join(SIGNALS)}")
    if period_hours <= 0 or baseline_days <= 0:
        raise ValueError(f"period_hours and baseline_days must be positive; got {period_hours}, {baseline_days}")
    if windows.empty:
        return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
    w = _validate(windows, signal)
    w["hour"] = w["window_start"].dt.floor("h")
    period = pd.Timedelta(hours=period_hours)
    end = pd.Timestamp(at) if at is not None else w["hour"].max() + pd.Timedelta(hours=1)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    cur_start = end - period
    w = w[(w["window_start"] >= cur_start - pd.Timedelta(days=baseline_days)) & (w["window_start"] < end)]
    cells = _hour_cells(w, signal, s)
    by_region = dict(tuple(cells.groupby("region_id", sort=True)))
    rows = []
    for region, rw in w.groupby("region_id", sort=True):
        rec = _region(rw, by_region.get(region, cells.iloc[:0]), cur_start, end, period, p)
        if rec["reason"] in _PRIVACY_REASONS:
            rec.update(observed=np.nan, expected=np.nan, threshold=np.nan)
        rows.append({"region_id": region, "period_start": cur_start, "period_end": end, "signal": signal, **rec})
    out = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
    log.info("affect anomalies evaluated", regions=len(out), alarms=int(out["alarm"].sum()),
             abstained=int(out["reason"].notna().sum()), signal=signal)
    return out
