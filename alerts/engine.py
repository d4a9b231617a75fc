"""Alert engine: series from the warehouse -> detectors per rule -> a level per region -> lifecycle.

``run_once`` is the detection pass of the scheduler (and of ``affectwatch alerts run-once``).
Per signal of the rule set it builds the series as known at ``now``, runs the rule's detectors
(``analytics.detect``, ``analytics.affect_anomaly``, forecast exceedance from ``forecasts``),
evaluates the red/yellow conditions for every period, and hands one ``Decision`` per region -
the newest period's level with its evidence - to ``alerts.lifecycle``. A region abstains
(level ``insufficient_data`` with a stated reason) when its history is too short, its data are
stale, or - for affect - devices, observations or quality are below the minimums.
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.progress import progress
from affectwatch.settings import Settings, get_settings
from affectwatch.warehouse import session
from alerts import lifecycle, series
from alerts.affect_signal import affect_decisions
from alerts.evidence import SPARK_POINTS
from alerts.evidence import json_float as _f
from alerts.lifecycle import Decision
from alerts.rules import DetectorSpec, SignalRule, load_rules

log = get_logger(__name__)



def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


# -- detectors -------------------------------------------------------------------------------

def _run_detectors(data: pd.DataFrame, rule: SignalRule) -> dict[str, pd.DataFrame]:
    """Run every non-forecast detector of the rule; frames indexed by (series, t)."""
    from analytics.detect import detect

    out = {}
    for spec in rule.detectors:
        if spec.method == "forecast-exceedance":
            continue
        res = detect(data[["series", "t", "observed", "date"]], spec.method, period=rule.season_period,
                     **rule.detector_params(spec))
        out[spec.name] = res.set_index(["series", "t"])
    return out


def _exceedance(con, spec: DetectorSpec, data: pd.DataFrame, as_of: datetime) -> dict[str, dict]:
    """P(next period > region threshold) from the newest quantile forecast per location, as known at as_of."""
    from analytics.exceedance import exceedance_probability

    fc = con.execute("""
        with latest as (
            select location, max(reference_date) as reference_date from forecasts
            where target = ? and horizon = ? and output_type = 'quantile' and created_at <= ?
            group by location)
        select f.location, f.reference_date, f.target_end_date, f.model, f.output_type_id as level, f.value
        from forecasts f join latest l using (location, reference_date)
        where f.target = ? and f.horizon = ? and f.output_type = 'quantile' and f.created_at <= ?
          and list_contains(?, f.model)
        qualify dense_rank() over (partition by f.location
                                   order by f.created_at desc, list_position(?, f.model)) = 1
        order by f.location, f.output_type_id""",
        [spec.target, spec.horizon, as_of, spec.target, spec.horizon, as_of, spec.models, spec.models]).df()
    out: dict[str, dict] = {}
    if fc.empty:
        return out
    hist = data[~data["filled"]].groupby("series")["observed"]
    for loc, g in fc.groupby("location"):
        if spec.threshold_value is not None:
            thr = float(spec.threshold_value)
        elif loc in hist.groups:
            thr = float(hist.get_group(loc).quantile(spec.threshold_quantile))
        else:
            continue
        p = exceedance_probability(g["level"].to_numpy(), g["value"].to_numpy(), thr)
        out[loc] = {"probability": _f(p), "threshold": thr,
                    "reference_date": str(pd.Timestamp(g["reference_date"].iloc[0]).date()),
                    "target_end_date": str(pd.Timestamp(g["target_end_date"].iloc[0]).date()), "model": g["model"].iloc[0],
                    "median": _f(np.interp(0.5, g["level"], g["value"]))}
    return out


# -- levels ----------------------------------------------------------------------------------

DET_COLS = ("expected", "threshold", "statistic", "p_value", "alarm", "reason")


def _wide(data: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The series with every detector's output as ``<detector>.<column>`` columns (one row per period)."""
    idx = pd.MultiIndex.from_frame(data[["series", "t"]])
    cols = {}
    for name, fr in frames.items():
        r = fr.reindex(idx)
        for c in DET_COLS:
            cols[f"{name}.{c}"] = r[c].to_numpy()
    return pd.concat([data.reset_index(drop=True), pd.DataFrame(cols)], axis=1)


def _condition_holds(cond, wide: pd.DataFrame, is_latest: np.ndarray, exceed: dict) -> np.ndarray:
    det = cond.detector
    if det in exceed:  # forecast exceedance: about next period, so it applies to each region's newest period
        prob = wide["series"].map({r: i["probability"] for r, i in exceed[det].items()}).astype(float)
        return is_latest & prob.gt(cond.probability_above).to_numpy()
    if f"{det}.p_value" not in wide:
        return np.zeros(len(wide), dtype=bool)
    if cond.p_below is not None:
        return wide[f"{det}.p_value"].lt(cond.p_below).fillna(False).to_numpy()
    if cond.alarm:
        return wide[f"{det}.alarm"].fillna(False).astype(bool).to_numpy()
    if cond.statistic_above is not None:
        return wide[f"{det}.statistic"].gt(cond.statistic_above).fillna(False).to_numpy()
    return np.zeros(len(wide), dtype=bool)


def _levels(wide: pd.DataFrame, rule: SignalRule, exceed: dict) -> pd.DataFrame:
    """Adds ``level`` per period and ``held.<level>.<i>:<detector>`` booleans (which conditions held)."""
    is_latest = (wide["t"] == wide.groupby("series")["t"].transform("max")).to_numpy()
    level = np.full(len(wide), None, dtype=object)
    cols = {}
    for name in ("yellow", "red"):  # red last so it wins
        lr = rule.levels.get(name)
        if lr is None:
            continue
        n = np.zeros(len(wide), dtype=int)
        for i, cond in enumerate(lr.when):
            held = _condition_holds(cond, wide, is_latest, exceed)
            cols[f"held.{name}.{i}:{cond.detector}"] = held
            n += held
        level[n >= lr.require] = name
    out = pd.concat([wide, pd.DataFrame(cols, index=wide.index)], axis=1)
    out["level"] = level
    return out


# -- decisions -------------------------------------------------------------------------------

def _lead(rule: SignalRule, lvl: str | None, row: dict, frames: dict) -> tuple[list[str], str | None]:
    """Detectors whose conditions held for the level, and the lead one (smallest p, else first)."""
    if lvl is None:
        names = [d.name for d in rule.detectors if d.name in frames]
        return [], (names[0] if names else None)
    prefix = f"held.{lvl}."
    fired = list(dict.fromkeys(k[len(prefix):].split(":", 1)[1] for k, v in row.items() if k.startswith(prefix) and v))
    with_p = [(row[f"{n}.p_value"], n) for n in fired if n in frames and np.isfinite(row[f"{n}.p_value"])]
    lead = min(with_p)[1] if with_p else (fired[0] if fired else None)
    return fired, lead


def _evidence(region: str, row: dict, frames: dict, exceed: dict, tail: pd.DataFrame, lead: str | None,
              history_start, gaps: int) -> dict:
    det = {name: {"statistic": _f(row[f"{name}.statistic"]), "threshold": _f(row[f"{name}.threshold"]),
                  "p_value": _f(row[f"{name}.p_value"]), "expected": _f(row[f"{name}.expected"]),
                  "alarm": bool(row[f"{name}.alarm"]) if row[f"{name}.alarm"] == row[f"{name}.alarm"] else None,
                  "reason": row[f"{name}.reason"] if isinstance(row[f"{name}.reason"], str) else None}
           for name in frames}
    for name, per_region in exceed.items():
        if region in per_region:
            det[name] = {**per_region[region], "alarm": None, "statistic": None, "p_value": None}
    return {
        "detectors": det,
        "series": {
            "dates": [str(pd.Timestamp(d).date()) for d in tail["date"]],
            "observed": [_f(v) for v in tail["observed"]],
            "threshold": [_f(v) for v in tail[f"{lead}.threshold"]] if lead in frames else [],
        },
        "history_start": str(pd.Timestamp(history_start).date()),
        "gaps_filled": gaps,
        "revisions": int(row["revisions"]),
    }


def _abstain(region: str, signal: str, rule: SignalRule, reason: str, data_start, data_end, cooldown: float,
             evidence: dict | None = None, provisional: bool = False) -> Decision:
    return Decision(region_id=region, signal=signal, level="insufficient_data", rule=signal, data_start=data_start,
                    data_end=data_end, provisional=provisional, reason=reason, resolve_after=rule.resolve_after,
                    cooldown_hours=cooldown, evidence={"reason": reason, **(evidence or {})})


def _symptom_decisions(con, signal: str, rule: SignalRule, s: Settings, now: datetime) -> list[Decision]:
    data = series.symptom_series(con, rule.syndrome, rule.frequency, rule.measure, now)
    if data.empty:
        log.info("no data for signal", signal=signal, syndrome=rule.syndrome)
        return []
    cooldown = rule.cooldown_hours if rule.cooldown_hours is not None else s.alerts.cooldown_hours
    step = 7 if rule.frequency == "weekly" else 1
    newest = data["date"].max()
    lengths = data.groupby("series")["t"].size()
    lasts = data.groupby("series").tail(1).set_index("series")
    decisions: list[Decision] = []
    ok_regions = []
    for region, n in lengths.items():
        g_last = lasts.loc[region]
        lag = int((newest - g_last["date"]).days // step)
        start, end = g_last["date"].date(), g_last["period_end"]
        prov = (now.date() - end).days <= rule.provisional_days
        if n < rule.min_history:
            decisions.append(_abstain(region, signal, rule, f"short_history: {n} periods < min_history {rule.min_history}",
                                      start, end, cooldown, provisional=prov))
        elif lag > rule.max_lag_periods:
            decisions.append(_abstain(region, signal, rule, f"stale_data: last period {start} is {lag} periods behind {newest.date()}",
                                      start, end, cooldown, provisional=prov))
        else:
            ok_regions.append(region)
    if not ok_regions:
        return decisions
    data = data[data["series"].isin(ok_regions)].sort_values(["series", "t"]).reset_index(drop=True)
    frames = _run_detectors(data, rule)
    exceed = {spec.name: _exceedance(con, spec, data, now) for spec in rule.detectors if spec.method == "forecast-exceedance"}
    wide = _levels(_wide(data, frames), rule, exceed)
    # trailing quiet periods per region: periods after the last red/yellow one
    wide["pos"] = wide.groupby("series").cumcount()
    size = wide.groupby("series")["pos"].max() + 1
    last_alarm = wide[wide["level"].notna()].groupby("series")["pos"].max()
    quiet = (size - 1 - last_alarm.reindex(size.index)).fillna(size).astype(int)
    first_date = wide.groupby("series")["date"].min()
    gaps = wide.groupby("series")["filled"].sum()
    tails = dict(tuple(wide.groupby("series").tail(SPARK_POINTS).groupby("series", sort=True)))
    for row in wide.groupby("series").tail(1).to_dict("records"):
        region = row["series"]
        lvl = row["level"] if isinstance(row["level"], str) else None
        fired, lead = _lead(rule, lvl, row, frames)
        ev = _evidence(region, row, frames, exceed, tails[region], lead, first_date[region], int(gaps[region]))
        has_lead = lead in frames
        exc = next((exceed[n][region] for n in exceed if region in exceed[n]), None)
        end = row["period_end"]
        decisions.append(Decision(
            region_id=region, signal=signal, level=lvl, rule=signal,
            data_start=pd.Timestamp(row["date"]).date(), data_end=end,
            provisional=bool((now.date() - end).days <= rule.provisional_days or row["filled"]),
            detectors=fired,
            statistic=_f(row[f"{lead}.statistic"]) if has_lead else None,
            threshold=_f(row[f"{lead}.threshold"]) if has_lead else (exc or {}).get("threshold"),
            p_value=_f(row[f"{lead}.p_value"]) if has_lead else None,
            probability=(exc or {}).get("probability"),
            observed=_f(row["observed"]),
            expected=_f(row[f"{lead}.expected"]) if has_lead else None,
            quiet_periods=int(quiet[region]), resolve_after=rule.resolve_after, cooldown_hours=cooldown, evidence=ev,
        ))
    return decisions


def evaluate(con, rules, settings: Settings, now: datetime) -> tuple[list[Decision], dict]:
    """Decisions for every signal; a signal that fails is logged and reported, the others still run."""
    decisions, per_signal = [], {}
    for signal, rule in progress(rules.signals.items(), desc="detection", unit="signal", total=len(rules.signals)):
        try:
            fn = _symptom_decisions if rule.source == "symptom_reports" else affect_decisions
            ds = fn(con, signal, rule, settings, now)
        except Exception as exc:  # noqa: BLE001 - one broken signal must not stop the others
            log.error("signal evaluation failed", signal=signal, error=f"{type(exc).__name__}: {exc}")
            per_signal[signal] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        decisions.extend(ds)
        per_signal[signal] = {
            "regions": len(ds),
            "red": sum(d.level == "red" for d in ds),
            "yellow": sum(d.level == "yellow" for d in ds),
            "insufficient_data": sum(d.level == "insufficient_data" for d in ds),
        }
    return decisions, per_signal


def run_once(settings: Settings | None = None, now: datetime | None = None, con=None) -> dict:
    """One detection pass over every signal of the rule set; updates alerts and alert_events."""
    s = settings or get_settings()
    now = _now(now)
    rules = load_rules(settings=s)
    with session(s, con=con) as con:
        decisions, per_signal = evaluate(con, rules, s, now)
        summary = lifecycle.apply(con, decisions, now)
    out = {"now": now.isoformat(), "signals": per_signal, **{k: v for k, v in summary.items() if k != "notifications"},
           "notifications": len(summary["notifications"])}
    log.info("detection pass finished", decisions=len(decisions), notifications=out["notifications"])
    return out
