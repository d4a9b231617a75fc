"""AppTest of every dashboard page on the populated fixture warehouse (real DuckLake, real Streamlit runtime)."""
from __future__ import annotations

import json

import pytest

from affectwatch.settings import REPO_ROOT

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGES = {
    "app_pages/overview.py": "Overview map",
    "app_pages/region.py": "Region detail",
    "app_pages/alerts.py": "Alerts",
    "app_pages/data_quality.py": "Data quality",
    "app_pages/model_trust.py": "Model trust",
    "app_pages/subscriptions.py": "Subscriptions",
}
PASSWORD = "correct-horse-battery"


@pytest.fixture
def loopback():
    """Streamlit bound to loopback (what `affectwatch dashboard` does by default)."""
    from streamlit import config

    old = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", old)


@pytest.fixture
def open_env(monkeypatch, populated_settings, loopback):
    """The app reads settings from the environment: point it at the fixture warehouse, no users file."""
    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(populated_settings.data_dir))
    monkeypatch.delenv("AFFECTWATCH_DASHBOARD__USERS_FILE", raising=False)
    return populated_settings


@pytest.fixture
def users_file(tmp_path):
    from dashboard.auth import add_user

    path = tmp_path / "users.yaml"
    add_user(path, "olivia", "official", PASSWORD)
    add_user(path, "anna", "analyst", PASSWORD)
    return path


def app(**params):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at


def open_page(page: str, **params):
    at = app(**params)
    at.run()
    if page != "app_pages/overview.py":
        at.switch_page(page)
        at.run()
    return at


def login(at, name: str, password: str):
    if not at.text_input:
        at.run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click()
    at.run()
    return at


def deck_spec(at) -> dict:
    charts = at.get("deck_gl_json_chart")
    assert charts, "no pydeck chart on the page"
    return json.loads(charts[0].proto.json)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_with_banners(open_env, page):
    at = open_page(page, region="48")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith(PAGES[page])
    # Stale fixture data (2023) -> freshness banner; simulated affect -> SIMULATED notice; on every page.
    assert any("Data are stale" in w.value for w in at.warning)
    assert any("SIMULATED" in i.value for i in at.info)
    assert any("soft, contested signal" in c.value for c in at.caption)
    assert any("Open local mode" in i.value for i in at.info)


def test_overview_map_draws_suppressed_cells_as_suppressed_not_zero(open_env):
    at = open_page("app_pages/overview.py", signal="distress", week="2023-05-21", geo="state")
    assert not at.exception
    spec = deck_spec(at)
    feats = {f["properties"]["region_id"]: f["properties"] for f in spec["layers"][0]["data"]["features"]}
    assert len(feats) >= 50  # every state boundary is drawn
    ma = feats["25"]  # Massachusetts has only two devices that week
    assert ma["value_text"] == "—" and ma["status"] == "suppressed: fewer than 3 devices"
    assert ma["fill"] == [150, 150, 150]
    assert feats["48"]["status"] == "ok" and feats["48"]["value_text"] != "—"
    assert "to" in feats["48"]["interval_text"]
    assert feats["01"]["status"] == "no data"  # Alabama: no devices at all
    assert any(layer["@@type"] == "PathLayer" for layer in spec["layers"])  # hatch over the suppressed cell
    assert spec["mapStyle"] == "/app/static/blank_style.json"
    table = next(df.value for df in at.dataframe if "status" in df.value.columns)
    row = table[table["region_id"] == "25"].iloc[0]
    assert row["status"].startswith("suppressed") and row["Distress share (affect)"] == "—"


def test_overview_county_cell_with_few_scored_observations_is_suppressed(open_env):
    at = open_page("app_pages/overview.py", signal="distress", week="2023-06-11", geo="county")
    assert not at.exception
    feats = {f["properties"]["region_id"]: f["properties"] for f in deck_spec(at)["layers"][0]["data"]["features"]}
    assert len(feats) > 3000
    assert feats["04013"]["status"] == "suppressed: fewer than 11 scored observations"


@pytest.mark.parametrize("signal", ["alert", "distress", "arousal", "growth", "rate"])
def test_every_map_signal_renders(open_env, signal):
    at = open_page("app_pages/overview.py", signal=signal, week="2023-06-18")
    assert not at.exception, [e.value for e in at.exception]
    feats = {f["properties"]["region_id"]: f["properties"] for f in deck_spec(at)["layers"][0]["data"]["features"]}
    shown = [p for p in feats.values() if p["value_text"] != "—"]
    assert shown, f"no region has a value for signal {signal}"
    if signal == "alert":
        assert feats["48"]["value_text"] == "Red alert" and feats["06"]["value_text"] == "Yellow alert"


def test_query_params_round_trip(open_env):
    at = open_page("app_pages/overview.py", signal="arousal", week="2023-06-04", geo="state", region="06")
    assert at.selectbox(key="_qp_signal").value == "arousal"
    assert at.select_slider(key="_qp_week").value.isoformat() == "2023-06-04"
    # A widget change goes to the URL ...
    at.selectbox(key="_qp_signal").set_value("distress").run()
    assert at.query_params["signal"] == ["distress"] or at.query_params["signal"] == "distress"
    at.button(key="week_next").click().run()
    params = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert params["week"] == "2023-06-11"
    # ... and a fresh session opened with that URL shows the same view.
    again = open_page("app_pages/overview.py", **params)
    assert again.selectbox(key="_qp_signal").value == "distress"
    assert again.select_slider(key="_qp_week").value.isoformat() == "2023-06-11"
    assert again.selectbox(key="_qp_region").value == "06"
    # Page-independent keys survive a page switch: the region page opens on the same region.
    again.switch_page("app_pages/region.py")
    again.run()
    assert again.title[0].value == "Region detail: California (06)"


def test_region_page_shows_forecast_fan_affect_evidence_and_lift(open_env):
    at = open_page("app_pages/region.py", region="48", past="2")
    assert not at.exception
    assert [h.value for h in at.header] == ["Symptoms and forecasts", "Affect signal (soft signal)",
                                            "Survey affect (REAL, population survey)", "Alerts and evidence",
                                            "Is affect informative here?"]
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 2  # forecast fan + affect band
    fan = json.loads(charts[0].proto.spec)
    marks = json.dumps(fan)
    assert marks.count('"area"') >= 2  # 50% and 95% bands
    assert any("RED" in e.value for e in at.error)  # active red alert, evidence expanded
    assert any("Statistic / threshold" == m.label for m in at.metric)
    # model-version rollout in Texas is marked on the affect chart
    assert '"rule"' in charts[1].proto.spec and "#D55E00" in charts[1].proto.spec
    ca = open_page("app_pages/region.py", region="06")
    assert any("affect informative" in s.value and "1.14" in s.value for s in ca.success)


def test_alerts_filters_and_roles(open_env):
    at = open_page("app_pages/alerts.py", level="red,yellow", status="open")
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["alert_id"]) == {"48|flu_admissions|2023-06-17"}
    assert table["detail"].iloc[0] == "region?region=48"
    assert at.get("download_button"), "admin (open local mode) can download"
    assert at.query_params["level"] in ("red,yellow", ["red,yellow"])


def test_login_required_when_users_file_configured(monkeypatch, populated_settings, users_file, loopback):
    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(populated_settings.data_dir))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__USERS_FILE", str(users_file))
    at = app(region="48")
    at.run()
    assert not at.exception
    assert not at.get("deck_gl_json_chart") and not at.dataframe  # nothing but the login form
    assert "sign in" in at.title[0].value.lower() or at.text_input(key="login_password")
    login(at, "olivia", "wrong-password")
    assert any("Wrong user name or password" in e.value for e in at.error)
    assert not at.get("deck_gl_json_chart")
    login(at, "nobody", PASSWORD)
    assert any("Wrong user name or password" in e.value for e in at.error)
    login(at, "olivia", PASSWORD)
    assert not at.exception
    assert at.title[0].value == "Overview map"
    assert at.get("deck_gl_json_chart")
    # A page script run on its own (no entry-point sign-in in this session) refuses to render.
    from streamlit.testing.v1 import AppTest

    direct = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app_pages" / "alerts.py"), default_timeout=60)
    direct.run()
    assert not direct.dataframe and any("sign in" in e.value.lower() for e in direct.error)


def test_open_mode_refused_off_loopback(monkeypatch, populated_settings):
    from streamlit import config

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(populated_settings.data_dir))
    monkeypatch.delenv("AFFECTWATCH_DASHBOARD__USERS_FILE", raising=False)
    old = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = app()
        at.run()
    finally:
        config.set_option("server.address", old)
    assert any("only runs on a loopback address" in e.value for e in at.error)
    assert not at.get("deck_gl_json_chart") and not at.dataframe


def test_acknowledgement_persists_and_roles(monkeypatch, populated_settings_factory, users_file, loopback):
    from affectwatch.warehouse import connect

    settings = populated_settings_factory(seed=0)  # own warehouse: this test writes
    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__USERS_FILE", str(users_file))
    alert_id = "06|affect_distress|2023-06-11"

    analyst = login(app(alert=alert_id), "anna", PASSWORD)
    analyst.switch_page("app_pages/alerts.py")
    analyst.run()
    assert analyst.get("download_button") and not analyst.text_area  # analyst: download, no acknowledge

    at = login(app(alert=alert_id), "olivia", PASSWORD)
    at.switch_page("app_pages/alerts.py")
    at.run()
    assert not at.get("download_button")  # official: acknowledge, no download
    assert at.selectbox(key="_qp_alert").value == alert_id
    at.text_area[0].input("Checked with CA CDPH: school holiday crowding, not illness.")
    at.radio[0].set_value("false_alarm")
    next(b for b in at.button if b.label == "Acknowledge").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    con = connect(settings, read_only=True)
    try:
        rows = con.execute("select acknowledged_by, note, label from alert_acks where alert_id = ?", [alert_id]).fetchall()
        events = con.execute("select count(*) from alert_events where alert_id = ? and event = 'acknowledged'", [alert_id]).fetchone()[0]
    finally:
        con.close()
    assert rows == [("olivia", "Checked with CA CDPH: school holiday crowding, not illness.", "false_alarm")]
    assert events == 1

    # Another user in a fresh session sees it.
    other = login(app(alert=alert_id), "anna", PASSWORD)
    other.switch_page("app_pages/alerts.py")
    other.run()
    table = other.dataframe[0].value
    row = table[table["alert_id"] == alert_id].iloc[0]
    assert bool(row["acknowledged"]) and row["acknowledged_by"] == "olivia"
    history = other.dataframe[1].value
    assert (history["event"] == "acknowledged").any()


def test_data_quality_and_trust_contents(open_env):
    dq = open_page("app_pages/data_quality.py", days="7")
    assert not dq.exception
    frames = [d.value for d in dq.dataframe]
    sites = next(f for f in frames if "site_type" in f.columns)
    assert {"ed", "clinic"} <= set(sites["site_type"]) and (sites["completeness"] > 0).all()
    reasons = next(f for f in frames if "reason" in f.columns)
    assert reasons.groupby("reason")["n"].sum()["below_k_anonymity"] == 4
    assert any("suppressed" in m.label.lower() for m in dq.metric)

    trust = open_page("app_pages/model_trust.py")
    assert not trust.exception
    assert [h.value for h in trust.header][:3] == ["Interval coverage by horizon", "PIT by horizon", "Relative WIS by model"]
    assert len(trust.get("vega_lite_chart")) >= 5  # coverage, PIT, relative WIS, lift, calibration
    assert not any("No acknowledged alerts" in i.value for i in trust.info)  # the fixture has one labelled ack


def test_admin_manages_subscriptions_official_cannot(monkeypatch, populated_settings_factory, users_file, loopback):
    from affectwatch.warehouse import connect
    from dashboard.auth import add_user

    settings = populated_settings_factory(seed=0)  # own warehouse: this test writes
    add_user(users_file, "root", "admin", PASSWORD)
    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__USERS_FILE", str(users_file))

    official = login(app(), "olivia", PASSWORD)
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not registered for officials
        official.switch_page("app_pages/subscriptions.py")
    from streamlit.testing.v1 import AppTest

    direct = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app_pages" / "subscriptions.py"), default_timeout=60)
    direct.session_state["_aw_ctx"] = None
    direct.run()
    assert not direct.dataframe

    at = login(app(), "root", PASSWORD)
    at.switch_page("app_pages/subscriptions.py")
    at.run()
    assert not at.exception and at.title[0].value == "Subscriptions"
    assert len(at.dataframe[0].value) == 4
    form_inputs = {t.label: t for t in at.text_input}
    form_inputs["Recipient email"].input("not-an-email")
    next(b for b in at.button if b.label == "Subscribe").click()
    at.run()
    assert any("recipient: not an email address" in e.value for e in at.error)

    form_inputs = {t.label: t for t in at.text_input}
    form_inputs["Recipient email"].input("az.epi@health.example.org")
    at.multiselect[0].set_value(["04"])
    at.radio[0].set_value("red")
    next(b for b in at.button if b.label == "Subscribe").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    con = connect(settings, read_only=True)
    try:
        rows = con.execute("select regions, min_level, mode, active from subscriptions where recipient = ?",
                           ["az.epi@health.example.org"]).fetchall()
    finally:
        con.close()
    assert rows == [("04", "red", "immediate", True)]
    table = at.dataframe[0].value
    assert "az.epi@health.example.org" in set(table["recipient"])


def test_play_weeks_animates_and_lands_on_the_last_week(open_env):
    at = open_page("app_pages/overview.py", signal="distress", week="2023-06-11")
    next(b for b in at.button if b.label == "▶ Play weeks").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["week"] in ("2023-06-18", ["2023-06-18"])  # two frames: 06-11, 06-18
    assert any(c.value == "Week of 18 Jun 2023" for c in at.caption)


def test_oidc_configured_requires_identity_provider_login(open_env):
    at = app(region="48")
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "affectwatch", "client_secret": "s",
                          "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]  # st.login button, nothing else
    assert not at.get("deck_gl_json_chart") and not at.dataframe
    assert not any("Open local mode" in i.value for i in at.info)  # loopback does not bypass OIDC


def test_failed_sign_ins_are_rate_limited_per_user(monkeypatch, populated_settings, users_file, loopback):
    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(populated_settings.data_dir))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__USERS_FILE", str(users_file))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__LOGIN_MAX_FAILURES", "2")
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__LOGIN_WINDOW_MINUTES", "7")  # a limiter of its own for this test
    at = app()
    for _ in range(2):
        login(at, "olivia", "wrong-password")
        assert any("Wrong user name or password" in e.value for e in at.error)
    login(at, "olivia", PASSWORD)  # the right password no longer helps within the window
    assert any("Too many failed sign-ins" in e.value for e in at.error)
    assert not at.get("deck_gl_json_chart")
    other = login(app(), "anna", PASSWORD)  # another user is not locked out
    assert not other.exception and other.title[0].value == "Overview map"


def test_sign_out_revokes_the_session_token(monkeypatch, populated_settings, users_file, loopback):
    from dashboard import sessions

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(populated_settings.data_dir))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__USERS_FILE", str(users_file))
    at = login(app(), "olivia", PASSWORD)
    assert at.title[0].value == "Overview map"
    token = at.session_state["_aw_session_token"]
    settings = populated_settings.model_copy(update={"dashboard": populated_settings.dashboard.model_copy(
        update={"users_file": str(users_file)})})
    assert sessions.verify(settings, token).user == "olivia"
    next(b for b in at.sidebar.button if b.label == "Sign out").click()
    at.run()
    assert at.text_input(key="login_password") and not at.get("deck_gl_json_chart")
    with pytest.raises(sessions.InvalidToken, match="revoked"):
        sessions.verify(settings, token)


def test_missing_configured_users_file_is_an_error_not_an_empty_list(monkeypatch, populated_settings, tmp_path, loopback):
    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(populated_settings.data_dir))
    monkeypatch.setenv("AFFECTWATCH_DASHBOARD__USERS_FILE", str(tmp_path / "missing.yaml"))
    at = app()
    at.run()
    assert any("does not exist" in e.value for e in at.error)
    assert not at.text_input and not at.get("deck_gl_json_chart")
