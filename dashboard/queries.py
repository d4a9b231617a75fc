"""Warehouse SQL for the dashboard: plain functions of (connection, parameters) -> DataFrame.

Every value that comes from the user is bound as a parameter (``?``); no SQL text is ever built
from user input. Affect cells are read from the one cell definition (``analyst.affect_cells``, SQL in
``sql/views/intermediate/int_affect_cells.sql``): a suppressed cell has NULL values and a
non-zero ``affectwatch.privacy.Suppression`` code, exactly as in the analyst marts.

``dashboard/data.py`` wraps these in ``st.cache_data`` functions; the benchmark and the tests can
call them directly on any connection.
"""
from __future__ import annotations

import datetime as dt
import re

import duckdb
import pandas as pd

from affectwatch import mmwr
from analyst import affect_cells

_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# SQL fragment: MMWR week start (Sunday) of a DATE expression.
_WEEK = "({d} - cast(dayofweek({d}) as integer))"


week_start = mmwr.sunday_of  # the Sunday that starts the MMWR week containing a day


def run(con: duckdb.DuckDBPyConnection, alias: str, sql: str, params: list | tuple = ()) -> pd.DataFrame:
    """Run one query on a fresh cursor of the shared connection (cursors are safe across threads)."""
    if not _ALIAS_RE.match(alias):
        raise ValueError(f"warehouse alias {alias!r} is not a plain SQL identifier")
    cur = con.cursor()
    try:
        cur.execute(f"use {alias}")  # alias comes from settings and is checked above, never from a user
        cur.execute("set TimeZone = 'UTC'")
        return cur.execute(sql, list(params)).df()
    finally:
        cur.close()


# ---------------------------------------------------------------------------------------------
# affect: cells come from the one definition (sql/views/intermediate/int_affect_cells.sql)
# ---------------------------------------------------------------------------------------------
_CELL_NAMES = {"period_start": "period", "n_scored": "n_obs", "confidence_mean": "confidence",
               "distress_share": "distress", "arousal_mean": "arousal", "valence_mean": "valence"}
_CELL_COLUMNS = ["region_id", "period", "n_devices", "n_obs", "n_abstained", "n_scored", "n_windows",
                 "abstain_share", "confidence", "quality", "pose_stability", "lighting", "snr_db", "simulated",
                 "model_versions", "suppression", "distress", "distress_se", "arousal", "arousal_se",
                 "valence", "valence_se"]


def _cells(con, grain: str, where: str, params: list) -> pd.DataFrame:
    """Affect cells as the dashboard names their columns (values already NULL when suppressed).

    ``n_obs`` and ``n_scored`` are both the scored observations (n_observations of the windows).
    """
    df = affect_cells.read(con, grain, where=where, params=params)
    df = df.assign(n_scored=df["n_scored"]).rename(columns=_CELL_NAMES)
    df["n_scored"] = df["n_obs"]
    df["period"] = pd.to_datetime(df["period"]).dt.date if len(df) else df["period"]
    return df[_CELL_COLUMNS].reset_index(drop=True)


def affect_week(con, alias: str, week: dt.date) -> pd.DataFrame:
    """Affect cells of every region for the MMWR week starting ``week`` (regions with data)."""
    return _cells(con, "week", "day = ? and n_windows > 0", [week])


def affect_daily(con, alias: str, region: str, days: int = 120) -> pd.DataFrame:
    """Daily affect cells for one region over the last ``days`` days with data."""
    return _cells(con, "day", "region_id = ? and n_windows > 0 and day > (select max(day) from "
                  f"{affect_cells.CELLS} where grain = 'day' and region_id = ?) - to_days(?)", [region, region, days])


def model_version_changes(con, alias: str, region: str) -> pd.DataFrame:
    """First day each on-device model version was seen in a region (a change can shift scores)."""
    return run(con, alias, """
        select model_version, min(cast(window_start as date)) as first_day, count(distinct device_id) as n_devices
        from affect_windows where region_id = ? group by model_version order by first_day
    """, [region])


# ---------------------------------------------------------------------------------------------
# symptoms
# ---------------------------------------------------------------------------------------------
_LATEST_SYMPTOMS = """
    latest as (
        select region_id, syndrome, period_start, period_end, count, denominator, reported_at
        from symptom_reports
        qualify row_number() over (partition by region_id, syndrome, period_start, period_end
                                   order by reported_at desc, ingested_at desc) = 1
    )
"""


def symptom_week(con, alias: str, week: dt.date, syndrome: str) -> pd.DataFrame:
    """Latest-revision symptom counts per region for one MMWR week and syndrome."""
    return run(con, alias, f"""
        with {_LATEST_SYMPTOMS}
        select region_id, sum(count) as count, sum(denominator) as denominator, max(reported_at) as reported_at
        from latest
        where syndrome = ? and {_WEEK.format(d='period_start')} = ?
        group by region_id order by region_id
    """, [syndrome, week])


def symptom_series(con, alias: str, region: str, syndrome: str) -> pd.DataFrame:
    """Weekly latest-revision series (week start, week end = Saturday) for one region and syndrome."""
    return run(con, alias, f"""
        with {_LATEST_SYMPTOMS}
        select {_WEEK.format(d='period_start')} as week_start,
               {_WEEK.format(d='period_start')} + 6 as week_end,
               sum(count) as count, sum(denominator) as denominator, count(*) as n_periods,
               max(reported_at) as reported_at
        from latest where region_id = ? and syndrome = ?
        group by all order by week_start
    """, [region, syndrome])


def syndromes(con, alias: str) -> list[str]:
    df = run(con, alias, "select distinct syndrome from symptom_reports order by syndrome")
    return df["syndrome"].tolist()


# ---------------------------------------------------------------------------------------------
# forecasts
# ---------------------------------------------------------------------------------------------
_QUANTILES = {0.025: "q025", 0.25: "q25", 0.5: "q50", 0.75: "q75", 0.975: "q975"}


def _pivot_quantiles(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=keys + list(_QUANTILES.values()))
    df = df.assign(level=df["output_type_id"].round(3).map(_QUANTILES)).dropna(subset=["level"])
    out = df.pivot_table(index=keys, columns="level", values="value", aggfunc="first").reset_index()
    out.columns.name = None
    for col in _QUANTILES.values():
        if col not in out:
            out[col] = None
    return out


def forecast_targets(con, alias: str, region: str | None = None) -> pd.DataFrame:
    """Targets and models that have forecasts (optionally for one location), most rows first."""
    if region is None:
        return run(con, alias, "select target, model, count(*) as n from forecasts group by all order by n desc")
    return run(con, alias, "select target, model, count(*) as n from forecasts where location = ? group by all order by n desc",
               [region])


def region_forecasts(con, alias: str, region: str, target: str, model: str, n_past: int) -> pd.DataFrame:
    """The latest ``n_past + 1`` forecast runs (by reference date) of a model for one location."""
    df = run(con, alias, """
        with refs as (
            select distinct reference_date from forecasts
            where location = ? and target = ? and model = ?
            order by reference_date desc limit ?
        ), runs as (  -- newest run per reference date
            select f.* from forecasts f join refs using (reference_date)
            where f.location = ? and f.target = ? and f.model = ? and f.output_type = 'quantile'
            qualify dense_rank() over (partition by f.reference_date order by f.created_at desc) = 1
        )
        select reference_date, horizon, target_end_date, output_type_id, value, created_at from runs
    """, [region, target, model, n_past + 1, region, target, model])
    out = _pivot_quantiles(df, ["reference_date", "horizon", "target_end_date"])
    return out.sort_values(["reference_date", "horizon"]).reset_index(drop=True)


def forecast_growth(con, alias: str, week_end: dt.date, target: str, model: str) -> pd.DataFrame:
    """Per location: forecast growth from horizon 0 to the furthest horizon of the latest run made by ``week_end``.

    growth = median(h_max) / median(h0) - 1, with the 50% interval q25..q75 of h_max relative to the
    h0 median.
    """
    df = run(con, alias, """
        with runs as (
            select * from forecasts
            where target = ? and model = ? and output_type = 'quantile' and reference_date <= ?
            qualify dense_rank() over (partition by location order by reference_date desc, created_at desc) = 1
        )
        select location as region_id, reference_date, horizon, output_type_id, value from runs
    """, [target, model, week_end])
    if df.empty:
        return pd.DataFrame(columns=["region_id", "reference_date", "growth", "growth_lo", "growth_hi", "horizon"])
    q = _pivot_quantiles(df, ["region_id", "reference_date", "horizon"])
    first = q.sort_values("horizon").groupby("region_id").first()
    last = q.sort_values("horizon").groupby("region_id").last()
    base = first["q50"].astype(float).where(first["q50"].astype(float) > 0)
    out = pd.DataFrame({
        "reference_date": last["reference_date"],
        "horizon": last["horizon"],
        "growth": last["q50"].astype(float) / base - 1,
        "growth_lo": last["q25"].astype(float) / base - 1,
        "growth_hi": last["q75"].astype(float) / base - 1,
    }).reset_index()
    return out


# ---------------------------------------------------------------------------------------------
# alerts
# ---------------------------------------------------------------------------------------------
_LEVEL_RANK = "case level when 'red' then 3 when 'yellow' then 2 when 'insufficient_data' then 1 else 0 end"


def alert_levels_week(con, alias: str, week: dt.date) -> pd.DataFrame:
    """Highest alert level per region among alerts active at any time during the week."""
    start = dt.datetime.combine(week, dt.time(), tzinfo=dt.timezone.utc)
    return run(con, alias, f"""
        select region_id,
               arg_max(level, {_LEVEL_RANK}) as level,
               arg_max(signal, {_LEVEL_RANK}) as signal,
               arg_max(probability, {_LEVEL_RANK}) as probability,
               arg_max(p_value, {_LEVEL_RANK}) as p_value,
               count(*) as n_alerts
        from alerts
        where first_seen < ? and (resolved_at is null or resolved_at >= ?)
        group by region_id order by region_id
    """, [start + dt.timedelta(days=7), start])


def alerts_table(con, alias: str, levels: tuple[str, ...], statuses: tuple[str, ...], region: str | None,
                 since: dt.date | None, until: dt.date | None) -> pd.DataFrame:
    """Alerts (newest first) with their latest acknowledgement, filtered by bound parameters."""
    return run(con, alias, """
        with acks as (
            select alert_id, count(*) as n_acks,
                   arg_max(acknowledged_by, acknowledged_at) as acknowledged_by,
                   max(acknowledged_at) as acknowledged_at,
                   arg_max(note, acknowledged_at) as ack_note,
                   arg_max(label, acknowledged_at) as ack_label
            from alert_acks group by alert_id
        )
        select a.alert_id, a.region_id, a.signal, a.level, a.status,
               coalesce(k.n_acks, 0) > 0 as acknowledged,
               a.rule, a.detectors, a.statistic, a.threshold, a.p_value, a.probability,
               a.observed, a.expected, a.data_start, a.data_end, a.provisional,
               a.first_seen, a.last_updated, a.resolved_at,
               k.acknowledged_by, k.acknowledged_at, k.ack_note, k.ack_label, a.evidence
        from alerts a left join acks k using (alert_id)
        where (len(?::varchar[]) = 0 or list_contains(?::varchar[], a.level))
          and (len(?::varchar[]) = 0 or list_contains(?::varchar[], a.status))
          and (?::varchar is null or a.region_id = ?::varchar)
          and (?::date is null or cast(a.last_updated as date) >= ?::date)
          and (?::date is null or cast(a.first_seen as date) <= ?::date)
        order by a.last_updated desc, a.alert_id
    """, [list(levels), list(levels), list(statuses), list(statuses), region, region, since, since, until, until])


def alert_history(con, alias: str, alert_id: str) -> pd.DataFrame:
    """Events and acknowledgements of one alert, oldest first."""
    return run(con, alias, """
        select event_at, event, level, detail, null::varchar as actor from alert_events where alert_id = ?
        union all
        select acknowledged_at, 'acknowledged', null, coalesce(note, '') || coalesce(' [' || label || ']', ''),
               acknowledged_by from alert_acks where alert_id = ?
        order by event_at
    """, [alert_id, alert_id])


def alert_calibration(con, alias: str, bins: int = 5) -> pd.DataFrame:
    """Reliability of alert probabilities against acknowledgement labels (true_alarm / false_alarm)."""
    return run(con, alias, """
        with labelled as (
            select a.alert_id, a.probability,
                   arg_max(k.label, k.acknowledged_at) = 'true_alarm' as outbreak
            from alerts a join alert_acks k using (alert_id)
            where a.probability is not null and k.label in ('true_alarm', 'false_alarm')
            group by a.alert_id, a.probability
        )
        select least(floor(probability * ?), ? - 1) / ? as bin_lo,
               avg(probability) as mean_probability, avg(outbreak::int) as observed_share, count(*) as n
        from labelled group by all order by bin_lo
    """, [bins, bins, bins])


# ---------------------------------------------------------------------------------------------
# forecast evaluation
# ---------------------------------------------------------------------------------------------
def coverage_by_horizon(con, alias: str) -> pd.DataFrame:
    """Empirical 50/80/95% interval coverage and mean WIS per model and horizon."""
    return run(con, alias, """
        select model, target, horizon, count(*) as n,
               avg(cover_50::int) as cover_50, avg(cover_80::int) as cover_80, avg(cover_95::int) as cover_95,
               avg(wis) as mean_wis
        from forecast_scores group by all order by model, target, horizon
    """)


def pit_values(con, alias: str) -> pd.DataFrame:
    return run(con, alias, "select model, target, horizon, pit from forecast_scores where pit is not null")


def relative_wis(con, alias: str, baseline: str = "baseline") -> pd.DataFrame:
    """Mean WIS of each model relative to the baseline on the forecasts both made (pairwise, same tasks)."""
    return run(con, alias, """
        with s as (
            select model, location, target, reference_date, horizon, avg(wis) as wis
            from forecast_scores where wis is not null group by all
        ), b as (select * from s where model = ?)
        select s.model, s.target, count(*) as n_tasks, avg(s.wis) as mean_wis, avg(b.wis) as baseline_wis,
               avg(s.wis) / nullif(avg(b.wis), 0) as relative_wis
        from s join b using (location, target, reference_date, horizon)
        group by all order by relative_wis
    """, [baseline])


def affect_lift(con, alias: str, location: str | None = None) -> pd.DataFrame:
    """Newest affect-lift verdict per (location, target); one location (plus 'overall') when given."""
    return run(con, alias, """
        select location, target, wis_ratio, ratio_lo, ratio_hi, lead, lead_lo, lead_hi, lead_unit,
               informative, verdict, n_forecasts, simulated, created_at
        from affect_lift
        where ?::varchar is null or location = ?::varchar or location = 'overall'
        qualify row_number() over (partition by location, target order by created_at desc) = 1
        order by location = 'overall' desc, location, target
    """, [location, location])


# ---------------------------------------------------------------------------------------------
# data quality and freshness
# ---------------------------------------------------------------------------------------------
def freshness(con, alias: str) -> dict:
    """Newest affect window, newest ingest, newest symptom report and the share of simulated windows."""
    row = run(con, alias, """
        select (select max(window_end) from affect_windows) as last_window_end,
               (select max(ingested_at) from affect_windows) as last_affect_ingest,
               (select max(reported_at) from symptom_reports) as last_symptom_report,
               (select max(period_end) from symptom_reports) as last_symptom_period,
               (select max(committed_at) from ingest_batches) as last_batch,
               (select count(*) from affect_windows where simulated) as n_simulated,
               (select count(*) from affect_windows) as n_windows
    """).iloc[0]
    return {k: (None if pd.isna(v) else v) for k, v in row.items()}


def region_site_quality(con, alias: str, days: int) -> pd.DataFrame:
    """Per region and device class over the last ``days`` days: last seen, windows/day vs expected, lag."""
    return run(con, alias, """
        with recent as (
            select * from affect_windows
            where window_end >= (select max(window_end) from affect_windows) - to_days(?)
        ), per_device as (  -- expected windows/day of a device from its typical window length
            select region_id, site_type, device_id, count(*) as n_windows,
                   86400.0 / median(epoch(window_end) - epoch(window_start)) as expected_per_day,
                   count(distinct cast(window_start as date)) as active_days
            from recent group by all
        )
        select r.region_id, r.site_type,
               max(r.window_end) as last_seen,
               count(distinct r.device_id) as n_devices,
               count(*) / ?::double as windows_per_day,
               (select sum(expected_per_day) from per_device p
                 where p.region_id = r.region_id and p.site_type = r.site_type) as expected_per_day,
               median(epoch(r.ingested_at) - epoch(r.window_end)) / 60.0 as median_ingest_lag_min,
               avg(r.n_abstained / nullif(r.n_observations, 0)) as abstain_share,
               avg(r.confidence_mean) as confidence
        from recent r group by all order by r.region_id, r.site_type
    """, [days, days])


def dead_letters_by_reason(con, alias: str, until: dt.datetime, days: int) -> pd.DataFrame:
    """Dead letters per reason and source in the ``days`` days up to ``until``."""
    return run(con, alias, """
        select reason, coalesce(topic, '') as topic, count(*) as n, max(received_at) as last_received,
               arg_max(detail, received_at) as latest_detail
        from dead_letters
        where received_at > ?::timestamptz - to_days(?) and received_at <= ?::timestamptz
        group by all order by n desc, reason
    """, [until, days, until])


def ingest_lag(con, alias: str, limit: int = 200) -> pd.DataFrame:
    """Recent ingest batches: consumer lag (messages behind) and batch sizes over time."""
    return run(con, alias, """
        select committed_at, consumer_group, n_messages, n_affect, n_symptoms, n_duplicates, n_dead_letters,
               max_lag, seconds
        from ingest_batches order by committed_at desc limit ?
    """, [limit])


def suppressed_share(con, alias: str, days: int) -> pd.DataFrame:
    """Share of region-day affect cells suppressed (any non-zero code but no data), per day."""
    df = _cells(con, "day", "n_windows > 0 and day > (select max(day) from "
                f"{affect_cells.CELLS} where grain = 'day') - to_days(?)", [days])
    if df.empty:
        return pd.DataFrame(columns=["period", "n_cells", "n_suppressed", "suppressed_share"])
    g = df.groupby("period").agg(n_cells=("region_id", "size"), n_suppressed=("suppression", lambda s: int((s != 0).sum())))
    g["suppressed_share"] = g["n_suppressed"] / g["n_cells"]
    return g.reset_index()


def weeks_with_data(con, alias: str) -> list[dt.date]:
    """MMWR week starts that have affect windows or symptom reports (oldest first)."""
    df = run(con, alias, f"""
        select distinct w from (
            select {_WEEK.format(d='cast(window_start as date)')} as w from affect_windows
            union select {_WEEK.format(d='period_start')} from symptom_reports
        ) order by w
    """)
    return [pd.Timestamp(w).date() for w in df["w"]]


def regions_with_data(con, alias: str) -> list[str]:
    df = run(con, alias, """
        select distinct region_id from (
            select region_id from affect_windows union select region_id from symptom_reports
            union select region_id from alerts union select location from forecasts
        ) order by region_id
    """)
    return df["region_id"].tolist()


def subscriptions(con, alias: str) -> pd.DataFrame:
    """Email subscriptions, active first, newest first."""
    return run(con, alias, """
        select subscription_id, recipient, regions, min_level, mode, digest_time, timezone, active, created_at
        from subscriptions order by active desc, created_at desc, subscription_id
    """)
