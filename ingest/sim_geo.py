"""Where the SIMULATED fleet lives below state level: county and H3-cell regions, sized by population.

* County populations come from ``data/geo/county_population_proxy.csv`` - a PROXY (real state
  populations split by the population of GeoNames places inside each county; see
  ``scripts/build_county_population.py`` and ``data/SOURCES.md``), used only to size the fleet.
* H3 regions: the chosen states' area (county polygons dissolved with geopandas) is covered with
  H3 cells; each cell's population is apportioned from the counties it overlaps, by area
  (a geopandas overlay of county and hexagon polygons in an equal-area projection).

Devices per region = clip(round(population / people_per_device), min_devices, max_devices).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from affectwatch.settings import REPO_ROOT

COUNTY_POPULATION = REPO_ROOT / "data" / "geo" / "county_population_proxy.csv"
COUNTY_GEOJSON = REPO_ROOT / "data" / "geo" / "us_counties_census2017_10m.geojson"
EQUAL_AREA = "EPSG:5070"  # NAD83 / Conus Albers


@lru_cache(maxsize=1)
def county_population() -> pd.DataFrame:
    """county_fips, name, state_fips, population_proxy (one row per county)."""
    return pd.read_csv(COUNTY_POPULATION, dtype={"county_fips": str, "state_fips": str})


def _check_states(states: list[str]) -> list[str]:
    pop = county_population()
    known = set(pop["state_fips"])
    bad = sorted(set(states) - known)
    if bad:
        raise ValueError(f"no counties known for state FIPS {bad}; known: {', '.join(sorted(known))}")
    return sorted(set(states))


def _devices(population: np.ndarray, people_per_device: float, min_devices: int, max_devices: int) -> np.ndarray:
    if people_per_device <= 0:
        raise ValueError(f"people_per_device must be > 0, got {people_per_device}")
    return np.clip(np.round(population / people_per_device), min_devices, max_devices).astype(int)


def county_devices(states: list[str], people_per_device: float = 300_000, min_devices: int = 3,
                   max_devices: int = 30) -> dict[str, int]:
    """{county FIPS: devices} for every county of the given states."""
    pop = county_population()
    sel = pop[pop["state_fips"].isin(_check_states(states))]
    n = _devices(sel["population_proxy"].to_numpy(float), people_per_device, min_devices, max_devices)
    return dict(zip(sel["county_fips"], n.tolist()))


@lru_cache(maxsize=1)
def _counties():
    import geopandas as gpd

    return gpd.read_file(COUNTY_GEOJSON)


@lru_cache(maxsize=8)
def _h3_population(states: tuple[str, ...], resolution: int) -> pd.DataFrame:
    import geopandas as gpd
    import h3
    from shapely.geometry import Polygon

    counties = _counties()
    counties = counties[counties["state_fips"].isin(states)][["fips", "state_fips", "geometry"]].copy()
    pop = county_population().set_index("county_fips")["population_proxy"]
    counties["population"] = counties["fips"].map(pop).fillna(0.0)
    area = counties.dissolve().geometry.iloc[0]
    cells = sorted(h3.geo_to_cells(area.__geo_interface__, resolution))
    hexes = gpd.GeoDataFrame({"cell": cells},
                             geometry=[Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells],
                             crs="EPSG:4326")
    eq = counties.to_crs(EQUAL_AREA)
    eq["county_area"] = eq.area
    parts = gpd.overlay(eq, hexes.to_crs(EQUAL_AREA), how="intersection", keep_geom_type=True)
    parts["population"] = parts["population"] * parts.area / parts["county_area"]
    out = parts.groupby("cell", as_index=False)["population"].sum()
    return out[out["population"] > 0].sort_values("cell").reset_index(drop=True)


def h3_devices(states: list[str], resolution: int = 4, people_per_device: float = 300_000, min_devices: int = 3,
               max_devices: int = 30) -> dict[str, int]:
    """{H3 cell: devices} covering the given states, sized by area-apportioned county population."""
    if not 0 <= resolution <= 8:
        raise ValueError(f"h3 resolution must be within 0..8 for regional cells, got {resolution}")
    cells = _h3_population(tuple(_check_states(states)), resolution)
    n = _devices(cells["population"].to_numpy(float), people_per_device, min_devices, max_devices)
    return dict(zip(cells["cell"], n.tolist()))


def assign_h3_states(cells: list[str], states: list[str]) -> dict[str, str]:
    """{cell: state FIPS}: the state whose county is nearest each cell's centre (spatial join)."""
    import geopandas as gpd
    import h3

    counties = _counties()
    counties = counties[counties["state_fips"].isin(states)][["state_fips", "geometry"]].to_crs(EQUAL_AREA)
    lat_lng = [h3.cell_to_latlng(c) for c in cells]
    pts = gpd.GeoDataFrame({"cell": cells}, geometry=gpd.points_from_xy([p[1] for p in lat_lng],
                                                                        [p[0] for p in lat_lng]), crs="EPSG:4326")
    joined = gpd.sjoin_nearest(pts.to_crs(EQUAL_AREA), counties, how="left").drop_duplicates("cell")
    return dict(zip(joined["cell"], joined["state_fips"]))


def sub_state_regions(states: list[str], h3_resolution: int | None = None, people_per_device: float = 300_000,
                      min_devices: int = 3, max_devices: int = 30) -> list[tuple[str, str, int]]:
    """(region_id, driving state FIPS, devices) for every county of ``states`` and, if
    ``h3_resolution`` is given, every H3 cell covering them."""
    states = _check_states(states)
    out = [(c, c[:2], n) for c, n in county_devices(states, people_per_device, min_devices, max_devices).items()]
    if h3_resolution is not None:
        cells = h3_devices(states, h3_resolution, people_per_device, min_devices, max_devices)
        owner = assign_h3_states(list(cells), states)
        out += [(c, owner[c], n) for c, n in cells.items()]
    return out
