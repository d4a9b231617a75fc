"""Dashboard building blocks without a browser: users file, roles, map layers, warehouse queries, CLI."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from affectwatch.privacy import Suppression
from affectwatch.settings import Settings
from analyst.views import install_views


# --- auth ------------------------------------------------------------------------------------
def test_users_file_stores_bcrypt_hash_and_checks_passwords(tmp_path):
    from dashboard.auth import add_user, check_password, load_users

    path = tmp_path / "users.yaml"
    add_user(path, "olivia", "official", "s3cret-pass")
    add_user(path, "adam", "admin", "another-pass")
    add_user(path, "olivia", "analyst", "new-pass-123")  # update keeps the other user
    text = path.read_text()
    assert "s3cret-pass" not in text and "new-pass-123" not in text
    users = load_users(path)
    assert set(users) == {"olivia", "adam"} and users["olivia"]["role"] == "analyst"
    assert users["olivia"]["password_hash"].startswith("$2")
    assert check_password(users, "olivia", "new-pass-123").role == "analyst"
    assert check_password(users, "olivia", "s3cret-pass") is None
    assert check_password(users, "mallory", "new-pass-123") is None
    assert oct(path.stat().st_mode)[-3:] == "600"


@pytest.mark.parametrize(("content", "message"), [
    ("users:\n  bob: {role: boss, password_hash: '$2b$12$abc'}\n", "user 'bob' has role 'boss'"),
    ("users:\n  bob: {role: official}\n", "user 'bob' has no bcrypt password_hash"),
    ("users: [bob]\n", "expected a top-level 'users' mapping"),
    ("users:\n  bob: official\n", "user 'bob' must be a mapping"),
])
def test_bad_users_file_names_the_problem(tmp_path, content, message):
    from dashboard.auth import UsersFileError, load_users

    path = tmp_path / "users.yaml"
    path.write_text(content)
    with pytest.raises(UsersFileError, match=message):
        load_users(path)


def test_toml_users_file_is_read(tmp_path):
    import bcrypt

    from dashboard.auth import check_password, load_users

    h = bcrypt.hashpw(b"pw-for-toml", bcrypt.gensalt(4)).decode()
    path = tmp_path / "users.toml"
    path.write_text(f'[users.tina]\nrole = "analyst"\npassword_hash = "{h}"\n')
    assert check_password(load_users(path), "tina", "pw-for-toml").role == "analyst"


@pytest.mark.parametrize(("name", "role", "password", "message"), [
    ("bad name", "official", "long-enough", "user name"),
    ("ok", "superuser", "long-enough", "role 'superuser'"),
    ("ok", "official", "short", "at least 8"),
])
def test_add_user_rejects_bad_input(tmp_path, name, role, password, message):
    from dashboard.auth import add_user

    with pytest.raises(ValueError, match=message):
        add_user(tmp_path / "u.yaml", name, role, password)


def test_roles_grant_the_documented_permissions():
    from dashboard.auth import User

    official, analyst, admin = (User("x", r, "local") for r in ("official", "analyst", "admin"))
    assert official.can("acknowledge") and not official.can("download") and not official.can("subscriptions")
    assert analyst.can("download") and not analyst.can("acknowledge")
    assert admin.can("subscriptions") and admin.can("acknowledge") and admin.can("download")
    with pytest.raises(KeyError, match="unknown permission 'delete'"):
        official.can("delete")


def test_loopback_detection():
    from dashboard.auth import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.1.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.1.2.3")


# --- maps ------------------------------------------------------------------------------------
def test_boundaries_are_simplified_and_complete():
    from dashboard import maps

    states, counties = maps.boundaries("state"), maps.boundaries("county")
    assert len(states) >= 50 and len(counties) > 3000
    assert maps.region_name("06") == "California" and maps.region_name("04013").endswith("Arizona")
    raw = (maps.GEO_DIR / maps.GEO_FILES["county"]).stat().st_size
    assert len(json.dumps([c["geometry"] for c in counties.values()], separators=(",", ":"))) < raw
    with pytest.raises(ValueError, match="geography 'country'"):
        maps.boundaries("country")


def test_deck_marks_suppressed_and_missing_cells_and_uses_blank_style():
    from dashboard import maps

    df = pd.DataFrame({"region_id": ["06", "25", "48"], "value": [0.1, None, 0.3], "lo": [0.05, None, 0.2],
                       "hi": [0.15, None, 0.4], "suppression": [0, int(Suppression.TOO_FEW_DEVICES), 0]})
    spec = maps.MapLayerSpec("state", "continuous", "Distress", "{:.2f}")
    deck, vmin, vmax = maps.build_deck(df, spec, "")
    doc = json.loads(deck.to_json())
    assert doc["mapStyle"] == maps.BLANK_STYLE_URL
    feats = {f["properties"]["region_id"]: f["properties"] for f in doc["layers"][0]["data"]["features"]}
    assert feats["25"]["fill"] == list(maps.SUPPRESSED_COLOUR) and feats["25"]["value_text"] == "—"
    assert feats["25"]["status"] == Suppression.TOO_FEW_DEVICES.label
    assert feats["01"]["fill"] == list(maps.NO_DATA_COLOUR) and feats["01"]["status"] == "no data"
    assert feats["06"]["value_text"] == "0.10" and feats["06"]["interval_text"] == "0.05 to 0.15"
    assert feats["06"]["fill"] != feats["48"]["fill"]
    hatch = [layer for layer in doc["layers"] if layer["id"] == "suppressed-hatch"]
    assert hatch and len(hatch[0]["data"]) > 3
    labels = [label for _, label in maps.legend_items(spec, vmin, vmax)]
    assert any("Suppressed" in label for label in labels) and "No data" in labels
    # a configured basemap replaces the offline style
    carto = "https://basemaps.cartocdn.com/gl/positron-gl-style/style.json"
    assert json.loads(maps.build_deck(df, spec, carto)[0].to_json())["mapStyle"] == carto


def test_alert_colours_are_okabe_ito_and_h3_layer():
    import h3

    from dashboard import maps

    cells = [h3.latlng_to_cell(34.05, -118.25, 6), h3.latlng_to_cell(34.2, -118.4, 6)]
    df = pd.DataFrame({"region_id": cells, "value": ["red", "none"], "suppression": [0, 0]})
    deck, _, _ = maps.build_deck(df, maps.MapLayerSpec("h3", "alert", "Alert level"), "")
    doc = json.loads(deck.to_json())
    layer = doc["layers"][0]
    assert layer["@@type"] == "H3HexagonLayer"
    fills = {d["region_id"]: d["fill"] for d in layer["data"]}
    assert fills[cells[0]] == [213, 94, 0] and fills[cells[1]] == [0, 158, 115]
    assert maps.geography_of(cells[0]) == "h3" and maps.geography_of("06") == "state"


# --- queries on the fixture warehouse ---------------------------------------------------------
def test_affect_cells_carry_suppression_codes_never_values(populated_warehouse):
    from dashboard import queries as q

    week = q.affect_week(populated_warehouse, "wh", dt.date(2023, 5, 21)).set_index("region_id")
    assert week.loc["25", "suppression"] == Suppression.TOO_FEW_DEVICES
    assert pd.isna(week.loc["25", "distress"]) and pd.isna(week.loc["25", "distress_se"])
    assert week.loc["48", "suppression"] == 0 and 0 < week.loc["48", "distress"] < 1
    county = q.affect_week(populated_warehouse, "wh", dt.date(2023, 6, 11)).set_index("region_id")
    assert county.loc["04013", "suppression"] == Suppression.TOO_FEW_OBSERVATIONS  # 9 scored < k_min
    # the minimums come from the settings the cell model was installed with
    install_views(populated_warehouse, Settings(privacy={"min_devices": 7}))
    try:
        stricter = q.affect_week(populated_warehouse, "wh", dt.date(2023, 6, 11)).set_index("region_id")
    finally:
        install_views(populated_warehouse, Settings())
    states = stricter.drop(index="04013")
    assert (states["suppression"] == Suppression.TOO_FEW_DEVICES).all()  # no state has 7 devices
    assert states["distress"].isna().all()


def test_symptom_series_uses_latest_revision_and_forecasts_latest_run(populated_warehouse):
    from dashboard import queries as q

    raw = populated_warehouse.execute(
        "select count, reported_at from symptom_reports where region_id = '48' and syndrome = 'flu_admissions' "
        "and period_end = date '2023-06-24' order by reported_at").fetchall()
    assert len(raw) == 2  # first report + revision
    series = q.symptom_series(populated_warehouse, "wh", "48", "flu_admissions")
    last = series[series["week_end"] == pd.Timestamp("2023-06-24")].iloc[0]
    assert last["count"] == raw[-1][0]
    fc = q.region_forecasts(populated_warehouse, "wh", "48", "wk inc flu_admissions", "ensemble", 1)
    assert sorted(fc["reference_date"].astype(str).unique()) == ["2023-06-17", "2023-06-24"]
    latest = fc[fc["reference_date"] == fc["reference_date"].max()]
    assert (latest["q025"] <= latest["q25"]).all() and (latest["q25"] <= latest["q50"]).all()
    assert (latest["q50"] <= latest["q75"]).all() and (latest["q75"] <= latest["q975"]).all()
    # the superseded (earlier-created, 1.3x) ensemble run is not the one shown
    sup = populated_warehouse.execute(
        "select min(created_at) from forecasts where location='48' and model='ensemble' and reference_date = date '2023-06-24'").fetchone()[0]
    newest = populated_warehouse.execute(
        "select value from forecasts where location='48' and model='ensemble' and reference_date = date '2023-06-24' "
        "and horizon = 0 and output_type_id = 0.5 and created_at > ?", [sup]).fetchone()[0]
    assert latest[latest["horizon"] == 0]["q50"].iloc[0] == pytest.approx(newest)


def test_user_input_is_bound_not_interpolated(populated_warehouse):
    from dashboard import queries as q

    evil = "48' or '1'='1"
    assert q.alerts_table(populated_warehouse, "wh", (), (), evil, None, None).empty
    assert q.symptom_series(populated_warehouse, "wh", evil, "ili").empty
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        q.run(populated_warehouse, "wh; drop table alerts", "select 1")


def test_week_start_is_mmwr_sunday():
    from dashboard.queries import week_start

    assert week_start(dt.date(2023, 6, 14)) == dt.date(2023, 6, 11)
    assert week_start(dt.date(2023, 6, 11)) == dt.date(2023, 6, 11)
    assert week_start(dt.date(2023, 6, 17)) == dt.date(2023, 6, 11)


# --- CLI -------------------------------------------------------------------------------------
def test_cli_users_add_and_list(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from affectwatch.cli import app

    path = tmp_path / "users.yaml"
    monkeypatch.setenv("AFFECTWATCH_NEW_PASSWORD", "cli-password-1")
    runner = CliRunner()
    res = runner.invoke(app, ["users", "add", "carol", "--role", "admin", "--users-file", str(path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["users", "list", "--users-file", str(path)])
    assert "carol\tadmin" in res.output
    bad = runner.invoke(app, ["users", "add", "dave", "--role", "boss", "--users-file", str(path)])
    assert bad.exit_code != 0 and "boss" in bad.output


def test_cli_dashboard_refuses_public_bind_without_auth(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from affectwatch.cli import app

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("AFFECTWATCH_DASHBOARD__USERS_FILE", raising=False)
    from affectwatch.settings import get_settings

    get_settings.cache_clear()

    def no_exec(*args):  # a regression must fail this test, not replace pytest with a server
        raise AssertionError(f"dashboard was started: {args[:2]}")

    monkeypatch.setattr("os.execve", no_exec)
    try:
        res = CliRunner().invoke(app, ["dashboard", "--host", "0.0.0.0"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code != 0 and "not loopback" in res.output


def test_streamlit_command_serves_static_on_the_given_address():
    from dashboard.commands import streamlit_command

    cmd = streamlit_command("127.0.0.1", 8601)
    joined = " ".join(cmd)
    assert "--server.enableStaticServing true" in joined and "--server.address 127.0.0.1" in joined
    assert cmd[cmd.index("--server.port") + 1] == "8601" and cmd[4].endswith("dashboard/app.py")


def test_server_start_opens_the_warehouse_connection_the_pages_then_use(warehouse, settings, tmp_path, monkeypatch):
    """`python -m dashboard.serve` warms the boundaries and the cached warehouse connection before it serves:
    the first page view gets that same connection; a data dir without a warehouse does not stop the server."""
    import affectwatch.warehouse as wh
    from dashboard import data
    from dashboard.serve import warm

    took = warm(settings)
    assert set(took) == {"boundaries_s", "warehouse_s"}
    opened = []
    real_connect = wh.connect
    monkeypatch.setattr(wh, "connect", lambda *a, **k: opened.append(1) or real_connect(*a, **k))
    key = data.warehouse_key(settings)
    con = data.connection(key)
    assert opened == [] and con is data.connection(key)  # the connection warm() opened, not a new one
    assert con.execute("select count(*) from analyst.affect_region_week").fetchone()[0] == 0  # views installed
    assert data.warm_connection(Settings(data_dir=tmp_path / "empty")) is False
