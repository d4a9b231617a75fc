"""Data frames behind the overview map: one row per region with value, interval and suppression code."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from affectwatch.privacy import Suppression
from affectwatch.settings import REPO_ROOT
from dashboard import data, maps

POPULATION_FILE = REPO_ROOT / "data" / "flusight" / "locations.csv"
MODEL_PREFERENCE = ("ensemble", "glm_nb_affect", "glm_nb", "baseline")
COLUMNS = ["region_id", "value", "lo", "hi", "suppression", "n_devices", "n_obs", "detail"]


@dataclass(frozen=True)
class Signal:
    title: str
    kind: str  # 'alert' | 'continuous'
    fmt: str
    help: str


SIGNALS = {
    "alert": Signal("Alert level", "alert", "{}", "Highest level of any alert active during the week (Okabe-Ito colours)."),
    "distress": Signal("Distress share (affect)", "continuous", "{:.3f}",
                       "Share of scored observations with negative valence and high arousal; mean over devices, "
                       "interval = ±1.96 device-level standard errors. Simulated where marked."),
    "arousal": Signal("Arousal (affect)", "continuous", "{:+.3f}",
                      "Mean arousal in [-1, 1] over devices; interval = ±1.96 device-level standard errors."),
    "growth": Signal("Forecast growth", "continuous", "{:+.0%}",
                     "Forecast median at the furthest horizon relative to the nowcast (horizon 0) of the latest run "
                     "made by the end of the week; interval = 50% forecast interval."),
    "rate": Signal("Symptom rate per 100k", "continuous", "{:.1f}",
                   "Latest-revision weekly count per 100,000 population (FluSight populations; states only); "
                   "interval = exact Poisson 95%."),
    "survey": Signal("Survey affect, % of people (REAL)", "continuous", "{:.1f}",
                     "REAL population-survey estimate (e.g. CTIS via Delphi COVIDcast) on the Saturday ending the "
                     "week (already 7-day smoothed), latest issue; interval = ±1.96 survey standard errors; cells "
                     "below the minimum sample size suppressed."),
}


@lru_cache(maxsize=1)
def populations() -> dict[str, int]:
    df = pd.read_csv(POPULATION_FILE, dtype={"location": str})
    return dict(zip(df["location"], df["population"].astype("int64")))


def geographies(regions: list[str]) -> list[str]:
    """Map geographies to offer: states and counties always (boundaries vendored), H3 when present."""
    geos = ["state", "county"]
    if any(maps.geography_of(r) == "h3" for r in regions):
        geos.append("h3")
    return geos


def preferred_model(models: list[str]) -> str | None:
    for m in MODEL_PREFERENCE:
        if m in models:
            return m
    return models[0] if models else None


def map_frame(ctx, signal: str, geo: str, week: dt.date, syndrome: str | None = None, target: str | None = None,
              model: str | None = None, indicator: str | None = None) -> pd.DataFrame:
    """One row per region of ``geo`` with data, columns ``COLUMNS``."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown map signal {signal!r}; choose one of {', '.join(SIGNALS)}")
    builder = {"alert": _alert, "distress": _affect, "arousal": _affect, "growth": _growth, "rate": _rate,
               "survey": _survey}[signal]
    df = builder(ctx, signal, week, syndrome=syndrome, target=target, model=model, indicator=indicator)
    df = df[[maps.geography_of(r) == geo for r in df["region_id"]]] if len(df) else df
    for col in COLUMNS:
        if col not in df:
            df[col] = None
    return df[COLUMNS].reset_index(drop=True)


def _alert(ctx, signal, week, **_):
    levels = data.alert_levels_week(ctx.key, week)
    regions = pd.DataFrame({"region_id": data.regions(ctx.key)})
    df = regions.merge(levels, on="region_id", how="left")
    df["value"] = df["level"].fillna("none")
    df["suppression"] = int(Suppression.NOT_SUPPRESSED)
    df["detail"] = [f"{int(n)} alert(s), signal {s}" if pd.notna(n) else "no alert" for n, s in zip(df["n_alerts"], df["signal"])]
    return df


def _affect(ctx, signal, week, **_):

    cells = data.affect_week(ctx.key, week)
    if cells.empty:
        return pd.DataFrame(columns=COLUMNS)
    value, se = cells[signal].astype(float), cells[f"{signal}_se"].astype(float)
    return pd.DataFrame({
        "region_id": cells["region_id"], "value": value, "lo": value - 1.96 * se, "hi": value + 1.96 * se,
        "suppression": cells["suppression"].astype(int), "n_devices": cells["n_devices"], "n_obs": cells["n_obs"],
        "detail": ["simulated" if s else "" for s in cells["simulated"]],
    })


def _growth(ctx, signal, week, target=None, model=None, **_):
    if not target or not model:
        return pd.DataFrame(columns=COLUMNS)
    g = data.forecast_growth(ctx.key, week + dt.timedelta(days=6), target, model)
    if g.empty:
        return pd.DataFrame(columns=COLUMNS)
    ok = g["growth"].notna()
    return pd.DataFrame({
        "region_id": g["region_id"], "value": g["growth"], "lo": g["growth_lo"], "hi": g["growth_hi"],
        "suppression": np.where(ok, int(Suppression.NOT_SUPPRESSED), int(Suppression.NO_DATA)),
        "detail": [f"{model} run of {r}, horizon {h}" for r, h in zip(g["reference_date"], g["horizon"])],
    })


def _rate(ctx, signal, week, syndrome=None, **_):
    from scipy.stats import chi2

    if not syndrome:
        return pd.DataFrame(columns=COLUMNS)
    s = data.symptom_week(ctx.key, week, syndrome)
    if s.empty:
        return pd.DataFrame(columns=COLUMNS)
    pop = s["region_id"].map(populations()).astype(float)
    count = s["count"].astype(float)
    lo_count = np.where(count > 0, chi2.ppf(0.025, 2 * count) / 2, 0.0)
    hi_count = chi2.ppf(0.975, 2 * (count + 1)) / 2
    per = 1e5 / pop
    return pd.DataFrame({
        "region_id": s["region_id"], "value": count * per, "lo": lo_count * per, "hi": hi_count * per,
        "suppression": np.where(pop.notna(), int(Suppression.NOT_SUPPRESSED), int(Suppression.NO_DATA)),
        "detail": [f"{int(c)} {syndrome} reports" + ("" if pd.notna(p) else "; no population for region")
                   for c, p in zip(count, pop)],
    })


def _survey(ctx, signal, week, indicator=None, **_):
    from dashboard import survey

    cells = survey.week(ctx.key, week, indicator) if indicator else pd.DataFrame()
    if cells.empty:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame({
        "region_id": cells["region_id"], "value": cells["value"], "lo": cells["value_lo"], "hi": cells["value_hi"],
        "suppression": cells["suppression"].astype(int), "n_obs": cells["sample_size"].round(),
        "detail": [f"REAL survey, {src}" for src in cells["source"]],
    })


def picked_region(event) -> str | None:
    """Region id of the object clicked on the map (pydeck selection event), if any."""
    try:
        objects = event.selection.objects.get("regions") or []
    except AttributeError:
        return None
    for obj in objects:
        props = obj.get("properties", obj) if isinstance(obj, dict) else {}
        if props.get("region_id"):
            return str(props["region_id"])
    return None


def map_table(df: pd.DataFrame, spec: maps.MapLayerSpec) -> pd.DataFrame:
    """The accessible table alternative of the map: names, values, intervals and status labels."""
    drawn, _, _ = maps.fill_and_labels(df, spec)
    return pd.DataFrame({
        "region": [maps.region_name(r) for r in drawn["region_id"]],
        "region_id": drawn["region_id"],
        spec.title: drawn["value_text"],
        "interval": drawn["interval_text"],
        "status": drawn["status"],
        "devices": drawn["n_devices"],
        "observations": drawn["n_obs"],
        "note": drawn["detail"],
    })
