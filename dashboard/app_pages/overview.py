"""Overview map: regions coloured by alert level or a chosen signal, one MMWR week at a time."""
from __future__ import annotations

import time

import streamlit as st

from dashboard import data, maps, overview_data, state, ui

PLAY_WEEKS = 12  # weeks shown by one press of "Play weeks"
ctx = ui.context()
ui.page_header(ctx, "Overview map")

weeks = data.weeks(ctx.key)
if not weeks:
    st.info("The warehouse holds no affect windows, symptom reports or alerts yet.")
    st.stop()

signals = overview_data.SIGNALS
c1, c2, c3, c4 = st.columns([1.3, 1, 1, 1.2])
signal = state.selectbox("Colour regions by", "signal", list(signals), default="alert",
                         format_func=lambda s: signals[s].title, container=c1)
geos = overview_data.geographies(data.regions(ctx.key))
geo = state.selectbox("Geography", "geo", geos, default="state" if "state" in geos else geos[0],
                      format_func=lambda g: {"state": "States", "county": "Counties", "h3": "H3 cells"}[g], container=c2)
syndrome = target = model = indicator = None
if signal == "rate":
    syndrome = state.selectbox("Syndrome", "syndrome", data.syndromes(ctx.key), container=c3)
if signal == "growth":
    targets = data.forecast_targets(ctx.key)
    target = state.selectbox("Forecast target", "target", sorted(targets["target"].unique()), container=c3)
    models = targets[targets["target"] == target]["model"].tolist() if target else []
    model = state.selectbox("Model", "model", models, default=overview_data.preferred_model(models), container=c4)
if signal == "survey":
    from dashboard import survey

    indicator = state.selectbox("Survey indicator", "indicator", survey.indicators(ctx.key), default="wdepressed_7d",
                                container=c3)

# --- week stepper / animation ---------------------------------------------------------------
s1, s2, s3, s4 = st.columns([0.5, 6, 0.5, 1])
s1.button("◀", help="Previous week", on_click=state.step_week, args=(weeks, -1), key="week_prev")
s3.button("▶", help="Next week", on_click=state.step_week, args=(weeks, 1), key="week_next")
week = state.week_slider("MMWR week (Sunday start)", weeks, container=s2)
play = s4.button("▶ Play weeks", help=f"Animate the map through up to {PLAY_WEEKS} weeks from the selected one")


def frame(w):
    df = overview_data.map_frame(ctx, signal, geo, w, syndrome=syndrome, target=target, model=model, indicator=indicator)
    spec = maps.MapLayerSpec(geography=geo, kind=signals[signal].kind, title=signals[signal].title,
                             value_format=signals[signal].fmt)
    deck, vmin, vmax = maps.build_deck(df, spec, ctx.settings.dashboard.basemap_style)
    return df, spec, deck, vmin, vmax


df, spec, deck, vmin, vmax = frame(week)
alt = f"Map of {spec.title} by {geo} for the week of {week:%d %B %Y}; the same values are in the table below."
if play:
    holder, caption = st.empty(), st.empty()
    for w in weeks[weeks.index(week):][:PLAY_WEEKS]:
        _, _, d, _, _ = frame(w)
        caption.caption(f"Week of {w:%d %b %Y}")
        holder.pydeck_chart(d, height=480, alt=alt)
        time.sleep(0.8)
    state.put("week", w)
else:
    event = st.pydeck_chart(deck, height=480, on_select="rerun", selection_mode="single-object", key="overview_map",
                            alt=alt)
    picked = overview_data.picked_region(event)
    if picked:
        state.put("region", picked)
st.markdown(maps.legend_html(spec, vmin, vmax), unsafe_allow_html=True)
st.caption(signals[signal].help)

region = state.get("region")
regions = data.regions(ctx.key)
cols = st.columns([2, 1])
focus = state.selectbox("Region (click the map or choose)", "region", regions, default=region, optional=True,
                        format_func=ui.region_label, container=cols[0], placeholder="choose a region")
if focus:
    cols[1].page_link("app_pages/region.py", label=f"Open region detail: {ui.region_label(focus)} →",
                      query_params={"region": focus, "week": week.isoformat()}, icon=":material/monitoring:")

ui.table_alternative(overview_data.map_table(df, spec), f"{spec.title}, week of {week:%d %b %Y}")
