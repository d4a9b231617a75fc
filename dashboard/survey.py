"""Survey affect on the dashboard (modality survey, labelled REAL): reads of the suppressed view
``survey_affect_region_day`` (cached like dashboard/data.py) and the region-page section."""
from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui

LABEL = "REAL"
INDICATOR_TITLES = {
    "wdepressed_7d": "Felt depressed most or all of the time, past 7 days (% of people)",
    "wworried_finances": "Worried about household finances next month (% of people)",
    "wili": "Self-reported influenza-like illness (% of people; a symptom signal)",
}


def _indicators(con, alias: str) -> list[str]:
    return [r[0] for r in con.execute("select distinct indicator from analyst.main.survey_affect_region_day "
                                      "order by indicator").fetchall()]


def _series(con, alias: str, region: str, indicator: str) -> pd.DataFrame:
    return con.execute(
        """select date, value, stderr, value_lo, value_hi, sample_size, issue, suppression, suppression_label, source
           from analyst.main.survey_affect_region_day where region_id = ? and indicator = ? order by date""",
        [region, indicator]).df()


def _week(con, alias: str, week: dt.date, indicator: str) -> pd.DataFrame:
    """The Saturday ending the MMWR week (the indicators are already 7-day smoothed) per region."""
    sat = week + dt.timedelta(days=6)
    return con.execute(
        """select region_id, value, value_lo, value_hi, sample_size, suppression, source
           from analyst.main.survey_affect_region_day where indicator = ? and date = ?""", [indicator, sat]).df()


def _install(con) -> None:
    from analyst.views import install_views

    if not con.execute("select 1 from duckdb_databases() where database_name = 'analyst'").fetchall():
        install_views(con)


def _query(fn, key: str, *args):
    con = data.connection(key)
    _install(con)
    try:
        return fn(con, data._alias(key), *args)
    except Exception as exc:  # the warehouse may predate migration 050 (no survey_affect table)
        if "survey_affect" in str(exc):
            return pd.DataFrame() if fn is not _indicators else []
        raise


@st.cache_data(ttl=data.TTL, show_spinner=False)
def indicators(key: str) -> list[str]:
    return _query(_indicators, key)


@st.cache_data(ttl=data.TTL, show_spinner=False)
def series(key: str, region: str, indicator: str) -> pd.DataFrame:
    return _query(_series, key, region, indicator)


@st.cache_data(ttl=data.TTL, show_spinner=False)
def week(key: str, week_start: dt.date, indicator: str) -> pd.DataFrame:
    return _query(_week, key, week_start, indicator)


def band_chart(df: pd.DataFrame, title: str) -> alt.LayerChart:
    base = alt.Chart(df).encode(x=alt.X("date:T", title="day"))
    band = base.mark_area(opacity=0.3).encode(y=alt.Y("value_lo:Q", title=title), y2="value_hi:Q")
    line = base.mark_line().encode(y="value:Q", tooltip=["date:T", alt.Tooltip("value:Q", format=".2f"),
                                                           alt.Tooltip("stderr:Q", format=".2f"), "sample_size:Q"])
    return band + line


def region_section(ctx, region: str) -> None:
    """Survey affect for one region: series with its ±1.96·stderr band, labelled REAL."""
    from dashboard import state

    inds = indicators(ctx.key)
    if not inds:
        st.caption("No survey affect loaded (`affectwatch load-affect FILE --format covidcast` adds REAL survey "
                   "indicators here).")
        return
    st.header("Survey affect (REAL, population survey)")
    ind = state.selectbox("Survey indicator", "indicator", inds, default="wdepressed_7d",
                          format_func=lambda i: INDICATOR_TITLES.get(i, i))
    df = series(ctx.key, region, ind)
    if df.empty:
        st.info(f"No survey estimates of {ind} for this region.")
        return
    st.success(f"**{LABEL}** data: survey estimates measured on real people ({df['source'].iloc[0]}), "
               "not device measurements.", icon=":material/verified:")
    st.altair_chart(band_chart(df, INDICATOR_TITLES.get(ind, ind)), width="stretch")
    hidden = int((df["suppression"] != 0).sum())
    st.caption("Band: ±1.96 standard errors of the survey estimate (latest issue of each day). "
               + (f"{hidden} day(s) suppressed: sample size below the minimum (no value shown)." if hidden else ""))
    ui.table_alternative(df, f"survey affect {ind} (REAL; suppressed cells have no values)")
