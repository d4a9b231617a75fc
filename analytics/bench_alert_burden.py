"""`affectwatch bench alert-burden`: how often would the shipped rules alert officials, and in time?

Replays the rule set's ``ili`` signal over the real ILINet state history (``data/ili/``, MMWR
2010w40-2023w39) through the product's own path: the file is loaded with ``ingest.load_symptoms``
into a throw-away warehouse, the series is built by ``alerts.series.symptom_series`` and the
levels by the alert engine's detector and condition code. Every detector decides week t from
weeks <= t only (prospective; ``tests/test_alert_burden.py`` checks that cutting the history at t
leaves week t's level unchanged), so one pass equals a week-by-week replay.

Per state and season (MMWR week 40 to week 39) it prints the alert-weeks (red or yellow) and
whether an alert came in the 6 weeks before the season's peak (the week with the highest value,
peak excluded). Summary: share of state-weeks with an alert (target <= 10 %) and share of
state-seasons with an alert before the peak (target >= 80 %).

Honest evaluation: ``--tune`` searches the detector and thresholds on the VALIDATION seasons
(2011-12 .. 2015-16) only; the shipped ``config/alert_rules.yaml`` holds its choice. The figures
to report are those of the later seasons (2016-17 .. 2022-23), which were not looked at when
choosing. Last line: one JSON object.
"""
from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.settings import REPO_ROOT

log = get_logger(__name__)

ILINET = REPO_ROOT / "data" / "ili" / "ILINet_states_2010w40-2023w39.csv"
SIGNAL = "ili"
VALIDATION = tuple(range(2011, 2016))  # seasons 2011-12 .. 2015-16 (by their starting year)
REPORTED = tuple(range(2016, 2023))  # 2016-17 .. 2022-23
PRE_PEAK_WEEKS = 6
TARGET_BURDEN = 0.10
TARGET_PRE_PEAK = 0.80
AS_OF = datetime(2023, 10, 31, tzinfo=timezone.utc)


def load_series(rule, path: Path = ILINET) -> pd.DataFrame:
    """The ILINet file through the product's loader and series builder (a temporary warehouse)."""
    from affectwatch.settings import Settings
    from affectwatch.warehouse import migrate, session
    from alerts import series
    from ingest.load_symptoms import load_file

    with tempfile.TemporaryDirectory(prefix="aw-bench-burden-") as tmp:
        s = Settings(data_dir=Path(tmp) / "var")
        with session(s) as con:
            migrate(con)
            load_file(path, s, syndrome=rule.syndrome, con=con, reported_lag_days=5)
            return series.symptom_series(con, rule.syndrome, rule.frequency, rule.measure, AS_OF)


def weekly_levels(data: pd.DataFrame, rule) -> pd.DataFrame:
    """Level (red / yellow / None) of every region-week under ``rule``: the engine's own code."""
    from alerts import engine

    data = data.sort_values(["series", "t"]).reset_index(drop=True)
    frames = engine._run_detectors(data, rule)
    wide = engine._levels(engine._wide(data, frames), rule, {})
    # a region gives no verdict before min_history periods (the engine's abstention)
    young = wide.groupby("series").cumcount() < rule.min_history
    wide.loc[young, "level"] = None
    return wide[["series", "t", "date", "period_end", "observed", "filled", "level"]]


def season_of(period_end: pd.Series) -> pd.Series:
    """Season start year: MMWR week 40 of year y .. week 39 of y+1 belong to season y."""
    from affectwatch import mmwr

    yw = [mmwr.mmwr_week(d) for d in pd.to_datetime(period_end).dt.date]
    return pd.Series([y if w >= 40 else y - 1 for y, w in yw], index=period_end.index)


def state_seasons(levels: pd.DataFrame) -> pd.DataFrame:
    """One row per (region, season): alert-weeks, weeks, peak week, alert in the 6 weeks before the peak."""
    df = levels.copy()
    df["season"] = season_of(df["period_end"])
    df["alert"] = df["level"].isin(["red", "yellow"])
    rows = []
    for (region, season), g in df.groupby(["series", "season"], sort=True):
        obs = g["observed"].where(~g["filled"])
        if obs.notna().sum() < 20 or not (obs > 0).any():
            continue  # a season without data (or all zero) has no peak to warn about
        peak = int(g.loc[obs.idxmax(), "t"])
        before = g[(g["t"] >= peak - PRE_PEAK_WEEKS) & (g["t"] < peak)]
        first = before.loc[before["alert"], "t"].min() if before["alert"].any() else None
        rows.append({"region": region, "season": int(season), "weeks": len(g), "alert_weeks": int(g["alert"].sum()),
                     "red_weeks": int((g["level"] == "red").sum()),
                     "peak": str(pd.Timestamp(g.loc[obs.idxmax(), "date"]).date()),
                     "alert_before_peak": bool(before["alert"].any()),
                     "lead_weeks": None if first is None else int(peak - first)})
    return pd.DataFrame(rows)


def summarise(ss: pd.DataFrame, seasons: tuple[int, ...]) -> dict:
    part = ss[ss["season"].isin(seasons)]
    weeks = int(part["weeks"].sum())
    return {"seasons": f"{min(seasons)}-{str(max(seasons) + 1)[2:]}", "state_seasons": len(part), "state_weeks": weeks,
            "alert_week_share": round(part["alert_weeks"].sum() / weeks, 4) if weeks else None,
            "red_week_share": round(part["red_weeks"].sum() / weeks, 4) if weeks else None,
            "pre_peak_share": round(float(part["alert_before_peak"].mean()), 4) if len(part) else None,
            "median_lead_weeks": (float(part["lead_weeks"].dropna().median())
                                  if part["lead_weeks"].notna().any() else None)}


DETECTOR_VARIANTS = (
    ("serfling", {}),
    ("serfling", {"min_growth": 0.1}),
    ("serfling", {"min_growth": 0.2}),
    ("farrington", {"limit54": [0, 4]}),
    ("noufaily", {"limit54": [0, 4]}),
)
P_YELLOW = (0.1, 0.05, 0.01, 0.001, 0.0001, 0.00001)


def _rule(base, method: str, params: dict, p_yellow: float):
    """One candidate rule. Serfling's growth-gated alarm carries its alpha; the others are cut on p."""
    from alerts.rules import parse_rules

    if method == "serfling":
        params = {**params, "alpha": p_yellow, "alpha_red": p_yellow / 10}
        levels = {"red": {"require": 2, "when": [{"detector": "seasonal", "alarm": True},
                                                 {"detector": "seasonal", "p_below": p_yellow / 10}]},
                  "yellow": {"when": [{"detector": "seasonal", "alarm": True}]}}
    else:
        levels = {"red": {"when": [{"detector": "seasonal", "p_below": p_yellow / 10}]},
                  "yellow": {"when": [{"detector": "seasonal", "p_below": p_yellow}]}}
    doc = {"version": 1, "signals": {SIGNAL: {
        **base.model_dump(exclude={"detectors", "levels"}, exclude_none=True),
        "detectors": [{"name": "seasonal", "method": method, "params": params}], "levels": levels}}}
    return parse_rules(doc).signals[SIGNAL]


def tune(data: pd.DataFrame, base, echo=print) -> tuple[str, list[dict]]:
    """Pick the variant with the most pre-peak alerts among those within the burden target, on VALIDATION only.

    Variants: seasonal detector (``DETECTOR_VARIANTS``) x yellow p-threshold (``P_YELLOW``; red at a
    tenth of it). Each detector runs once; thresholds are applied to its p-values.
    """
    from alerts import engine

    grid = []
    data = data.sort_values(["series", "t"]).reset_index(drop=True)
    for method, params in DETECTOR_VARIANTS:
        loose = engine._run_detectors(data, _rule(base, method, params, max(P_YELLOW)))
        for p_yellow in P_YELLOW:
            rule = _rule(base, method, params, p_yellow)
            # p-values do not depend on the threshold, so each detector runs once; serfling's
            # alarm is (p < alpha) & growing, so the alarm at a stricter alpha is the loose one & p < alpha
            fr = loose["seasonal"].copy()
            if method == "serfling":
                fr["alarm"] = fr["alarm"] & (fr["p_value"] < p_yellow)
            frames = {"seasonal": fr}
            wide = engine._levels(engine._wide(data, frames), rule, {})
            wide.loc[wide.groupby("series").cumcount() < rule.min_history, "level"] = None
            v = summarise(state_seasons(wide), VALIDATION)
            name = f"{method} {json.dumps(params, separators=(',', ':'))} p<{p_yellow:g}"
            grid.append({"variant": name, **v})
            echo(f"  {name:<52} validation: alert-weeks {v['alert_week_share']:.1%}  pre-peak {v['pre_peak_share']:.1%}")
    ok = [g for g in grid if g["alert_week_share"] <= TARGET_BURDEN]
    best = max(ok, key=lambda g: (g["pre_peak_share"], -g["alert_week_share"])) if ok else \
        min(grid, key=lambda g: g["alert_week_share"])
    return best["variant"], grid


def run_bench(rules_file: Path | None = None, do_tune: bool = False, per_season: bool = True, echo=print) -> dict:
    from alerts.rules import load_rules

    t0 = time.perf_counter()
    rule = load_rules(rules_file).signals[SIGNAL]
    data = load_series(rule)
    echo(f"ILINet: {data['series'].nunique()} regions, {len(data)} region-weeks, measure {rule.measure}; "
         f"rule {SIGNAL}: " + ", ".join(f"{d.name}={d.method}" for d in rule.detectors))
    result: dict = {"bench": "alert-burden", "signal": SIGNAL}
    if do_tune:
        echo(f"tuning on validation seasons {VALIDATION[0]}-{VALIDATION[-1] + 1} only:")
        best, grid = tune(data, rule, echo)
        echo(f"chosen on validation: {best} (most pre-peak alerts with alert-weeks <= {TARGET_BURDEN:.0%})")
        result.update(tuned=best, grid=grid)
    ss = state_seasons(weekly_levels(data, rule))
    if per_season:
        echo(f"{'region':<7}{'season':<9}{'alert-wk':>9}{'red-wk':>7}  {'peak':<11}{'alert<=6wk before peak':>23}")
        for r in ss.itertuples(index=False):
            lead = f"yes ({int(r.lead_weeks)} wk)" if r.alert_before_peak else "no"
            echo(f"{r.region:<7}{r.season}-{str(r.season + 1)[2:]:<4}{r.alert_weeks:>9}{r.red_weeks:>7}  {r.peak:<11}"
                 f"{lead:>23}")
    val, rep = summarise(ss, VALIDATION), summarise(ss, REPORTED)
    for label, v in (("validation (used to choose)", val), ("reported (held out)", rep)):
        echo(f"{label} {v['seasons']}: {v['state_seasons']} state-seasons, alert on {v['alert_week_share']:.1%} of "
             f"state-weeks (red {v['red_week_share']:.1%}), alert before the peak in {v['pre_peak_share']:.1%} of "
             f"state-seasons, median lead {v['median_lead_weeks']} weeks")
    result.update(validation=val, reported=rep, target_alert_week_share=TARGET_BURDEN,
                  target_pre_peak_share=TARGET_PRE_PEAK, seconds=round(time.perf_counter() - t0, 1),
                  meets_target=bool(rep["alert_week_share"] <= TARGET_BURDEN and rep["pre_peak_share"] >= TARGET_PRE_PEAK))
    echo(json.dumps(result))
    return result
