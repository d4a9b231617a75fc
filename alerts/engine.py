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

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings
from affectwatch.warehouse import connect
from alerts import lifecycle, series
from alerts.lifecycle import Decision
from alerts.rules import DetectorSpec, SignalRule, load_rules

log = get_logger(__name__)

SPARK_POINTS = 26  # periods of history carried in the evidence (sparkline)
AFFECT_LOOKBACK_DAYS = 8 * 7


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def _f(x) -> float | None:
    """A JSON/SQL-safe float (None for NaN/inf/None)."""
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


# -- detectors -------------------------------------------------------------------------------

def _run_detectors(data: pd.DataFrame, rule: SignalRule) -> dict[str, pd.DataFrame]:
    """Run every non-forecast detector of the rule; frames indexed by (series, t)."""
    from analytics.detect import detect

    out = {}
    for spec in rule.detectors:
        if spec.method == "forecast-exceedance":
            continue
        res = detect(data[["series", "t", "observed", "date"]], spec.method, period=rule.season_period, **spec.params)
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

def _condition_holds(cond, frame: pd.DataFrame | None, exc: dict | None) -> pd.Series | bool:
    if exc is not None:  # forecast exceedance: a scalar for the newest period
        return exc.get("probability") is not None and exc["probability"] > cond.probability_above
    if cond.p_below is not None:
        return frame["p_value"].lt(cond.p_below).fillna(False)
    if cond.alarm:
        return frame["alarm"].astype(bool)
    if cond.statistic_above is not None:
        return frame["statistic"].gt(cond.statistic_above).fillna(False)
    return False


def _levels(index: pd.Index, rule: SignalRule, frames: dict, exceed: dict, latest: pd.Series) -> tuple[pd.Series, dict]:
    """Level per (series, t) and, per level, which detectors' conditions held (a boolean frame)."""
    level = pd.Series(None, index=index, dtype=object)
    held_by_level = {}
    for name in ("yellow", "red"):  # red last so it wins
        lr = rule.levels.get(name)
        if lr is None:
            continue
        held = pd.DataFrame(index=index)
        for i, cond in enumerate(lr.when):
            if cond.detector in frames:
                held[f"{i}:{cond.detector}"] = _condition_holds(cond, frames[cond.detector].reindex(index), None).to_numpy()
            else:  # exceedance applies to each region's newest period only
                col = np.zeros(len(index), dtype=bool)
                for region, info in exceed.get(cond.detector, {}).items():
                    key = (region, latest.get(region))
                    if key in index and _condition_holds(cond, None, info):
                        col[index.get_loc(key)] = True
                held[f"{i}:{cond.detector}"] = col
        fired = held.sum(axis=1) >= lr.require
        level[fired.to_numpy()] = name
        held_by_level[name] = held
    return level, held_by_level


# -- decisions -------------------------------------------------------------------------------

def _lead(rule: SignalRule, lvl: str | None, held: dict, key, frames: dict, exceed: dict) -> tuple[list[str], str | None]:
    """Detectors whose conditions held for the level, and the lead one (smallest p, else first)."""
    if lvl is None:
        names = [d.name for d in rule.detectors if d.name in frames]
        return [], (names[0] if names else None)
    row = held[lvl].loc[key]
    fired = list(dict.fromkeys(c.split(":", 1)[1] for c, v in row.items() if v))
    with_p = [(frames[n].loc[key, "p_value"], n) for n in fired if n in frames and np.isfinite(frames[n].loc[key, "p_value"])]
    lead = min(with_p)[1] if with_p else (fired[0] if fired else None)
    return fired, lead


def _evidence(region: str, key, frames: dict, exceed: dict, g: pd.DataFrame, lead: str | None) -> dict:
    det = {}
    for name, fr in frames.items():
        r = fr.loc[key]
        det[name] = {"statistic": _f(r["statistic"]), "threshold": _f(r["threshold"]), "p_value": _f(r["p_value"]),
                     "expected": _f(r["expected"]), "alarm": bool(r["alarm"]), "reason": r["reason"]}
    for name, per_region in exceed.items():
        if region in per_region:
            det[name] = {**per_region[region], "alarm": None, "statistic": None, "p_value": None}
    tail = g.tail(SPARK_POINTS)
    thr = frames[lead].reindex(list(zip(tail["series"], tail["t"])))["threshold"] if lead in frames else None
    return {
        "detectors": det,
        "series": {
            "dates": [str(pd.Timestamp(d).date()) for d in tail["date"]],
            "observed": [_f(v) for v in tail["observed"]],
            "threshold": [_f(v) for v in thr] if thr is not None else [],
        },
        "history_start": str(pd.Timestamp(g["date"].iloc[0]).date()),
        "gaps_filled": int(g["filled"].sum()),
        "revisions": int(g["revisions"].iloc[-1]),
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
    last_date = data.groupby("series")["date"].max()
    decisions: list[Decision] = []
    ok_regions = []
    for region, n in lengths.items():
        g_last = data[(data["series"] == region)].iloc[-1]
        lag = int((newest - last_date[region]).days // step)
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
    data = data[data["series"].isin(ok_regions)].reset_index(drop=True)
    frames = _run_detectors(data, rule)
    latest = data.groupby("series")["t"].max()
    exceed = {spec.name: _exceedance(con, spec, data, now) for spec in rule.detectors if spec.method == "forecast-exceedance"}
    index = pd.MultiIndex.from_frame(data[["series", "t"]])
    level, held = _levels(index, rule, frames, exceed, latest)
    data["level"] = level.to_numpy()
    for region, g in data.groupby("series", sort=True):
        last = g.iloc[-1]
        key = (region, int(last["t"]))
        lvl = last["level"] if isinstance(last["level"], str) else None
        quiet = int((g["level"].isna()[::-1].cumprod()).sum())
        fired, lead = _lead(rule, lvl, held, key, frames, exceed)
        ev = _evidence(region, key, frames, exceed, g, lead)
        lead_row = frames[lead].loc[key] if lead in frames else None
        exc = next((exceed[n][region] for n in exceed if region in exceed[n]), None)
        end = last["period_end"]
        decisions.append(Decision(
            region_id=region, signal=signal, level=lvl, rule=signal,
            data_start=last["date"].date(), data_end=end,
            provisional=bool((now.date() - end).days <= rule.provisional_days or last["filled"]),
            detectors=fired,
            statistic=_f(lead_row["statistic"]) if lead_row is not None else None,
            threshold=_f(lead_row["threshold"]) if lead_row is not None else (exc or {}).get("threshold"),
            p_value=_f(lead_row["p_value"]) if lead_row is not None else None,
            probability=(exc or {}).get("probability"),
            observed=_f(last["observed"]),
            expected=_f(lead_row["expected"]) if lead_row is not None else None,
            quiet_periods=quiet, resolve_after=rule.resolve_after, cooldown_hours=cooldown, evidence=ev,
        ))
    return decisions


def _affect_decisions(con, signal: str, rule: SignalRule, s: Settings, now: datetime) -> list[Decision]:
    from alerts.affect_signal import affect_decisions

    return affect_decisions(con, signal, rule, s, now)


def evaluate(con, rules, settings: Settings, now: datetime) -> tuple[list[Decision], dict]:
    """Decisions for every signal; a signal that fails is logged and reported, the others still run."""
    decisions, per_signal = [], {}
    for signal, rule in rules.signals.items():
        try:
            fn = _symptom_decisions if rule.source == "symptom_reports" else _affect_decisions
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
    own = con is None
    con = con or connect(s)
    try:
        decisions, per_signal = evaluate(con, rules, s, now)
        summary = lifecycle.apply(con, decisions, now)
    finally:
        if own:
            con.close()
    out = {"now": now.isoformat(), "signals": per_signal, **{k: v for k, v in summary.items() if k != "notifications"},
           "notifications": len(summary["notifications"])}
    log.info("detection pass finished", decisions=len(decisions), notifications=out["notifications"])
    return out
