"""Shared page furniture: the per-run context, banners on every page, table alternatives, labels."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from affectwatch import regions
from affectwatch.privacy import Suppression
from affectwatch.settings import Settings
from dashboard import data
from dashboard.auth import User

_CTX = "_aw_ctx"
SOFT_SIGNAL = ("Affect (valence/arousal estimated by on-device models) is a **soft, contested signal**: "
               "it can shift with model versions, device placement and lighting, and is shown with its "
               "uncertainty. Use it as context next to symptom data, never as a diagnosis.")


@dataclass(frozen=True)
class Context:
    settings: Settings
    key: str  # warehouse cache key (dashboard.data.warehouse_key)
    user: User


def load_settings() -> Settings:
    """Settings from the environment (AFFECTWATCH_DATA_DIR, AFFECTWATCH_DASHBOARD__USERS_FILE, ...)."""
    return Settings()


def set_context(ctx: Context) -> None:
    st.session_state[_CTX] = ctx


def context() -> Context:
    """The signed-in context of this session; a page opened without it stops (no anonymous access)."""
    ctx = st.session_state.get(_CTX)
    if not isinstance(ctx, Context):
        st.error("Please sign in from the dashboard's start page.")
        st.stop()
    return ctx


def banners(ctx: Context) -> dict:
    """Freshness, simulated-data and soft-signal notices shown at the top of every page."""
    fresh = data.freshness(ctx.key)
    now = dt.datetime.now(dt.timezone.utc)
    limit = ctx.settings.dashboard.stale_after_hours
    newest = [t for t in (fresh["last_window_end"], fresh["last_symptom_report"]) if t is not None]
    if not newest:
        st.warning("No data in the warehouse yet: start the ingest worker or load symptom data.", icon=":material/hourglass_empty:")
    else:
        parts, stale = [], False
        for label, t in (("affect window", fresh["last_window_end"]), ("symptom report", fresh["last_symptom_report"])):
            if t is None:
                continue
            age_h = (now - pd.Timestamp(t).to_pydatetime()).total_seconds() / 3600
            stale |= age_h > limit
            parts.append(f"newest {label} {pd.Timestamp(t):%Y-%m-%d %H:%M} UTC ({_age(age_h)} ago)")
        if stale:
            st.warning(f"**Data are stale** (older than {limit:g} h): " + "; ".join(parts) + ".", icon=":material/warning:")
    if fresh["n_simulated"]:
        share = fresh["n_simulated"] / max(fresh["n_windows"], 1)
        st.info(f"**Affect data are SIMULATED**: {share:.0%} of affect windows come from the device-fleet "
                "simulator, not from real devices.", icon=":material/science:")
    return fresh


def soft_signal_note() -> None:
    st.caption(SOFT_SIGNAL)


def page_header(ctx: Context, title: str) -> dict:
    """Title plus the notices every page carries: open mode, stale data, simulated affect, soft signal."""
    st.title(title)
    if ctx.user.method == "open":
        st.info("Open local mode: no authentication is configured, so the dashboard is served on loopback only "
                "and everyone who can reach it has the admin role.", icon=":material/lock_open:")
    try:
        fresh = banners(ctx)
    except data.WarehouseUnavailable as exc:
        st.error(str(exc))
        st.stop()
    soft_signal_note()
    return fresh


def _age(hours: float) -> str:
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


def table_alternative(df: pd.DataFrame, label: str, **kw) -> None:
    """Accessible table alternative of a chart, in an expander."""
    with st.expander(f"Table: {label}"):
        st.dataframe(df, hide_index=True, width="stretch", **kw)


region_label = regions.region_label  # the one region-name helper (affectwatch.regions)


def suppression_label(code) -> str:
    if code is None or pd.isna(code):
        return Suppression.NO_DATA.label
    return Suppression(int(code)).label
