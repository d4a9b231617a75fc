"""Altair charts of the region and trust pages (colour-blind-safe colours, explicit interval bands)."""
from __future__ import annotations

import altair as alt
import pandas as pd

OBSERVED = "#000000"
FORECAST = "#0072B2"  # Okabe-Ito blue
PAST = "#CC79A7"  # Okabe-Ito reddish purple
AFFECT = "#009E73"  # Okabe-Ito bluish green
CHANGE = "#D55E00"  # Okabe-Ito vermillion
SUPPRESSED = "#969696"


def forecast_fan(observed: pd.DataFrame, forecasts: pd.DataFrame, y_title: str) -> alt.Chart:
    """Observed weekly series + latest forecast (median, 50% and 95% bands) + medians of past runs."""
    obs = observed.rename(columns={"week_end": "date", "count": "value"})[["date", "value"]].assign(series="observed")
    layers = [
        alt.Chart(obs).mark_line(color=OBSERVED, point=alt.OverlayMarkDef(color=OBSERVED, size=18)).encode(
            x=alt.X("date:T", title="week ending"),
            y=alt.Y("value:Q", title=y_title),
            tooltip=[alt.Tooltip("date:T", title="week ending"), alt.Tooltip("value:Q", title="observed", format=",.0f")],
        )
    ]
    if not forecasts.empty:
        latest_ref = forecasts["reference_date"].max()
        fc = forecasts[forecasts["reference_date"] == latest_ref].rename(columns={"target_end_date": "date"})
        past = forecasts[forecasts["reference_date"] != latest_ref].rename(columns={"target_end_date": "date"})
        tip = [alt.Tooltip("date:T", title="target week ending"), alt.Tooltip("horizon:Q"),
               alt.Tooltip("q50:Q", title="median", format=",.1f"),
               alt.Tooltip("q25:Q", title="50% low", format=",.1f"), alt.Tooltip("q75:Q", title="50% high", format=",.1f"),
               alt.Tooltip("q025:Q", title="95% low", format=",.1f"), alt.Tooltip("q975:Q", title="95% high", format=",.1f")]
        base = alt.Chart(fc).encode(x="date:T")
        layers += [
            base.mark_area(color=FORECAST, opacity=0.18).encode(y="q025:Q", y2="q975:Q", tooltip=tip),
            base.mark_area(color=FORECAST, opacity=0.35).encode(y="q25:Q", y2="q75:Q", tooltip=tip),
            base.mark_line(color=FORECAST, strokeWidth=2.5, point=True).encode(y="q50:Q", tooltip=tip),
        ]
        if not past.empty:
            past = past.assign(run=past["reference_date"].astype(str))
            layers.append(alt.Chart(past).mark_line(color=PAST, strokeDash=[4, 3], opacity=0.8).encode(
                x="date:T", y="q50:Q", detail="run:N",
                tooltip=[alt.Tooltip("run:N", title="forecast made"), alt.Tooltip("date:T"),
                         alt.Tooltip("q50:Q", title="median", format=",.1f")]))
    return alt.layer(*layers).properties(height=340).interactive(bind_y=False)


def affect_band(daily: pd.DataFrame, metric: str, changes: pd.DataFrame, title: str) -> alt.Chart:
    """Daily affect mean with ±1.96 SE band; suppressed days as grey ticks; model-version changes as rules."""
    d = daily.rename(columns={"period": "date"}).copy()
    d["lo"] = d[metric] - 1.96 * d[f"{metric}_se"]
    d["hi"] = d[metric] + 1.96 * d[f"{metric}_se"]
    ok = d[d["suppression"] == 0]
    sup = d[d["suppression"] != 0]
    x = alt.X("date:T", title="day (UTC)")
    layers = [
        alt.Chart(ok).mark_area(color=AFFECT, opacity=0.25).encode(x=x, y=alt.Y("lo:Q", title=title), y2="hi:Q"),
        alt.Chart(ok).mark_line(color=AFFECT, point=alt.OverlayMarkDef(size=12, color=AFFECT)).encode(
            x=x, y=f"{metric}:Q",
            tooltip=[alt.Tooltip("date:T"), alt.Tooltip(f"{metric}:Q", format=".3f"),
                     alt.Tooltip("lo:Q", title="95% low", format=".3f"), alt.Tooltip("hi:Q", title="95% high", format=".3f"),
                     alt.Tooltip("n_devices:Q", title="devices"), alt.Tooltip("n_scored:Q", title="scored obs.")]),
    ]
    if not sup.empty:
        layers.append(alt.Chart(sup.assign(label="suppressed")).mark_tick(color=SUPPRESSED, thickness=3, size=14).encode(
            x=x, tooltip=[alt.Tooltip("date:T"), alt.Tooltip("label:N", title="cell")]))
    if changes is not None and len(changes) > 1:
        ch = changes.iloc[1:].rename(columns={"first_day": "date"})
        layers.append(alt.Chart(ch).mark_rule(color=CHANGE, strokeDash=[6, 3], strokeWidth=2).encode(
            x="date:T", tooltip=[alt.Tooltip("model_version:N", title="new model version"), alt.Tooltip("date:T")]))
        layers.append(alt.Chart(ch).mark_text(color=CHANGE, align="left", dx=4, dy=-6, baseline="top").encode(
            x="date:T", y=alt.value(0), text="model_version:N"))
    return alt.layer(*layers).properties(height=260)


def coverage(cov: pd.DataFrame) -> alt.Chart:
    """Empirical interval coverage per horizon and model with the nominal levels as dashed rules."""
    long = cov.melt(id_vars=["model", "target", "horizon", "n"], value_vars=["cover_50", "cover_95"],
                    var_name="interval", value_name="coverage")
    long["interval"] = long["interval"].map({"cover_50": "50%", "cover_95": "95%"})
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("horizon:O", title="horizon (weeks)"), y=alt.Y("coverage:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", scale=alt.Scale(scheme="dark2")), strokeDash="interval:N",
        tooltip=["model", "interval", "horizon", alt.Tooltip("coverage:Q", format=".0%"), "n"])
    nominal = alt.Chart(pd.DataFrame({"y": [0.5, 0.95]})).mark_rule(color="#666", strokeDash=[2, 2]).encode(y="y:Q")
    return (lines + nominal).properties(height=260)


def pit_histogram(pit: pd.DataFrame) -> alt.Chart:
    return alt.Chart(pit).mark_bar(color=FORECAST).encode(
        x=alt.X("pit:Q", bin=alt.Bin(extent=[0, 1], step=0.1), title="PIT"),
        y=alt.Y("count():Q", title="forecasts"),
        column=alt.Column("horizon:O", title="horizon"), row=alt.Row("model:N"),
    ).properties(width=140, height=90)


def relative_wis(rel: pd.DataFrame) -> alt.Chart:
    base = alt.Chart(rel)
    bars = base.mark_bar(color=FORECAST).encode(
        x=alt.X("relative_wis:Q", title="relative WIS (model / baseline; < 1 is better)"),
        y=alt.Y("model:N", title="model"),
        tooltip=["model", "target", alt.Tooltip("relative_wis:Q", format=".2f"), "n_tasks"])
    one = base.mark_rule(color="#666", strokeDash=[2, 2]).encode(x=alt.datum(1.0))
    return (bars + one).properties(height=max(120, 40 * len(rel)))


def lift_intervals(lift: pd.DataFrame) -> alt.Chart:
    """WIS ratio (symptom-only / fused) with its bootstrap interval per region; > 1 means affect helps."""
    d = lift.dropna(subset=["wis_ratio"])
    base = alt.Chart(d).encode(y=alt.Y("location:N", title="region"))
    rule = base.mark_rule(color="#555").encode(
        x=alt.X("ratio_lo:Q", title="WIS ratio (> 1: affect helps)", scale=alt.Scale(zero=False)), x2="ratio_hi:Q")
    point = base.mark_point(filled=True, size=70).encode(
        x="wis_ratio:Q", color=alt.Color("verdict:N", scale=alt.Scale(range=["#0072B2", "#E69F00", "#999999"])),
        tooltip=["location", "target", alt.Tooltip("wis_ratio:Q", format=".2f"), alt.Tooltip("ratio_lo:Q", format=".2f"),
                 alt.Tooltip("ratio_hi:Q", format=".2f"), "verdict", "n_forecasts"])
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color="#666", strokeDash=[2, 2]).encode(x="x:Q")
    return (rule + point + one).properties(height=max(120, 34 * len(d)))


def calibration(cal: pd.DataFrame) -> alt.Chart:
    pts = alt.Chart(cal).mark_point(filled=True, size=80, color=FORECAST).encode(
        x=alt.X("mean_probability:Q", scale=alt.Scale(domain=[0, 1]), title="alert probability"),
        y=alt.Y("observed_share:Q", scale=alt.Scale(domain=[0, 1]), title="share labelled true alarm"),
        size="n:Q", tooltip=["mean_probability", "observed_share", "n"])
    diag = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(color="#666", strokeDash=[2, 2]).encode(x="x:Q", y="y:Q")
    return (diag + pts).properties(height=260)
