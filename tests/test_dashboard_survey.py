"""AppTest of the survey-affect (REAL) dashboard parts on a fixture warehouse plus the vendored CTIS data."""
from __future__ import annotations

import json

import pytest

from ingest.affect_commands import AFFECT_FILES
from tests.test_dashboard_app import deck_spec, loopback, open_page  # noqa: F401 (loopback is a fixture)


@pytest.fixture(scope="module")
def survey_settings(populated_settings_factory, tmp_path_factory):
    """The fixture warehouse + real CTIS wdepressed_7d / wworried_finances, and one 2021 symptom week
    (the map's week list comes from symptom reports and device windows)."""
    from ingest.load_affect import load_file
    from ingest.load_symptoms import load_file as load_symptoms

    s = populated_settings_factory(seed=0)
    for f in AFFECT_FILES[:2]:
        assert load_file(f, s).rows > 18_000
    week = tmp_path_factory.mktemp("survey") / "week.csv"
    week.write_text("date,location,value\n2021-12-11,48,100\n")
    load_symptoms(week, s, syndrome="flu_admissions", fmt="flusight")
    return s


@pytest.fixture
def survey_env(monkeypatch, survey_settings, loopback):  # noqa: F811
    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(survey_settings.data_dir))
    monkeypatch.delenv("AFFECTWATCH_DASHBOARD__USERS_FILE", raising=False)
    return survey_settings


def test_region_page_shows_real_survey_affect_with_its_band(survey_env):
    at = open_page("app_pages/region.py", region="48", indicator="wworried_finances")
    assert not at.exception, [e.value for e in at.exception]
    assert "Survey affect (REAL, population survey)" in [h.value for h in at.header]
    assert any("**REAL** data" in s.value and "delphi-covidcast:fb-survey" in s.value for s in at.success)
    assert at.selectbox(key="_qp_indicator").value == "wworried_finances"
    spec = next(c.proto.spec for c in at.get("vega_lite_chart") if "value_lo" in c.proto.spec)
    assert '"area"' in spec and '"value_hi"' in spec and "Worried about household finances" in spec
    assert any("±1.96 standard errors of the survey estimate" in c.value for c in at.caption)
    # the device section still says where device affect is simulated; the survey one never does
    assert not any("SIMULATED" in s.value for s in at.success)


def test_map_survey_signal_colours_states_with_real_values(survey_env):
    at = open_page("app_pages/overview.py", signal="survey", indicator="wdepressed_7d", week="2021-12-05", geo="state")
    assert not at.exception, [e.value for e in at.exception]
    feats = {f["properties"]["region_id"]: f["properties"] for f in deck_spec(at)["layers"][0]["data"]["features"]}
    tx = feats["48"]
    assert tx["status"] == "ok" and tx["value_text"] != "—" and "to" in tx["interval_text"]
    shown = [p for p in feats.values() if p["value_text"] != "—"]
    assert len(shown) >= 45  # every state with CTIS estimates that Saturday
    assert "REAL" in json.dumps(deck_spec(at)) or any("REAL" in c.value for c in at.caption)
