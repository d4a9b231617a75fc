"""Decisions for affect signals (source ``affect_windows``), via ``analytics.affect_anomaly``.

The detector gives one verdict per region for a period (24 h ending at the current hour). It is
evaluated for the current period and the ``resolve_after - 1`` periods before it, so the
lifecycle knows how many consecutive quiet periods there were. Abstentions (too few devices or
observations, low quality, a model_version change, a short baseline, no data) become level
``insufficient_data`` with the detector's reason: affect never raises an alert on thin data.
Numbers of cells that fail the privacy rules never enter the evidence: the sparkline series is
the day grain of the one cell definition (codes included, so emails show what the marts show),
and the detector reads the hour grain of the same definition with the rule's minimums (which may
only be tighter than ``settings.privacy``).
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from affectwatch.settings import Settings
from alerts import series
from alerts.evidence import SPARK_POINTS
from alerts.evidence import json_float as _f
from alerts.lifecycle import Decision
from alerts.rules import SignalRule
from analytics.affect_anomaly import REASON_CODES, affect_anomalies

LOOKBACK_EXTRA_DAYS = 2


def _levels_for(res: pd.DataFrame, rule: SignalRule, name: str) -> tuple[pd.Series, dict]:
    """Rule conditions on the detector rows (one per region); red checked last so it wins."""
    level = pd.Series([None] * len(res), index=res.index, dtype=object)
    fired_by = {}
    for lvl in ("yellow", "red"):
        lr = rule.levels.get(lvl)
        if lr is None:
            continue
        held = []
        for c in lr.when:
            if c.p_below is not None:
                held.append(res["p_value"].lt(c.p_below).fillna(False))
            elif c.alarm:
                held.append(res["alarm"].astype(bool))
            elif c.statistic_above is not None:
                held.append(res["statistic"].gt(c.statistic_above).fillna(False))
            else:
                held.append(pd.Series(False, index=res.index))
        n = sum(h.astype(int) for h in held)
        fired = (n >= lr.require) & res["reason"].isna()
        level[fired] = lvl
        fired_by[lvl] = fired
    return level, fired_by


def affect_decisions(con, signal: str, rule: SignalRule, s: Settings, now: datetime) -> list[Decision]:
    spec = rule.detectors[0]
    mins = rule.minimums(s.privacy)
    # min_history = periods (days) of same-model-version baseline the detector needs before judging
    params = {"baseline_days": 28, "min_baseline_periods": rule.min_history, **spec.params}
    lookback = int(params["baseline_days"]) + rule.resolve_after + LOOKBACK_EXTRA_DAYS
    windows = series.affect_windows(con, now, max(lookback, SPARK_POINTS + 1))
    if windows.empty:
        return []
    at = pd.Timestamp(now).tz_convert("UTC").floor("h")
    period_h = int(params.get("period_hours", 24))
    runs = []
    for k in range(rule.resolve_after):
        res = affect_anomalies(windows, signal=rule.affect_field, at=at - pd.Timedelta(hours=period_h * k),
                               settings=s, **mins, **params)
        level, _ = _levels_for(res, rule, spec.name)
        runs.append(res.assign(level_rule=level.to_numpy()))
    current = runs[0].set_index("region_id")
    history = {k: r.set_index("region_id") for k, r in enumerate(runs)}
    cells = series.affect_cells(con, rule.affect_field, now, max(lookback, SPARK_POINTS + 1), s)
    cooldown = rule.cooldown_hours if rule.cooldown_hours is not None else s.alerts.cooldown_hours
    decisions = []
    for region, r in current.iterrows():
        start = pd.Timestamp(r["period_start"]).date()
        end = (pd.Timestamp(r["period_end"]) - timedelta(microseconds=1)).date()
        quiet = 0
        for k in range(rule.resolve_after):
            h = history[k]
            if region in h.index and not isinstance(h.loc[region, "level_rule"], str) \
                    and not isinstance(h.loc[region, "reason"], str):
                quiet += 1
            else:
                break
        c = cells[cells["series"] == region].sort_values("date").tail(SPARK_POINTS)
        # published: the detector's standardised statistic and p-value (location and scale unknown),
        # and the day cells; never its period values in signal units (rolling 24 h periods built
        # from hour cells would otherwise give small hour cells away by differencing)
        today = c[(c["date"].dt.date == end) & (c["code"] == 0)]
        observed = _f(today["observed"].iloc[0]) if len(today) else None
        ev = {
            "detectors": {spec.name: {
                "statistic": _f(r["statistic"]), "p_value": _f(r["p_value"]),
                "alarm": bool(r["alarm"]), "reason": r["reason"],
                "model_version": r["model_version"], "baseline_periods": int(r["baseline_periods"]),
            }},
            "cell": {"n_devices": int(r["n_devices"]), "n_scored": int(r["n_observations"]),
                     "quality": _f(r["quality"]) if REASON_CODES.get(r["reason"], 0) in (0, 4) else None,
                     "suppression": REASON_CODES.get(r["reason"], 0)},
            "series": {  # day cells exactly as the marts publish them
                "dates": [str(pd.Timestamp(d).date()) for d in c["date"]],
                "observed": [_f(v) if code == 0 else None for v, code in zip(c["observed"], c["code"])],
                "n_devices": [int(v) for v in c["n_devices"]],
                "n_scored": [int(v) for v in c["n_scored"]],
                "suppression": [int(v) for v in c["code"]],
                "threshold": [None] * len(c),
            },
            "simulated": bool(c["simulated"].all()) if len(c) else True,
            "minimums": mins,
        }
        common = dict(region_id=region, signal=signal, rule=signal, data_start=start, data_end=end,
                      provisional=(now.date() - end).days <= rule.provisional_days,
                      resolve_after=rule.resolve_after, cooldown_hours=cooldown, evidence=ev)
        if isinstance(r["reason"], str):
            decisions.append(Decision(level="insufficient_data", reason=r["reason"], **common))
            continue
        lvl = r["level_rule"] if isinstance(r["level_rule"], str) else None
        decisions.append(Decision(
            level=lvl, detectors=[spec.name] if lvl else [], statistic=_f(r["statistic"]),
            p_value=_f(r["p_value"]), observed=observed,
            quiet_periods=quiet, **common,
        ))
    return decisions
