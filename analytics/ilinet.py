"""ILINet (CDC FluView, states, 2010 week 40 .. 2023 week 39) from the vendored ``data/ili`` file, and
the MMWR-week / influenza-season calendar every forecasting module uses.

ILINet is published about one week after the week ends (FluView appears the following Friday), so
a forecaster on reference date ``R`` (a Saturday) knows ILINet weeks ending on or before ``R - 7``:
:func:`published_by` applies that rule.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from affectwatch import mmwr
from affectwatch.settings import REPO_ROOT

DATA = REPO_ROOT / "data"
ILI_CSV = DATA / "ili" / "ILINet_states_2010w40-2023w39.csv"
PUBLICATION_LAG_DAYS = 7  # ILINet for the week ending D is public by D + 7 days
SEASON_START_MONTH = 8  # a season runs August .. July (MMWR week ~31 .. ~30); flu activity Oct .. May


def season_start_year(dates) -> np.ndarray:
    """Season of each date, named by its first year (2022 = season 2022-23)."""
    d = pd.DatetimeIndex(dates)
    return np.where(d.month >= SEASON_START_MONTH, d.year, d.year - 1)


def season_week(dates) -> np.ndarray:
    """Weeks since 1 August of the date's season (0 .. 52)."""
    d = pd.DatetimeIndex(dates)
    years = season_start_year(d)
    start = (years - 1970).astype("datetime64[Y]") + np.timedelta64(SEASON_START_MONTH - 1, "M")
    days = (d.values.astype("datetime64[D]") - start.astype("datetime64[M]").astype("datetime64[D]")).astype(int)
    return np.asarray(days // 7, dtype=float)


def season_label(start_year: int) -> str:
    return f"{start_year}-{(start_year + 1) % 100:02d}"


@lru_cache(maxsize=1)
def populations() -> dict[str, float]:
    """Location code (2-digit FIPS, ``US``) -> population, from ``data/flusight/locations.csv``."""
    locs = pd.read_csv(DATA / "flusight" / "locations.csv", dtype={"location": str})
    return {str(k): float(v) for k, v in zip(locs["location"], locs["population"]) if np.isfinite(v)}


@lru_cache(maxsize=1)
def _ili_states() -> pd.DataFrame:
    ili = pd.read_csv(ILI_CSV, skiprows=1, na_values="X")
    locs = pd.read_csv(DATA / "flusight" / "locations.csv", dtype={"location": str})
    fips = dict(zip(locs["location_name"], locs["location"]))
    ili["location"] = ili["REGION"].map(fips)
    ili = ili.dropna(subset=["location", "ILITOTAL"])
    ili["date"] = pd.to_datetime([mmwr.week_end(int(y), int(w)) for y, w in zip(ili["YEAR"], ili["WEEK"])])
    return ili.rename(columns={"ILITOTAL": "value"})[["location", "date", "value"]].reset_index(drop=True)


def ili_states() -> pd.DataFrame:
    """ILINet weekly ILI visit counts (ILITOTAL) per state: ``location, date, value`` (NYC, VI and
    missing 'X' dropped). A copy: callers may modify it."""
    return _ili_states().copy()


def published_by(ili: pd.DataFrame, reference_date) -> pd.DataFrame:
    """ILINet rows a forecaster had on ``reference_date`` (weeks ending >= 7 days before it)."""
    cutoff = pd.Timestamp(reference_date) - pd.Timedelta(days=PUBLICATION_LAG_DAYS)
    return ili[ili["date"] <= cutoff]
