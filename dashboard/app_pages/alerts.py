"""Alerts: filterable table, acknowledgement with a note (written to the warehouse), CSV download."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import data, state, ui

LEVELS = ["red", "yellow", "insufficient_data"]
STATUSES = ["open", "ongoing", "resolved"]
ALL = "all"

ctx = ui.context()


def _d(value) -> str:
    return f"{pd.Timestamp(value):%Y-%m-%d}" if pd.notna(value) else "—"


ui.page_header(ctx, "Alerts")

with st.container(border=True):
    f1, f2, f3, f4, f5 = st.columns([1.3, 1.3, 1.3, 1, 1])
    levels = state.multiselect("Level", "level", LEVELS, container=f1, placeholder="all levels")
    statuses = state.multiselect("Status", "status", STATUSES, container=f2, placeholder="all statuses")
    region = state.selectbox("Region", "region", [ALL] + data.regions(ctx.key), default=ALL, container=f3,
                             format_func=lambda r: "(all regions)" if r == ALL else ui.region_label(r))
    since = state.date_input("Updated on/after", "since", container=f4, value=None)
    until = state.date_input("First seen on/before", "until", container=f5, value=None)

table = data.alerts_table(ctx.key, tuple(levels), tuple(statuses), None if region == ALL else region, since, until)
st.caption(f"{len(table)} alert(s). Filters are part of the page address: copy the link to share this view.")

shown = table.assign(
    region=[ui.region_label(r) for r in table["region_id"]],
    detail=["region?" + "&".join([f"region={r}"]) for r in table["region_id"]],
)[["alert_id", "region", "signal", "level", "status", "acknowledged", "acknowledged_by", "ack_note", "detectors",
   "statistic", "threshold", "p_value", "probability", "provisional", "first_seen", "last_updated", "detail"]]
st.dataframe(
    shown, hide_index=True, width="stretch",
    column_config={
        "detail": st.column_config.LinkColumn("Region detail", display_text="open ↗"),
        "probability": st.column_config.NumberColumn(format="percent"),
        "p_value": st.column_config.NumberColumn(format="%.4f"),
        "ack_note": "note",
    },
)

if ctx.user.can("download"):
    st.download_button("Download CSV", table.drop(columns=["evidence"]).to_csv(index=False).encode(),
                       file_name="affectwatch_alerts.csv", mime="text/csv", icon=":material/download:")
else:
    st.caption("CSV download requires the analyst role.")

if table.empty:
    st.stop()

st.subheader("Alert detail and acknowledgement")
alert_id = state.selectbox("Alert", "alert", table["alert_id"].tolist())
a = table[table["alert_id"] == alert_id].iloc[0]
st.page_link("app_pages/region.py", label=f"Open region detail: {ui.region_label(a['region_id'])}",
             query_params={"region": a["region_id"]}, icon=":material/monitoring:")
c = st.columns(4)
c[0].metric("Level", a["level"])
c[1].metric("Status", a["status"])
c[2].metric("Statistic / threshold", f"{a['statistic']:.2f} / {a['threshold']:.2f}" if pd.notna(a["statistic"]) and pd.notna(a["threshold"]) else "—")
c[3].metric("Exceedance probability", f"{a['probability']:.0%}" if pd.notna(a["probability"]) else "—")
st.caption(f"Signal **{a['signal']}**, rule {a['rule'] or '—'}, detectors {a['detectors'] or 'none (abstained)'}; "
           f"data {_d(a['data_start'])} to {_d(a['data_end'])}" + (" — **provisional**, may be revised" if a["provisional"] else ""))
try:
    st.json(json.loads(a["evidence"]) if a["evidence"] else {}, expanded=False)
except (TypeError, ValueError):
    st.code(str(a["evidence"]))
st.markdown("**History** (events and acknowledgements, visible to everyone)")
st.dataframe(data.alert_history(ctx.key, alert_id), hide_index=True, width="stretch")

if ctx.user.can("acknowledge"):
    with st.form("ack", clear_on_submit=True):
        note = st.text_area("Note (what you checked, what you decided)", max_chars=2000)
        label = st.radio("Outbreak label (optional, used to calibrate alert probabilities)", data.ACK_LABELS,
                         format_func={"": "not yet known", "true_alarm": "true alarm", "false_alarm": "false alarm"}.get,
                         horizontal=True)
        if st.form_submit_button("Acknowledge", type="primary"):
            if not note.strip():
                st.error("Write a short note so colleagues know what was checked.")
            else:
                data.acknowledge(ctx.settings, alert_id, ctx.user.name, note.strip(), label or None)
                st.success(f"Acknowledged {alert_id} as {ctx.user.name}.")
                st.rerun()
else:
    st.caption("Acknowledging alerts requires the official role.")
