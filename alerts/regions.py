"""Human-readable region names for emails (state FIPS -> name from the vendored FluSight locations)."""
from __future__ import annotations

import csv
from functools import lru_cache

from affectwatch.settings import REPO_ROOT

LOCATIONS = REPO_ROOT / "data" / "flusight" / "locations.csv"


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    if not LOCATIONS.exists():
        return {}
    with LOCATIONS.open(newline="") as fh:
        return {row["location"]: row["location_name"] for row in csv.DictReader(fh)}


def region_name(region_id: str) -> str:
    """'06' -> 'California'; a county '06037' -> 'county 06037, California'; anything else unchanged."""
    names = _names()
    if region_id in names:
        return names[region_id]
    if len(region_id) == 5 and region_id.isdigit() and region_id[:2] in names:
        return f"county {region_id}, {names[region_id[:2]]}"
    return region_id
