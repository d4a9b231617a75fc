"""Model trust: interval coverage and PIT by horizon, relative WIS, affect lift, alert calibration."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, data, ui

ctx = ui.context()
ui.page_header(ctx, "Model trust")
st.caption("How far to trust each signal: forecast intervals should contain the truth as often as they claim; "
           "PIT histograms should be flat; relative WIS < 1 beats the FluSight-style baseline.")

st.header("Interval coverage by horizon")
cov = data.coverage_by_horizon(ctx.key)
if cov.empty:
    st.info("No scored forecasts yet (scores appear once the truth for a forecast week is reported).")
else:
    st.altair_chart(charts.coverage(cov), width="stretch")
    st.caption("Solid/dashed lines: empirical 50% / 95% coverage; grey dashed rules: nominal 50% and 95%.")
    ui.table_alternative(cov, "coverage and mean WIS by model and horizon")

    st.header("PIT by horizon")
    pit = data.pit_values(ctx.key)
    if pit.empty:
        st.info("No PIT values stored.")
    else:
        st.altair_chart(charts.pit_histogram(pit))
        st.caption("A U shape means intervals are too narrow (overconfident); a hump means too wide.")
        ui.table_alternative(pit.groupby(["model", "horizon"])["pit"].describe().reset_index(), "PIT summary")

    st.header("Relative WIS by model")
    rel = data.relative_wis(ctx.key)
    if rel.empty:
        st.info("No baseline scores to compare against.")
    else:
        st.altair_chart(charts.relative_wis(rel), width="stretch")
        ui.table_alternative(rel, "relative WIS")

st.header("Does affect add anything? (backtest)")
lift = data.affect_lift(ctx.key)
if lift.empty:
    st.info("No affect-lift backtest yet.")
else:
    if lift["simulated"].fillna(False).any():
        st.warning("These backtests used **SIMULATED** affect data.", icon=":material/science:")
    st.altair_chart(charts.lift_intervals(lift.assign(location=[ui.region_label(x) if x != "overall" else "overall"
                                                                 for x in lift["location"]])), width="stretch")
    st.caption("Points: WIS(symptom-only) / WIS(with affect); bars: 90% block-bootstrap interval. Only where the whole "
               "interval is above 1 is affect treated as informative.")
    ui.table_alternative(lift, "affect lift per region")

st.header("Calibration of alert probabilities")
cal = data.alert_calibration(ctx.key)
if cal.empty:
    st.info("No acknowledged alerts with a true/false-alarm label and a probability yet; calibration appears "
            "once officials label acknowledged alerts.")
else:
    st.altair_chart(charts.calibration(cal), width="stretch")
    st.caption(f"{int(cal['n'].sum())} labelled alert(s). Points on the diagonal are well calibrated; with few labels "
               "this is only indicative.")
    ui.table_alternative(cal, "alert probability calibration")
