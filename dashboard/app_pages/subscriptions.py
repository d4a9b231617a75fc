"""Subscriptions (admin only): who gets alert emails for which regions and levels, immediately or as a digest."""
from __future__ import annotations

import streamlit as st

from dashboard import data, ui

ctx = ui.context()
if not ctx.user.can("subscriptions"):
    st.error("Managing subscriptions requires the admin role.")
    st.stop()
ui.page_header(ctx, "Subscriptions")

subs = data.subscriptions(ctx.key)
st.dataframe(subs, hide_index=True, width="stretch",
             column_config={"regions": st.column_config.TextColumn("regions ('*' = all)")})
st.caption(f"{int(subs['active'].sum()) if len(subs) else 0} active subscription(s). Emails go out from the "
           "scheduler's outbox; each alert is sent once per recipient.")

left, right = st.columns(2)
with left, st.form("subscribe", clear_on_submit=True):
    st.subheader("Add a subscription")
    recipient = st.text_input("Recipient email")
    regions = st.multiselect("Regions (empty = all regions)", data.regions(ctx.key), format_func=ui.region_label)
    min_level = st.radio("Minimum level", ["yellow", "red"], horizontal=True)
    mode = st.radio("Delivery", ["immediate", "digest"], horizontal=True)
    digest_time = st.text_input("Digest time (local HH:MM, digests only)", value="07:30")
    tz = st.text_input("Time zone (IANA, digests only)", value=ctx.settings.alerts.timezone)
    if st.form_submit_button("Subscribe", type="primary"):
        try:
            sub = data.subscribe(ctx.settings, recipient, regions or ["*"], min_level, mode,
                                 digest_time if mode == "digest" else None, tz if mode == "digest" else None)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.success(f"Subscribed {sub.recipient} ({sub.subscription_id}).")
            st.rerun()

with right:
    st.subheader("Deactivate")
    active = subs[subs["active"]] if len(subs) else subs
    if active.empty:
        st.caption("No active subscriptions.")
    else:
        choice = st.selectbox("Subscription", active["subscription_id"].tolist(),
                              format_func=lambda i: f"{i} · {active.set_index('subscription_id').loc[i, 'recipient']}")
        if st.button("Deactivate"):
            row = active.set_index("subscription_id").loc[choice]
            data.unsubscribe(ctx.settings, row["recipient"], choice)
            st.success(f"Deactivated {choice}.")
            st.rerun()
