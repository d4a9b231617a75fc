"""NHSN influenza admissions per state from the vendored FluSight target data (``data/flusight``,
weeks ending 2022-02-05 .. 2023-09-30): the admissions history a newer target file may lack.

A FluSight file of a later season can begin in the fall (the hub's 2024-25 time series starts with the
week ending 2 November 2024). From such a file alone the pooled models see no admissions peak and no
decline, and put every week on a scale set by the season's own rise so far. So for a target of
influenza admissions (syndrome ``flu_admissions`` or FluSight's ``flu hosp``) they prepend, per location, the vendored weeks that
were published by the reference date (a week after the week ends, as for ILINet) and come before the
location's first observed week in the file (:func:`history_before`). A file that already holds those
weeks, as the vendored one does, is left as it is.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from analytics.ilinet import DATA, published_by

NHSN_CSV = DATA / "flusight" / "target-hospital-admissions.csv"


@lru_cache(maxsize=1)
def _nhsn() -> pd.DataFrame:
    from analytics.hubverse import read_target_csv  # here: hubverse imports the forecasting modules

    return read_target_csv(NHSN_CSV)


def nhsn_admissions() -> pd.DataFrame:
    """``date, location, value`` of every vendored state week (NA values dropped; the national ``US``
    series left out: the validation's admissions fold is the states'). A copy: callers may modify it.
    :func:`history_before` keeps ``US``, for a target file that forecasts it."""
    df = _nhsn()
    return df[df["location"] != "US"].reset_index(drop=True)


def history_before(first_weeks: dict[str, pd.Timestamp], reference_date) -> dict[str, tuple[pd.DatetimeIndex, np.ndarray]]:
    """Per location of ``first_weeks`` (its first observed week in the target): the vendored weeks
    published by ``reference_date`` that end before that week, as (dates, values); locations without
    such weeks are left out."""
    known = published_by(_nhsn(), reference_date)
    out = {}
    for loc, g in known[known["location"].isin(list(first_weeks))].groupby("location", sort=True):
        g = g[g["date"] < first_weeks[loc]].sort_values("date")
        if len(g):
            out[str(loc)] = (pd.DatetimeIndex(g["date"]), g["value"].to_numpy(dtype=float))
    return out
