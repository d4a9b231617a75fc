"""Small-cell suppression holds for any data: a property test on a real DuckLake warehouse."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from affectwatch.settings import Settings
from analyst.views import install_views
from tests.test_privacy_surfaces import load
from tests.fixtures.warehouse import open_migrated

K_MIN, MIN_DEVICES = 11, 3
T0 = datetime(2024, 1, 7, tzinfo=timezone.utc)  # a Sunday
VALUE_COLUMNS = ("valence_mean", "arousal_mean", "distress_share", "confidence_mean", "abstain_share",
                 "pose_stability", "lighting", "snr_db")

window = st.fixed_dictionaries({
    "region": st.sampled_from(["06", "36", "06037"]),
    "device": st.integers(0, 4),
    "day": st.integers(0, 9),  # two MMWR weeks
    "hour": st.integers(0, 2),
    "n_observations": st.integers(1, 40),  # below k_min too: defence in depth if ingest let one through
    "abstained_share": st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    "valence": st.floats(-1, 1),
})


@pytest.fixture(scope="module")
def small_cell_warehouse(tmp_path_factory, migrated_template):
    s = Settings(data_dir=tmp_path_factory.mktemp("privacy") / "var")
    con = open_migrated(migrated_template, s)
    install_views(con, s)
    yield con
    con.close()


def _rows(windows: list[dict]) -> pd.DataFrame:
    rows = []
    for w in windows:
        start = T0 + timedelta(days=w["day"], hours=w["hour"])
        n = w["n_observations"]
        rows.append({
            "device_id": f"dev{w['region']}x{w['device']}", "region_id": w["region"], "site_type": "ed",
            "window_start": start, "window_end": start + timedelta(hours=1), "n_observations": n,
            "n_abstained": int(round(n * w["abstained_share"])), "valence_mean": w["valence"], "arousal_mean": 0.1,
            "valence_sd": 0.2, "arousal_sd": 0.2, "distress_share": 0.3, "confidence_mean": 0.7,
            "quality_pose_stability": 0.8, "quality_lighting": 0.8, "quality_snr_db": None, "modality": "face",
            "model_version": "m1", "dp_epsilon": None, "schema_version": 1, "simulated": True,
            "ingested_at": start + timedelta(hours=1, minutes=1),
        })
    return pd.DataFrame(rows)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(window, min_size=1, max_size=40,
                unique_by=lambda w: (w["region"], w["device"], w["day"], w["hour"])))
def test_no_visible_cell_is_small(small_cell_warehouse, windows):
    con = small_cell_warehouse
    df = _rows(windows)
    load(con, df)
    df["n_scored"] = df["n_observations"]  # DESIGN.md: n_observations counts scored observations only
    for view, period in (("affect_region_day", "day"), ("affect_region_week", "week_start")):
        cells = con.execute(f"select * from analyst.{view}").df()
        visible = cells[cells["suppression"] == 0]
        assert (visible["n_scored"] >= K_MIN).all(), view
        assert (visible["n_devices"] >= MIN_DEVICES).all(), view
        assert visible["valence_mean"].notna().all(), view
        hidden = cells[cells["suppression"] != 0]
        for col in VALUE_COLUMNS:
            assert hidden[col].isna().all(), (view, col)
        # every cell that pandas finds small is suppressed with the documented code
        key = df["window_start"].dt.date if period == "day" else (
            df["window_start"] - pd.to_timedelta((df["window_start"].dt.weekday + 1) % 7, unit="D")).dt.date
        exp = df.assign(period=key).groupby(["region_id", "period"]).agg(
            n_scored=("n_scored", "sum"), n_devices=("device_id", "nunique")).reset_index()
        exp["code"] = [1 if s < K_MIN else 2 if d < MIN_DEVICES else 0 for s, d in zip(exp["n_scored"], exp["n_devices"])]
        got = cells[cells["n_windows"] > 0].set_index(["region_id", period])["suppression"]
        # code 5 (complementary suppression) may replace 0, never a privacy code
        assert dict(zip(zip(exp["region_id"], exp["period"]), exp["code"])) == {
            (r, pd.Timestamp(p).date()): 0 if c == 5 else c for (r, p), c in got.items()}, view
    dq = con.execute("select * from analyst.data_quality_daily").df()
    assert ((dq["suppressed_share"] >= 0) & (dq["suppressed_share"] <= 1)).all()


def test_thresholds_come_from_settings(tmp_path, migrated_template):
    """With k_min = 100 and min_devices = 5 the same cells become suppressed."""
    s = Settings(data_dir=tmp_path / "var", privacy={"k_min": 100, "min_devices": 5})
    con = open_migrated(migrated_template, s)
    df = _rows([{"region": "06", "device": d, "day": 0, "hour": 0, "n_observations": 30, "abstained_share": 0.0,
                 "valence": 0.1} for d in range(4)])
    con.register("generated", df)
    con.execute("insert into wh.affect_windows by name select * from generated")
    install_views(con, s)
    assert con.execute("select suppression from analyst.affect_region_day").fetchall() == [(2,)]
    install_views(con, Settings(data_dir=tmp_path / "var", privacy={"k_min": 200}))
    assert con.execute("select suppression from analyst.affect_region_day").fetchall() == [(1,)]
    install_views(con, Settings(data_dir=tmp_path / "var"))
    assert con.execute("select suppression, valence_mean from analyst.affect_region_day").fetchall() == [(0, pytest.approx(0.1))]


def _published_cells(settings: Settings, publication: int) -> dict:
    from analyst.sqlshell import open_session

    session = open_session(settings, snapshot=publication)
    try:
        rows = session.run("select region_id, day, n_devices, n_scored, suppression, valence_mean from affect_region_day "
                           "where n_scored > 0")[1]
    finally:
        session.con.close()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_publications_cannot_be_differenced(tmp_path, migrated_template):
    """A late device's window never shows up as a small difference between two analyst publications."""
    from analyst.store import refresh

    s = Settings(data_dir=tmp_path / "var")
    con = open_migrated(migrated_template, s)

    def add(windows):
        con.register("generated", _rows(windows))
        con.execute("insert into wh.affect_windows by name select * from generated")
        con.unregister("generated")

    w = {"region": "06", "day": 1, "hour": 0, "n_observations": 20, "abstained_share": 0.0}
    add([{**w, "device": d, "valence": v} for d, v in ((0, 0.1), (1, 0.2), (2, 0.3))])
    day = (T0 + timedelta(days=1)).date()
    # the day ends at T0 + 2 days; with the 72 h grace it is not published before T0 + 5 days
    first = refresh(s, now=T0 + timedelta(days=4))
    assert first["cells_not_yet_published"] > 0 and _published_cells(s, first["publication_id"]) == {}
    second = refresh(s, now=T0 + timedelta(days=5, hours=1))
    published = _published_cells(s, second["publication_id"])[("06", day)]
    assert published[:3] == (3, 60, 0) and published[3] == pytest.approx(0.2)
    # a late window from a fourth device (value 0.77): a change below the minimums is held
    add([{**w, "device": 3, "valence": 0.77}])
    third = refresh(s, now=T0 + timedelta(days=6))
    assert third["published"] and third["cells_held"] >= 1
    assert _published_cells(s, third["publication_id"])[("06", day)] == published
    # three more devices: the change is itself above the minimums, so the cell is updated
    add([{**w, "device": d, "valence": 0.5} for d in (4, 5, 6)])
    fourth = refresh(s, now=T0 + timedelta(days=7))
    updated = _published_cells(s, fourth["publication_id"])[("06", day)]
    assert updated[:3] == (7, 140, 0) and updated[3] == pytest.approx((0.1 + 0.2 + 0.3 + 0.77 + 1.5) / 7)
    # any two publications: a cell is equal, or differs by at least k_min scored and min_devices devices
    pubs = [_published_cells(s, p["publication_id"]) for p in (first, second, third, fourth)]
    for a in pubs:
        for b in pubs:
            for key in a.keys() & b.keys():
                if a[key] != b[key] and a[key][2] == 0 and b[key][2] == 0:
                    assert abs(a[key][1] - b[key][1]) >= K_MIN and abs(a[key][0] - b[key][0]) >= MIN_DEVICES
    # raised minimums: the published cell is re-suppressed, not held visible
    stricter = Settings(data_dir=tmp_path / "var", privacy={"k_min": 1000})
    fifth = refresh(stricter, now=T0 + timedelta(days=8))
    assert _published_cells(stricter, fifth["publication_id"])[("06", day)][2:] == (1, None)
    con.close()
