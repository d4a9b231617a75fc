"""County and H3 coverage of the simulator: regions, fleet sizes by population, windows per county/cell."""
from __future__ import annotations

import h3
import pandas as pd
import pytest

from ingest import sim_geo
from ingest import simulate as sim


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    return sim.load_series()


def test_population_proxy_covers_every_county_and_keeps_state_totals():
    pop = sim_geo.county_population()
    assert len(pop) > 3100 and pop["county_fips"].is_unique and (pop["population_proxy"] > 0).all()
    states = pd.read_csv(sim_geo.REPO_ROOT / "data" / "flusight" / "locations.csv", dtype={"location": str})
    total = pop.groupby("state_fips")["population_proxy"].sum()
    real = states.set_index("location")["population"].reindex(total.index)
    assert ((total - real).abs() <= 60).all()  # rounding only: the proxy splits the real state total
    la, alpine = (pop.set_index("county_fips").loc[c, "population_proxy"] for c in ("06037", "06003"))
    assert la > 100 * alpine  # Los Angeles vs Alpine County: the city join orders them


def test_county_and_h3_regions_for_rhode_island():
    regions = sim_geo.sub_state_regions(["44"], h3_resolution=4, people_per_device=50_000)
    counties = [r for r in regions if r[0].isdigit()]
    cells = [r for r in regions if not r[0].isdigit()]
    assert sorted(c for c, _, _ in counties) == ["44001", "44003", "44005", "44007", "44009"]
    assert all(state == "44" and n >= 3 for _, state, n in regions)
    assert dict((c, n) for c, _, n in counties)["44007"] > dict((c, n) for c, _, n in counties)["44005"]  # Providence
    assert cells and all(h3.is_valid_cell(c) and h3.get_resolution(c) == 4 for c, _, _ in cells)
    with pytest.raises(ValueError, match="no counties known for state FIPS"):
        sim_geo.sub_state_regions(["99"])


def test_simulated_windows_cover_counties_and_cells(series):
    frame = sim.affect_frame(series, start="2023-01-02", end="2023-01-03", regions=["44", "06"], devices_per_region=4,
                             window_minutes=240, seed=1, counties=["44"], h3_resolution=4, model_change="2099-01-01")
    got = set(frame["region_id"].astype(str))
    assert {"44", "06", "44001", "44003", "44005", "44007", "44009"} <= got
    assert any(h3.is_valid_cell(r) for r in got)
    assert frame["simulated"].all()
    devices = frame.groupby("region_id")["device_id"].nunique()
    assert devices["44007"] >= 3 and devices["44"] <= 4
    with pytest.raises(ValueError, match="are not in the symptom series"):
        sim.affect_frame(series, start="2023-01-02", end="2023-01-03", counties=["99"])
