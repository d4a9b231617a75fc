"""All warehouse reads of the dashboard.

One read-only warehouse connection per warehouse (``st.cache_resource``); plain
``st.cache_data(ttl=...)`` functions that take every input as an argument (the warehouse key
first), so two sessions asking the same question share one query. SQL lives in
``dashboard/queries.py`` and binds every user-chosen value as a parameter.

The dashboard's writes — acknowledging an alert, managing subscriptions (admin) — go through
``alerts.lifecycle`` / ``alerts.subscriptions`` and then clear the affected caches so every
session sees them.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from affectwatch.logs import get_logger
from affectwatch.settings import Settings
from dashboard import queries as q

log = get_logger(__name__)

TTL = 60  # seconds: new ingest batches show up within a minute
_SETTINGS: dict[str, Settings] = {}


class WarehouseUnavailable(RuntimeError):
    """The warehouse catalog does not exist or cannot be opened read-only."""


def warehouse_key(settings: Settings) -> str:
    """A string naming the warehouse (cache key); remembers the settings that open it."""
    key = f"{settings.catalog}|{settings.data_path}|{settings.warehouse.alias}|{settings.extension_dir}"
    _SETTINGS[key] = settings
    return key


def _alias(key: str) -> str:
    return key.split("|")[2]


@st.cache_resource(show_spinner=False)
def _connection(key: str):
    from affectwatch.warehouse import connect

    settings = _SETTINGS[key]
    if settings.catalog.startswith("sqlite:"):
        from pathlib import Path

        if not Path(settings.catalog.removeprefix("sqlite:")).exists():
            raise WarehouseUnavailable(
                f"no warehouse catalog at {settings.catalog.removeprefix('sqlite:')}; "
                "run `affectwatch warehouse migrate` (or the demo) first, or set AFFECTWATCH_DATA_DIR"
            )
    log.info("dashboard warehouse connection opened", catalog=settings.catalog)
    con = connect(settings, read_only=True)
    from analyst.views import install_views

    install_views(con, settings)  # the one affect-cell definition, with this warehouse's minimums
    return con


def connection(key: str):
    return _connection(key)


def warm_connection(settings: Settings) -> bool:
    """Open the cached warehouse connection (extensions, analyst views) before the first visitor;
    False (logged) when the warehouse cannot be opened yet: the first page then says why."""
    try:
        connection(warehouse_key(settings))
        return True
    except Exception as exc:  # a missing catalog, a busy one: the page reports it to the visitor
        log.warning("dashboard warehouse connection not opened at start", error=str(exc)[:300])
        return False


def _run(fn, key: str, *args):
    return fn(connection(key), _alias(key), *args)


def hide_small_feed_counts(q: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Blank the counts of region-site rows below the privacy minimums (for every role but the operator)."""
    small = q["n_devices"] < settings.privacy.min_devices
    cols = [c for c in ("n_devices", "windows_per_day", "expected_per_day", "completeness", "abstain_share",
                        "confidence") if c in q]
    q = q.copy()
    q[cols] = q[cols].astype(float)
    q.loc[small, cols] = None
    return q


# --- overview ---------------------------------------------------------------------------------
@st.cache_data(ttl=TTL, show_spinner=False)
def weeks(key: str) -> list[dt.date]:
    return _run(q.weeks_with_data, key)


@st.cache_data(ttl=TTL, show_spinner=False)
def regions(key: str) -> list[str]:
    return _run(q.regions_with_data, key)


@st.cache_data(ttl=TTL, show_spinner=False)
def syndromes(key: str) -> list[str]:
    return _run(q.syndromes, key)


@st.cache_data(ttl=TTL, show_spinner=False)
def affect_week(key: str, week: dt.date) -> pd.DataFrame:
    return _run(q.affect_week, key, week)


@st.cache_data(ttl=TTL, show_spinner=False)
def symptom_week(key: str, week: dt.date, syndrome: str) -> pd.DataFrame:
    return _run(q.symptom_week, key, week, syndrome)


@st.cache_data(ttl=TTL, show_spinner=False)
def alert_levels_week(key: str, week: dt.date) -> pd.DataFrame:
    return _run(q.alert_levels_week, key, week)


@st.cache_data(ttl=TTL, show_spinner=False)
def forecast_targets(key: str, region: str | None = None) -> pd.DataFrame:
    return _run(q.forecast_targets, key, region)


@st.cache_data(ttl=TTL, show_spinner=False)
def forecast_growth(key: str, week_end: dt.date, target: str, model: str) -> pd.DataFrame:
    return _run(q.forecast_growth, key, week_end, target, model)


# --- region detail ----------------------------------------------------------------------------
@st.cache_data(ttl=TTL, show_spinner=False)
def symptom_series(key: str, region: str, syndrome: str) -> pd.DataFrame:
    return _run(q.symptom_series, key, region, syndrome)


@st.cache_data(ttl=TTL, show_spinner=False)
def region_forecasts(key: str, region: str, target: str, model: str, n_past: int) -> pd.DataFrame:
    return _run(q.region_forecasts, key, region, target, model, n_past)


@st.cache_data(ttl=TTL, show_spinner=False)
def affect_daily(key: str, region: str, days: int) -> pd.DataFrame:
    return _run(q.affect_daily, key, region, days)


@st.cache_data(ttl=TTL, show_spinner=False)
def model_version_changes(key: str, region: str) -> pd.DataFrame:
    return _run(q.model_version_changes, key, region)


@st.cache_data(ttl=TTL, show_spinner=False)
def affect_lift(key: str, location: str | None = None) -> pd.DataFrame:
    return _run(q.affect_lift, key, location)


# --- alerts -----------------------------------------------------------------------------------
@st.cache_data(ttl=TTL, show_spinner=False)
def alerts_table(key: str, levels: tuple[str, ...], statuses: tuple[str, ...], region: str | None,
                 since: dt.date | None, until: dt.date | None) -> pd.DataFrame:
    return _run(q.alerts_table, key, levels, statuses, region, since, until)


@st.cache_data(ttl=TTL, show_spinner=False)
def alert_history(key: str, alert_id: str) -> pd.DataFrame:
    return _run(q.alert_history, key, alert_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def alert_calibration(key: str, bins: int = 5) -> pd.DataFrame:
    return _run(q.alert_calibration, key, bins)


# --- data quality / trust ---------------------------------------------------------------------
@st.cache_data(ttl=TTL, show_spinner=False)
def freshness(key: str) -> dict:
    return _run(q.freshness, key)


@st.cache_data(ttl=TTL, show_spinner=False)
def region_site_quality(key: str, days: int) -> pd.DataFrame:
    return _run(q.region_site_quality, key, days)


@st.cache_data(ttl=TTL, show_spinner=False)
def dead_letters_by_reason(key: str, until: dt.datetime, days: int) -> pd.DataFrame:
    return _run(q.dead_letters_by_reason, key, until, days)


@st.cache_data(ttl=TTL, show_spinner=False)
def ingest_lag(key: str, limit: int = 200) -> pd.DataFrame:
    return _run(q.ingest_lag, key, limit)


@st.cache_data(ttl=TTL, show_spinner=False)
def suppressed_share(key: str, days: int) -> pd.DataFrame:
    return _run(q.suppressed_share, key, days)


@st.cache_data(ttl=TTL, show_spinner=False)
def coverage_by_horizon(key: str) -> pd.DataFrame:
    return _run(q.coverage_by_horizon, key)


@st.cache_data(ttl=TTL, show_spinner=False)
def pit_values(key: str) -> pd.DataFrame:
    return _run(q.pit_values, key)


@st.cache_data(ttl=TTL, show_spinner=False)
def relative_wis(key: str, baseline: str = "baseline") -> pd.DataFrame:
    return _run(q.relative_wis, key, baseline)


@st.cache_data(ttl=TTL, show_spinner=False)
def subscriptions(key: str) -> pd.DataFrame:
    return _run(q.subscriptions, key)


# --- writes -----------------------------------------------------------------------------------
ACK_LABELS = ("", "true_alarm", "false_alarm")


def acknowledge(settings: Settings, alert_id: str, by: str, note: str, label: str | None = None) -> None:
    """Record an acknowledgement (who, note, optional outbreak label) and refresh the alert caches.

    The write goes through the alert lifecycle (``alert_acks`` + an ``acknowledged`` event, one
    transaction), the same path as ``affectwatch alerts ack``.
    """
    from alerts.lifecycle import acknowledge as lifecycle_acknowledge

    if label not in (None, "", "true_alarm", "false_alarm"):
        raise ValueError(f"label {label!r} must be 'true_alarm', 'false_alarm' or empty")
    lifecycle_acknowledge(alert_id, by, note, label=label or None, settings=settings)
    log.info("alert acknowledged from dashboard", alert_id=alert_id, by=by, label=label or None)
    alerts_table.clear()
    alert_history.clear()
    alert_calibration.clear()


def subscribe(settings: Settings, recipient: str, regions: list[str], min_level: str, mode: str,
              digest_time: str | None, tz: str | None):
    """Add an email subscription (validated by ``alerts.subscriptions``; ValueError names bad fields)."""
    from alerts.subscriptions import subscribe as add

    sub = add(recipient, regions, min_level, mode, digest_time, tz, settings=settings)
    subscriptions.clear()
    return sub


def unsubscribe(settings: Settings, recipient: str, subscription_id: str) -> int:
    from alerts.subscriptions import unsubscribe as remove

    n = remove(recipient, subscription_id, settings=settings)
    subscriptions.clear()
    return n
