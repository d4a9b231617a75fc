"""Detector benchmarks: accuracy on labelled outbreak series, and speed at national scale.

``accuracy(path)`` runs every method on a labelled weekly file (default
``data/outbreaks/rki_survstat_labelled_dev.csv``: 7 real RKI SurvStat series, outbreak weeks
flagged by the source) and reports per method, over the weeks the method can evaluate:

* ``sensitivity``  — share of outbreak weeks with an alarm;
* ``specificity``  — share of non-outbreak weeks without an alarm;
* ``pod``          — probability of detection: share of outbreaks (runs of flagged weeks with at
  least one evaluable week) with an alarm in some flagged week;
* ``median_delay`` — median, over detected outbreaks, of weeks from the first evaluable flagged
  week to the first alarm.

``scale(n_series, days)`` generates ``n_series`` daily count series of ``days`` days
(negative-binomial counts with yearly and weekly seasonality and injected outbreaks, seeded) and
times every method on them, split over ``jobs`` worker processes. Farrington and Noufaily fit
one GLM per series and time point; on daily data they are evaluated on weekly aggregates of the
same series (period 52), which is how those methods are specified (weekly reporting).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from affectwatch.settings import REPO_ROOT
from analytics.detect import METHODS, detect
from analytics.detectors.registry import REGISTRY

LABELLED = REPO_ROOT / "data" / "outbreaks" / "rki_survstat_labelled_dev.csv"
WEEKLY_ONLY = {m for m in METHODS if REGISTRY[m].seasonal}  # need the seasonal period


def _events(g: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of each run of consecutive outbreak weeks in one series (sorted by t)."""
    flag = g["outbreak"].to_numpy() == 1
    runs, start = [], None
    for i, f in enumerate(flag):
        if f and start is None:
            start = i
        if not f and start is not None:
            runs.append(np.arange(start, i))
            start = None
    if start is not None:
        runs.append(np.arange(start, len(flag)))
    return runs


def score(result: pd.DataFrame, labels: pd.DataFrame) -> dict:
    """Sensitivity, specificity, POD and median delay of one method's output against labels."""
    m = result.merge(labels[["series", "t", "outbreak"]], on=["series", "t"], how="left")
    evaluable = m["reason"].ne("insufficient_baseline").to_numpy()
    ob = m["outbreak"].to_numpy() == 1
    al = m["alarm"].to_numpy()
    tp = int((al & ob & evaluable).sum())
    n_ob = int((ob & evaluable).sum())
    fp = int((al & ~ob & evaluable).sum())
    n_neg = int((~ob & evaluable).sum())
    delays, n_events, detected = [], 0, 0
    for _, g in m.sort_values(["series", "t"]).groupby("series", sort=False):
        g = g.reset_index(drop=True)
        ev = g["reason"].ne("insufficient_baseline").to_numpy()
        alarms = g["alarm"].to_numpy()
        for run in _events(g):
            run = run[ev[run]]
            if run.size == 0:
                continue
            n_events += 1
            hits = run[alarms[run]]
            if hits.size:
                detected += 1
                delays.append(int(hits[0] - run[0]))
    return {
        "sensitivity": round(tp / n_ob, 4) if n_ob else None,
        "specificity": round(1 - fp / n_neg, 4) if n_neg else None,
        "pod": round(detected / n_events, 4) if n_events else None,
        "median_delay": float(np.median(delays)) if delays else None,
        "outbreak_weeks": n_ob,
        "other_weeks": n_neg,
        "outbreaks": n_events,
        "false_alarms": fp,
    }


def accuracy(path: Path | str = LABELLED, period: int = 52) -> dict[str, dict]:
    labels = pd.read_csv(path)
    if "outbreak" not in labels.columns:
        raise ValueError(f"{path}: a labelled file needs an 'outbreak' column; columns: {', '.join(labels.columns)}")
    if "series" not in labels.columns and "district" in labels.columns:
        labels = labels.rename(columns={"district": "series"})
    out = {}
    for method in METHODS:
        t0 = time.perf_counter()
        res = detect(labels, method, period=period if method in WEEKLY_ONLY else None)
        out[method] = {**score(res, labels), "seconds": round(time.perf_counter() - t0, 3)}
    return out


def synthetic_daily(n_series: int, days: int, seed: int = 0, start: str = "2024-01-01") -> pd.DataFrame:
    """Daily counts: NB(mean = level x yearly x weekly seasonality, size 5) + injected outbreaks."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    level = rng.lognormal(mean=1.5, sigma=1.0, size=(n_series, 1))
    yearly = 1 + 0.4 * np.cos(2 * np.pi * (t - rng.integers(0, 365, (n_series, 1))) / 365.25)
    weekly = np.array([1.15, 1.05, 1.0, 1.0, 0.95, 0.85, 0.9])[np.mod(t, 7)]
    mu = level * yearly * weekly[None, :]
    size = 5.0
    Y = rng.negative_binomial(size, size / (size + mu)).astype(float)
    # one outbreak of 7..21 days in half of the series
    for s in np.flatnonzero(rng.random(n_series) < 0.5):
        a = rng.integers(400, days - 21)
        d = rng.integers(7, 22)
        Y[s, a:a + d] += rng.poisson(2 * mu[s, a:a + d] + 2)
    dates = pd.date_range(start, periods=days, freq="D")
    return pd.DataFrame({
        "series": np.repeat([f"r{i:05d}" for i in range(n_series)], days),
        "t": np.tile(t + 1, n_series),
        "date": np.tile(dates.values, n_series),
        "observed": Y.reshape(-1),
    })


def weekly(df: pd.DataFrame) -> pd.DataFrame:
    """Aggregate consecutive daily rows into weeks (complete weeks only) per series."""
    wk = (df["t"] - df.groupby("series")["t"].transform("min")) // 7
    agg = df.assign(wk=wk).groupby(["series", "wk"], sort=False).agg(
        observed=("observed", "sum"), n=("observed", "size"), date=("date", "last")
    ).reset_index()
    agg = agg[agg["n"] == 7]
    return pd.DataFrame({"series": agg["series"], "t": agg["wk"] + 1, "date": agg["date"], "observed": agg["observed"]})


def _scale_chunk(chunk: int, n_series: int, days: int, seed: int) -> dict:
    from affectwatch.logs import configure
    from affectwatch.settings import get_settings

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    configure(get_settings().log_level, get_settings().log_format)  # worker processes log like the parent
    df = synthetic_daily(n_series, days, seed=seed + chunk)
    df["series"] = f"c{chunk}_" + df["series"]
    wk = weekly(df)
    times, cpu, alarms, rows = {}, {}, {}, {}
    for method in METHODS:
        data = wk if method in WEEKLY_ONLY else df
        t0, c0 = time.perf_counter(), time.process_time()
        res = detect(data, method)
        times[method] = time.perf_counter() - t0
        cpu[method] = time.process_time() - c0
        alarms[method] = int(res["alarm"].sum())
        rows[method] = len(res)
    return {"times": times, "cpu": cpu, "alarms": alarms, "rows": rows}


def scale(n_series: int = 3000, days: int = 730, jobs: int = 2, seed: int = 0) -> dict:
    """Time all detectors over n_series x days of daily data, split over `jobs` processes."""
    from joblib import Parallel, delayed

    jobs = max(1, int(jobs))
    sizes = [n_series // jobs + (1 if i < n_series % jobs else 0) for i in range(jobs)]
    t0 = time.perf_counter()
    parts = Parallel(n_jobs=jobs, backend="loky")(
        delayed(_scale_chunk)(i, sizes[i], days, seed) for i in range(jobs)
    )
    wall = time.perf_counter() - t0
    per_method = {
        m: {
            "seconds": round(sum(p["times"][m] for p in parts), 2),  # elapsed, summed over workers
            "cpu_seconds": round(sum(p["cpu"][m] for p in parts), 2),  # CPU time, summed over workers
            "alarms": sum(p["alarms"][m] for p in parts),
            "rows": sum(p["rows"][m] for p in parts),
        }
        for m in METHODS
    }
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        load = None
    cpu_total = sum(r["cpu_seconds"] for r in per_method.values())
    return {"series": n_series, "days": days, "jobs": jobs, "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu_total, 2), "load_average_1m": load, "methods": per_method}
