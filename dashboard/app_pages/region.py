"""Region detail: symptoms with forecast fan, affect with uncertainty, alert evidence, affect lift."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import charts, data, overview_data, state, survey, ui

ctx = ui.context()


def _d(value) -> str:
    return f"{pd.Timestamp(value):%Y-%m-%d}" if pd.notna(value) else "—"


regions = data.regions(ctx.key)
if not regions:
    st.title("Region detail")
    st.info("No regions with data yet.")
    st.stop()

region = state.selectbox("Region", "region", regions, format_func=ui.region_label, container=st.sidebar)
ui.page_header(ctx, f"Region detail: {ui.region_label(region)}")

alerts = data.alerts_table(ctx.key, (), ("open", "ongoing"), region, None, None)
if len(alerts):
    rank = {"red": 0, "yellow": 1, "insufficient_data": 2}
    top = alerts.iloc[alerts["level"].map(rank).fillna(3).argsort().iloc[0]]
    box = {"red": st.error, "yellow": st.warning}.get(top["level"], st.info)
    box(f"**{len(alerts)} active alert(s)** — highest: {top['level'].upper()} on {top['signal']} "
        f"(status {top['status']}). Evidence below.", icon=":material/notifications_active:")

# --- 1. symptoms and forecasts ------------------------------------------------------------------
st.header("Symptoms and forecasts")
synd = data.syndromes(ctx.key)
c1, c2, c3, c4 = st.columns(4)
syndrome = state.selectbox("Syndrome", "syndrome", synd, container=c1)
targets = data.forecast_targets(ctx.key, region)
target_opts = sorted(targets["target"].unique())
default_target = next((t for t in target_opts if syndrome and t.endswith(syndrome)), None)
target = state.selectbox("Forecast target", "target", target_opts, default=default_target, container=c2)
models = targets[targets["target"] == target]["model"].tolist() if target else []
model = state.selectbox("Model", "model", models, default=overview_data.preferred_model(models), container=c3)
n_past = state.number("Past forecast runs shown", "past", default=0, min_value=0, max_value=8, container=c4)

observed = data.symptom_series(ctx.key, region, syndrome) if syndrome else pd.DataFrame()
forecasts = data.region_forecasts(ctx.key, region, target, model, n_past) if target and model else pd.DataFrame()
if observed.empty and forecasts.empty:
    st.info(f"No {syndrome} reports or forecasts for this region.")
else:
    recent = observed[observed["week_end"] >= observed["week_end"].max() - pd.Timedelta(weeks=16)] if len(observed) else observed
    if target and syndrome and not target.endswith(syndrome):
        st.caption(f"Note: forecast target '{target}' is not the syndrome '{syndrome}' shown as observed.")
    st.altair_chart(charts.forecast_fan(recent, forecasts, f"weekly {syndrome} count"), width="stretch")
    if len(forecasts):
        ref = pd.Timestamp(forecasts["reference_date"].max()).date()
        st.caption(f"Forecast fan: {model} run for reference date {ref}; dark band = 50% interval, light band = 95% "
                   "interval, line = median. Dashed lines: medians of earlier runs. Observed values are the latest "
                   "revision; recent weeks may still be revised.")
    ui.table_alternative(recent, "observed weekly counts (latest revision)")
    if len(forecasts):
        ui.table_alternative(forecasts, "forecast quantiles (median, 50% and 95% intervals)")

# --- 2. affect --------------------------------------------------------------------------------
st.header("Affect signal (soft signal)")
daily = data.affect_daily(ctx.key, region, 120)
if daily.empty:
    st.info("No affect windows from devices in this region.")
else:
    if daily["simulated"].any():
        st.warning("Affect values in this section are **SIMULATED** (device-fleet simulator).", icon=":material/science:")
    metric = st.radio("Affect feature", ["distress", "arousal", "valence"], horizontal=True,
                      format_func={"distress": "distress share", "arousal": "arousal", "valence": "valence"}.get)
    changes = data.model_version_changes(ctx.key, region)
    st.altair_chart(charts.affect_band(daily, metric, changes, metric), width="stretch")
    st.caption("Band: ±1.96 standard errors across devices (each device weighted equally). Grey ticks: days "
               "suppressed for privacy or low quality (no value shown). Orange dashed lines: a new on-device model "
               "version appeared — scores may shift for that reason alone.")
    last = daily.iloc[-1]
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Devices (last day)", int(last["n_devices"]))
    m2.metric("Observations (last day)", f"{int(last['n_obs']):,}")
    m3.metric("Abstained", f"{last['abstain_share']:.1%}" if pd.notna(last["abstain_share"]) else "—")
    m4.metric("Mean model confidence", f"{last['confidence']:.2f}" if pd.notna(last["confidence"]) else "—")
    m5.metric("Cell status", ui.suppression_label(last["suppression"]))
    quality = [f"{label} {last[col]:.2f}" for col, label in (("pose_stability", "pose stability"), ("lighting", "lighting"),
                                                           ("snr_db", "voice SNR dB")) if pd.notna(last.get(col))]
    if quality:
        st.caption("Signal quality (last day, device means): " + ", ".join(quality))
    if len(changes) > 1:
        st.caption("Model versions: " + "; ".join(f"{r.model_version} from {r.first_day:%Y-%m-%d}" for r in changes.itertuples()))
    table = daily.assign(status=[ui.suppression_label(c) for c in daily["suppression"]])
    ui.table_alternative(table, "daily affect cells (suppressed cells have no values)")

# --- 2b. survey affect (REAL) -----------------------------------------------------------------
survey.region_section(ctx, region)

# --- 3. alert evidence ------------------------------------------------------------------------
st.header("Alerts and evidence")
all_alerts = data.alerts_table(ctx.key, (), (), region, None, None)
if all_alerts.empty:
    st.caption("No alerts for this region.")
for a in all_alerts.itertuples():
    with st.expander(f"{a.level.upper()} · {a.signal} · {a.status} · since {pd.Timestamp(a.first_seen):%Y-%m-%d}",
                     expanded=a.status in ("open", "ongoing")):
        cols = st.columns(4)
        cols[0].metric("Statistic / threshold", f"{a.statistic:.2f} / {a.threshold:.2f}" if pd.notna(a.statistic) and pd.notna(a.threshold) else "—")
        cols[1].metric("p-value", f"{a.p_value:.4f}" if pd.notna(a.p_value) else "—")
        cols[2].metric("Exceedance probability", f"{a.probability:.0%}" if pd.notna(a.probability) else "—")
        cols[3].metric("Observed vs expected", f"{a.observed:,.2f} vs {a.expected:,.2f}" if pd.notna(a.observed) and pd.notna(a.expected) else "—")
        st.write(f"Rule **{a.rule or '—'}**, detectors: {a.detectors or 'none (abstained)'}; data {_d(a.data_start)} to "
                 f"{_d(a.data_end)}" + (" — **provisional** (may be revised)" if a.provisional else ""))
        if a.acknowledged:
            st.success(f"Acknowledged by {a.acknowledged_by} at {pd.Timestamp(a.acknowledged_at):%Y-%m-%d %H:%M}: {a.ack_note or ''}")
        try:
            st.json(json.loads(a.evidence) if a.evidence else {}, expanded=False)
        except (TypeError, ValueError):
            st.code(str(a.evidence))
        st.dataframe(data.alert_history(ctx.key, a.alert_id), hide_index=True, width="stretch")
        st.page_link("app_pages/alerts.py", label="Open in Alerts (acknowledge)", query_params={"alert": a.alert_id, "region": region})

# --- 4. is affect informative here? ---------------------------------------------------------
st.header("Is affect informative here?")
lift = data.affect_lift(ctx.key, region)
own = lift[lift["location"] == region]
if own.empty:
    st.info("No backtest of the affect-augmented model for this region yet.")
for r in own.itertuples():
    if pd.notna(r.wis_ratio):
        msg = (f"**{r.verdict}** for {r.target}: WIS ratio symptom-only / with affect = **{r.wis_ratio:.2f}** "
               f"(90% bootstrap interval {r.ratio_lo:.2f}–{r.ratio_hi:.2f}; > 1 means affect improves forecasts), "
               f"from {r.n_forecasts} backtest forecasts")
        if pd.notna(r.lead):
            msg += f"; best lead {r.lead:g} {r.lead_unit or ''} ({r.lead_lo:g}–{r.lead_hi:g})"
        (st.success if r.informative else st.info)(msg + ".")
    else:
        st.warning(f"**{r.verdict}** for {r.target} ({r.n_forecasts or 0} backtest forecasts).")
    if r.simulated:
        st.caption("This backtest used SIMULATED affect data: it shows the method, not evidence about real affect.")
overall = lift[lift["location"] == "overall"]
if len(overall):
    o = overall.iloc[0]
    st.caption(f"All regions together: {o['verdict']}" + (f" (ratio {o['wis_ratio']:.2f}, {o['ratio_lo']:.2f}–{o['ratio_hi']:.2f})" if pd.notna(o["wis_ratio"]) else ""))
ui.table_alternative(lift, "affect lift (backtest)")
