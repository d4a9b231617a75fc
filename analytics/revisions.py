"""Reporting revisions ("backfill"): the newest weeks of a data vintage are often revised later.

With an ``as_of`` column (one row per vintage, location and week), :func:`learn` measures, from the
vintages published on or before the reference date only, how the value first reported ``lag``
weeks before a vintage's newest week (lag 0 = the newest week) compares with the value known at
the reference date once it has settled (reported ``SETTLE_WEEKS`` or more weeks later):
the factor is ``exp(median(log1p(settled) - log1p(first)))`` pooled over locations and weeks.
:func:`correct` multiplies the panel's newest weeks by those factors, so the forecast starts from
the level the data will be revised to. Without vintages nothing is learned or changed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger

log = get_logger(__name__)

MAX_LAG = 2  # correct the newest two weeks of a vintage
SETTLE_WEEKS = 4  # a week counts as settled once reported this many weeks after it ended
MIN_PAIRS = 20  # (first, settled) pairs needed per lag, else no correction at that lag


def learn(target: pd.DataFrame, reference_date, max_lag: int = MAX_LAG) -> dict[int, float]:
    """Revision factors per lag learned from vintages with ``as_of`` <= reference date; {} if the
    data have no ``as_of`` column or too few settled pairs."""
    if "as_of" not in target.columns:
        return {}
    ref = pd.Timestamp(reference_date)
    known = target[(target["as_of"] <= ref) & (target["date"] <= ref)]
    if known.empty:
        return {}
    newest = known.groupby(["as_of", "location"])["date"].transform("max")
    lag = (newest - known["date"]).dt.days // 7
    first = known[lag < max_lag].assign(lag=lag[lag < max_lag])
    first = first.sort_values("as_of").drop_duplicates(["location", "date", "lag"], keep="first")
    latest = known.sort_values("as_of").drop_duplicates(["location", "date"], keep="last")
    pairs = first.merge(latest, on=["location", "date"], suffixes=("", "_settled"))
    settled = (pairs["as_of_settled"] - pairs["date"]).dt.days >= 7 * SETTLE_WEEKS
    pairs = pairs[settled & (pairs["as_of_settled"] > pairs["as_of"])]
    out = {}
    for k, g in pairs.groupby("lag"):
        if len(g) >= MIN_PAIRS:
            out[int(k)] = float(np.exp(np.median(np.log1p(g["value_settled"]) - np.log1p(g["value"]))))
    return out


def correct(y: pd.DataFrame, known: pd.DataFrame, factors: dict[int, float]) -> pd.DataFrame:
    """Multiply each location's newest weeks in the vintage ``known`` (lag 0, 1, ...) by the
    factors. ``y`` is the wide panel (dates x locations) built from the vintage ``known`` (whose
    newest week per location is lag 0 even when reporting latency hides it from ``y``)."""
    if not factors or y.empty:
        return y
    y = y.copy()
    newest = known.groupby("location")["date"].max()
    for loc in y.columns:
        if loc not in newest.index:
            continue
        for k, f in factors.items():
            d = newest[loc] - pd.Timedelta(days=7 * k)
            if d in y.index and np.isfinite(y.at[d, loc]):
                y.at[d, loc] = y.at[d, loc] * f
    return y
