"""Benchmarks (print figures; the last printed line is one JSON object).

* ``real``: rolling-origin backtest of the symptom-only ensemble (and its members) on the FluSight
  admissions for every Saturday 2022-10-15 .. 2023-05-27, all states, reporting latency 1 week:
  WIS, relative WIS vs the baseline, 50/80/95% coverage (overall and by horizon); then the
  leave-one-season-out table (:func:`loso`, 13 ILINet seasons + NHSN 2022-23) that chooses the
  ensemble — the 2022-23 figures are reported, never used to choose.
* ``scale``: 3,000+ county series x 150 weeks, one reference date, all models fitted and forecast,
  using both cores; wall time and peak memory. County series are DERIVED: the real ILINet weekly
  ILI visit counts (ILITOTAL) of each state, 150 MMWR weeks to 2023 week 39, split over the state's
  counties (data/geo) by a multinomial draw with equal shares — county populations are not in
  data/, and equal shares are the neutral choice (area would give Alaska's boroughs most cases).
"""
from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from affectwatch.settings import REPO_ROOT
from analytics.ilinet import ili_states

DATA = REPO_ROOT / "data"


def peak_rss_mb() -> float:
    """Peak resident memory, MB: this process plus the largest worker process (getrusage)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own + kids, 1)


LOSO_CACHE = Path(tempfile.gettempdir()) / "affectwatch-loso"
TARGET_REL_WIS = 0.68  # issue #10: relative WIS on 2022-23 and the coverage of the central intervals
TARGET_COVERAGE = {50: (0.45, 0.55), 80: (0.75, 0.85), 95: (0.92, 0.97)}


def loso(every: int = 4, n_jobs: int = 2, cache_dir=LOSO_CACHE, echo=print) -> dict:
    """Leave-one-season-out table (analytics.validation): relative WIS per fold of every member,
    of the ensemble before this validation and of the validated ensemble (nested choices), its
    coverage, and the choice made on all folds. Fold forecasts are cached in ``cache_dir``."""
    from analytics import validation as V

    keys, q, y = V.arrays(V.all_folds(every=every, n_jobs=n_jobs, cache_dir=cache_dir))
    tab, chosen = V.table(keys, q, y)
    echo(f"leave-one-season-out: {keys['fold'].nunique()} folds, every {every}th Saturday 10-15..05-27, "
         f"{len(y)} forecasts; relative WIS vs baseline per fold")
    echo(tab.round(3).to_string())
    echo(f"chosen on all folds: {chosen}")
    before, after = float(tab.loc["mean", "ensemble (before)"]), float(tab.loc["mean", "ensemble (LOSO)"])
    return {"loso_folds": int(keys["fold"].nunique()), "loso_forecasts": int(len(y)), "loso_mean_improves": after < before,
            "loso_mean_rel_wis": {c: round(float(tab.loc["mean", c]), 3) for c in tab.columns},
            "loso_chosen": chosen}


def real(target_csv=None, start="2022-10-15", end="2023-05-27", latency=1, n_jobs=2, out=None, echo=print,
         loso_every: int = 4) -> dict:
    from analytics.backtest import backtest, saturdays
    from analytics.hubverse import read_target_csv, write_hub_csv
    from analytics.scoring import score, summarise

    t0 = time.perf_counter()
    target = read_target_csv(target_csv or DATA / "flusight" / "target-hospital-admissions.csv")
    target = target[target["location"] != "US"]  # states only
    refs = saturdays(start, end)
    fc = backtest(target, refs, models=["baseline", "glm", "qr", "ets", "gbq", "qar", "ensemble"], latency=latency, n_jobs=n_jobs)
    if out:
        write_hub_csv(fc, out)
    scores = score(fc, target)
    overall = summarise(scores)
    by_h = summarise(scores, ["horizon"])
    wall = time.perf_counter() - t0
    pd.set_option("display.width", 200)
    echo(f"reference dates: {len(refs)} ({refs[0].date()} .. {refs[-1].date()}), locations: {target['location'].nunique()}, latency: {latency} week(s)")
    echo(overall.round(3).to_string(index=False))
    echo(by_h[by_h["model"].isin(["baseline", "ensemble"])].round(3).to_string(index=False))
    ens = overall.set_index("model").loc["ensemble"]
    result = {
        "benchmark": "forecast_real", "reference_dates": len(refs), "locations": int(target["location"].nunique()),
        "latency_weeks": latency, "forecasts_scored": int(ens["n"]), "ensemble_wis": round(float(ens["wis"]), 3),
        "baseline_wis": round(float(overall.set_index("model").loc["baseline", "wis"]), 3),
        "relative_wis": round(float(ens["rel_wis"]), 3), "coverage_50": round(float(ens["cover_50"]), 3),
        "coverage_80": round(float(ens["cover_80"]), 3), "coverage_95": round(float(ens["cover_95"]), 3),
        "coverage_by_horizon": {f"{int(r.horizon)}": {"50": round(float(r.cover_50), 3), "80": round(float(r.cover_80), 3),
                                                      "95": round(float(r.cover_95), 3)}
                                for r in by_h[by_h["model"] == "ensemble"].itertuples()},
        # issue #10's targets on 2022-23
        "target_relative_wis_max": TARGET_REL_WIS, "target_coverage": {str(k): list(v) for k, v in TARGET_COVERAGE.items()},
        "meets_relative_wis": bool(ens["rel_wis"] <= TARGET_REL_WIS),
        "meets_coverage": {str(k): bool(lo <= ens[f"cover_{k}"] <= hi) for k, (lo, hi) in TARGET_COVERAGE.items()},
        "wall_s": round(wall, 1), "peak_rss_mb": peak_rss_mb(),
    }
    if loso_every:
        result.update(loso(loso_every, n_jobs, echo=echo))
        result["wall_s"] = round(time.perf_counter() - t0, 1)
    echo(json.dumps(result))
    return result


def county_panel(weeks: int = 150, seed: int = 0) -> pd.DataFrame:
    """Wide frame (weeks x counties) of state ILI counts split equally over each state's counties."""
    geo = json.loads((DATA / "geo" / "us_counties_census2017_10m.geojson").read_text())
    counties = sorted(str(f["id"]) for f in geo["features"])
    state = ili_states()
    state_w = state.pivot_table(index="date", columns="location", values="value").sort_index().iloc[-weeks:]
    rng = np.random.default_rng(seed)
    cols, names = [], []
    for st in state_w.columns:
        cs = [c for c in counties if c[:2] == st]
        if not cs:
            continue
        v = state_w[st].to_numpy()
        split = np.full((len(v), len(cs)), np.nan)
        ok = np.isfinite(v)
        split[ok] = _multinomial(rng, v[ok], len(cs))
        cols.append(split)
        names += cs
    return pd.DataFrame(np.hstack(cols), index=state_w.index, columns=names)


def _multinomial(rng: np.random.Generator, totals: np.ndarray, k: int) -> np.ndarray:
    return rng.multinomial(totals.astype(np.int64), np.full(k, 1.0 / k))


def scale(weeks: int = 150, n_jobs: int = 2, echo=print) -> dict:
    from analytics.forecast import forecast_panel
    from analytics.models import Panel

    t0 = time.perf_counter()
    y = county_panel(weeks)
    t_build = time.perf_counter() - t0
    ref = y.index[-1] + pd.Timedelta(days=7)
    t1 = time.perf_counter()
    models = ["baseline", "glm", "qr", "gbq", "qar", "ensemble"]
    fc = forecast_panel(Panel(y), ref, models=models, target="wk inc ili", n_jobs=n_jobs)
    t_fit = time.perf_counter() - t1
    wall = time.perf_counter() - t0
    echo(f"regions: {y.shape[1]} counties, weeks: {y.shape[0]} ({y.index[0].date()} .. {y.index[-1].date()}), "
         f"reference date {ref.date()}, rows {len(fc)}, fallbacks {len(fc.attrs['fallbacks'])}")
    echo(f"build panel {t_build:.1f} s, fit+forecast {t_fit:.1f} s, wall {wall:.1f} s, cores {psutil.cpu_count()}, jobs {n_jobs}")
    result = {"benchmark": "forecast_scale", "regions": int(y.shape[1]), "weeks": int(y.shape[0]),
              "models": models, "rows": len(fc), "fallbacks": len(fc.attrs["fallbacks"]),
              "fit_forecast_s": round(t_fit, 1), "wall_s": round(wall, 1), "target_s": 60,
              "meets_target": wall <= 60, "n_jobs": n_jobs, "peak_rss_mb": peak_rss_mb()}
    echo(json.dumps(result))
    return result
