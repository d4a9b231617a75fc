"""Region names, the one helper every surface uses (dashboard, emails, tables).

State names come from the vendored FluSight locations (``data/flusight/locations.csv``), county names
from the Census county list vendored with the population proxy (``data/geo/county_population_proxy.csv``).
'06' -> 'California'; '06037' -> 'Los Angeles, California'; 'US' -> 'United States'; anything else
(an H3 cell, an unknown id) unchanged.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from affectwatch.settings import REPO_ROOT

LOCATIONS = REPO_ROOT / "data" / "flusight" / "locations.csv"
COUNTIES = REPO_ROOT / "data" / "geo" / "county_population_proxy.csv"


def _read(path: Path, key: str, name: str) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {row[key]: row[name] for row in csv.DictReader(fh)}


@lru_cache(maxsize=1)
def _states() -> dict[str, str]:
    return _read(LOCATIONS, "location", "location_name")


@lru_cache(maxsize=1)
def _counties() -> dict[str, str]:
    return _read(COUNTIES, "county_fips", "name")


def region_name(region_id: str) -> str:
    if region_id == "US":
        return "United States"
    states = _states()
    if region_id in states:
        return states[region_id]
    if len(region_id) == 5 and region_id.isdigit():
        county = _counties().get(region_id, f"county {region_id}")
        state = states.get(region_id[:2])
        return f"{county}, {state}" if state else county
    return region_id


def region_label(region_id: str) -> str:
    """'California (06)'; an id without a name stays as it is."""
    name = region_name(region_id)
    return f"{name} ({region_id})" if name != region_id else region_id
