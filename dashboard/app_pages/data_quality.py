"""Data quality: coverage per region and device class, dead letters, ingest lag, suppressed cells."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, state, ui

ctx = ui.context()


def _day(t) -> str:
    return f"{pd.Timestamp(t):%Y-%m-%d}" if t is not None else "—"


def _full(t) -> str | None:
    return f"{pd.Timestamp(t):%Y-%m-%d %H:%M} UTC" if t is not None else None


ui.page_header(ctx, "Data quality")

fresh = data.freshness(ctx.key)
days = state.number("Look-back (days)", "days", default=7, min_value=1, max_value=90)
anchor = fresh["last_window_end"] or fresh["last_symptom_report"]
m = st.columns(4)
m[0].metric("Newest affect window", _day(fresh["last_window_end"]), help=_full(fresh["last_window_end"]))
m[1].metric("Newest symptom report", _day(fresh["last_symptom_report"]), help=_full(fresh["last_symptom_report"]))
m[2].metric("Last ingest batch", _day(fresh["last_batch"]), help=_full(fresh["last_batch"]))
m[3].metric("Affect windows (all)", f"{int(fresh['n_windows'] or 0):,}")
if anchor is None:
    st.info("No data yet.")
    st.stop()
st.caption(f"Figures cover the {days} day(s) up to the newest affect window ({pd.Timestamp(anchor):%Y-%m-%d %H:%M} UTC).")

st.header("Devices by region and device class")
q = data.region_site_quality(ctx.key, days)
if q.empty:
    st.info("No affect windows in the look-back period.")
else:
    q = q.assign(region=[ui.region_label(r) for r in q["region_id"]],
                 completeness=q["windows_per_day"] / q["expected_per_day"])
    if not ctx.user.can("operator_counts"):
        q = data.hide_small_feed_counts(q, ctx.settings)
        st.caption("Rows below the privacy minimums show no counts; the operator (admin) role sees them.")
    st.dataframe(
        q[["region", "site_type", "last_seen", "n_devices", "windows_per_day", "expected_per_day", "completeness",
           "median_ingest_lag_min", "abstain_share", "confidence"]],
        hide_index=True, width="stretch",
        column_config={
            "completeness": st.column_config.ProgressColumn("windows/day vs expected", min_value=0, max_value=1, format="percent"),
            "windows_per_day": st.column_config.NumberColumn(format="%.1f"),
            "expected_per_day": st.column_config.NumberColumn("expected/day", format="%.1f"),
            "median_ingest_lag_min": st.column_config.NumberColumn("ingest lag (median, min)", format="%.1f"),
            "abstain_share": st.column_config.NumberColumn("abstained", format="percent"),
            "confidence": st.column_config.NumberColumn("mean confidence", format="%.2f"),
        },
    )
    st.caption("Expected windows per day assume every device reporting round the clock at its usual window length; "
               "clinics and schools close at night, so < 100% is normal for them.")

c1, c2 = st.columns(2)
with c1:
    st.header("Dead letters by reason")
    dl = data.dead_letters_by_reason(ctx.key, pd.Timestamp(anchor).to_pydatetime(), days)
    if dl.empty:
        st.success("No rejected records in the look-back period.")
    else:
        st.altair_chart(alt.Chart(dl).mark_bar(color="#D55E00").encode(
            x=alt.X("sum(n):Q", title="records"), y=alt.Y("reason:N", sort="-x"),
            tooltip=["reason", "topic", "n", "latest_detail"]).properties(height=max(120, 26 * dl["reason"].nunique())),
            width="stretch")
        ui.table_alternative(dl, "dead letters by reason and source")
with c2:
    st.header("Ingest lag")
    lag = data.ingest_lag(ctx.key)
    if lag.empty:
        st.info("No ingest batches recorded.")
    else:
        st.altair_chart(alt.Chart(lag).mark_line(point=True, color="#0072B2").encode(
            x=alt.X("committed_at:T", title="batch committed"), y=alt.Y("max_lag:Q", title="messages behind (max)"),
            tooltip=["committed_at", "max_lag", "n_messages", "n_duplicates", "seconds"]).properties(height=220),
            width="stretch")
        ui.table_alternative(lag, "ingest batches")

st.header("Suppressed region-day cells")
sup = data.suppressed_share(ctx.key, max(days, 28))
if sup.empty:
    st.info("No affect cells.")
else:
    total = sup["n_suppressed"].sum() / max(sup["n_cells"].sum(), 1)
    st.metric("Share of cells suppressed (privacy or quality)", f"{total:.1%}")
    st.altair_chart(alt.Chart(sup).mark_bar(color="#969696").encode(
        x=alt.X("period:T", title="day"), y=alt.Y("suppressed_share:Q", title="suppressed share", axis=alt.Axis(format="%")),
        tooltip=["period", "n_cells", "n_suppressed"]).properties(height=180), width="stretch")
    ui.table_alternative(sup, "suppressed cells per day")
