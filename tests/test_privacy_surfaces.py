"""No surface ever shows a small affect cell — directly, or by differencing two published cells.

Surfaces: the analyst marts (``affect_region_day``/``_week``, ``data_quality_daily``), the
dashboard queries, the alert engine's affect evidence, the email bodies rendered from it, and the
forecast features (``analytics.panels``). The oracle is plain pandas on the generated windows
(``n_observations`` = scored observations, DESIGN.md; ``n_abstained`` never subtracted).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from affectwatch.settings import Settings
from analyst.views import install_views
from alerts import render
from alerts.affect_signal import affect_decisions
from alerts.rules import load_rules
from analytics.panels import affect_features
from dashboard import queries as q
from tests.fixtures.warehouse import open_migrated

K_MIN, MIN_DEVICES = 11, 3
T0 = datetime(2024, 1, 7, tzinfo=timezone.utc)  # a Sunday
NOW = T0 + timedelta(days=13, hours=23)
PRIVACY = {1, 2, 5}
VALUES = ("valence_mean", "arousal_mean", "distress_share", "confidence_mean", "abstain_share", "quality",
          "pose_stability", "lighting", "snr_db")

window = st.fixed_dictionaries({
    "region": st.sampled_from(["06", "06037", "36"]),  # a state and one of its counties: never rolled up
    "device": st.integers(0, 4),
    "day": st.integers(0, 13),  # two MMWR weeks
    "hour": st.sampled_from([9, 10, 14]),
    "n_observations": st.integers(1, 30),  # scored; below k_min too (defence in depth)
    "n_abstained": st.sampled_from([0, 5, 27, 60]),
    "distress": st.floats(0, 1),
    "quality": st.sampled_from([0.1, 0.9]),
    "version": st.sampled_from(["m1", "m1", "m2"]),
})


def rows(windows: list[dict]) -> pd.DataFrame:
    out = []
    for w in windows:
        start = T0 + timedelta(days=w["day"], hours=w["hour"])
        out.append({
            "device_id": f"dev{w['region']}x{w['device']}", "region_id": w["region"], "site_type": "ed",
            "window_start": start, "window_end": start + timedelta(hours=1),
            "n_observations": w["n_observations"], "n_abstained": w["n_abstained"],
            "valence_mean": -w["distress"], "arousal_mean": 0.1, "valence_sd": 0.2, "arousal_sd": 0.2,
            "distress_share": w["distress"], "confidence_mean": 0.7,
            "quality_pose_stability": w["quality"], "quality_lighting": w["quality"], "quality_snr_db": None,
            "modality": "face", "model_version": w["version"], "dp_epsilon": None, "schema_version": 1,
            "simulated": True, "ingested_at": start + timedelta(hours=1, minutes=1),
        })
    return pd.DataFrame(out)


def load(con, df: pd.DataFrame) -> None:
    con.execute("begin")
    con.execute("delete from wh.affect_windows")
    con.register("generated", df)
    con.execute("insert into wh.affect_windows by name select * from generated")
    con.unregister("generated")
    con.execute("commit")


@pytest.fixture(scope="module")
def env(tmp_path_factory, migrated_template):
    s = Settings(data_dir=tmp_path_factory.mktemp("surfaces") / "var")
    con = open_migrated(migrated_template, s)
    install_views(con, s)
    rule = load_rules(settings=s).signals["affect_distress"]
    yield con, s, rule
    con.close()


# -- the oracle --------------------------------------------------------------------------------
def keyed(df: pd.DataFrame) -> pd.DataFrame:
    ts = pd.to_datetime(df["window_start"], utc=True)
    day = ts.dt.tz_localize(None).dt.normalize()
    return df.assign(day=day.dt.date, week=(day - pd.to_timedelta((day.dt.weekday + 1) % 7, unit="D")).dt.date,
                     hour=ts.dt.tz_localize(None).dt.floor("h"))


def small(part: pd.DataFrame) -> bool:
    """A set of windows below the minimums: it must never be recoverable."""
    return part["n_observations"].sum() < K_MIN or part["device_id"].nunique() < MIN_DEVICES


def check_published(w: pd.DataFrame, published: dict, grain: str, surface: str) -> None:
    """Every published (region, period) is not small, and its unpublished privacy-suppressed
    finer cells are, together, empty or not small (so no differencing isolates a small cell)."""
    col = {"day": "day", "week": "week"}[grain]
    for (region, period) in published:
        part = w[(w["region_id"] == region) & (w[col] == period)]
        assert len(part) and not small(part), (surface, grain, region, period)


def residual_ok(w: pd.DataFrame, region, period, finer: str, coarse: str, finer_suppressed: set) -> bool:
    part = w[(w["region_id"] == region) & (w[coarse] == period)]
    hidden = part[[k in finer_suppressed for k in zip(part["region_id"], part[finer])]]
    return hidden.empty or not small(hidden)


def codes(frame: pd.DataFrame, region: str, period: str) -> dict:
    return {(r, pd.Timestamp(p).date()): int(c) for r, p, c in zip(frame[region], frame[period], frame["suppression"])}


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(window, min_size=1, max_size=45,
                unique_by=lambda w: (w["region"], w["device"], w["day"], w["hour"])))
def test_no_surface_reveals_a_small_cell(env, windows):
    con, s, rule = env
    df = rows(windows)
    load(con, df)
    w = keyed(df)

    # analyst marts
    day = con.execute("select * from analyst.affect_region_day where n_windows > 0").df()
    week = con.execute("select * from analyst.affect_region_week where n_windows > 0").df()
    for name, cells in (("affect_region_day", day), ("affect_region_week", week)):
        hidden = cells[cells["suppression"] != 0]
        for col in VALUES:
            if col == "quality":
                assert hidden.loc[hidden["suppression"].isin(PRIVACY), col].isna().all(), (name, col)
            else:
                assert hidden[col].isna().all(), (name, col)
        assert cells.loc[cells["suppression"] == 0, "distress_share"].notna().all()
    day_codes, week_codes = codes(day, "region_id", "day"), codes(week, "region_id", "week_start")
    pub_days = {k for k, c in day_codes.items() if c == 0}
    pub_weeks = {k for k, c in week_codes.items() if c == 0}
    check_published(w, pub_days, "day", "marts")
    check_published(w, pub_weeks, "week", "marts")
    # differencing: a published week minus its published days leaves only a not-small remainder
    sup_days = {k for k, c in day_codes.items() if c in PRIVACY}
    for region, period in pub_weeks:
        assert residual_ok(w, region, period, "day", "week", sup_days), ("week - days", region, period)
    # hour cells are never published: no surface has an hour-grain column
    assert "hour" not in set(day.columns) | set(week.columns)
    # geography: a state cell holds only windows reported for the state itself (no county roll-up)
    for (region, period), n in zip(zip(day["region_id"], day["day"]), day["n_devices"]):
        assert n == w[(w["region_id"] == region) & (w["day"] == pd.Timestamp(period).date())]["device_id"].nunique()
    # operator counts are not in the analyst data-quality view
    dq = con.execute("select * from analyst.data_quality_daily where not below_minimums is null").df()
    assert dq.loc[dq["below_minimums"], ["n_windows", "n_devices", "n_scored", "abstain_share"]].isna().all().all()

    # dashboard: the same codes and no value for a suppressed cell
    dash_days = pd.concat([q.affect_daily(con, "wh", r, 60) for r in sorted(df["region_id"].unique())])
    assert codes(dash_days, "region_id", "period") == day_codes
    for wk in sorted({k[1] for k in week_codes}):
        dash_week = q.affect_week(con, "wh", wk)
        got = codes(dash_week, "region_id", "period")
        assert got == {k: c for k, c in week_codes.items() if k[1] == wk}
        assert dash_week.loc[dash_week["suppression"] != 0, ["distress", "distress_se", "valence"]].isna().all().all()

    # forecast features
    for freq, expected in (("D", day_codes), ("W", week_codes)):
        feats = affect_features(con, freq=freq, settings=s)
        shift = 6 if freq == "W" else 0
        got = {(r, (pd.Timestamp(d) - pd.Timedelta(days=shift)).date()): int(c)
               for r, d, c in zip(feats["location"], feats["date"], feats["suppression"])}
        assert got == expected, freq
        assert feats.loc[feats["suppression"] != 0, ["distress_share", "valence", "arousal"]].isna().all().all()

    # alert evidence and the emails rendered from it
    for d in affect_decisions(con, "affect_distress", rule, s, NOW):
        ev = d.evidence
        series = ev["series"]
        for date_s, obs, code in zip(series["dates"], series["observed"], series["suppression"]):
            key = (d.region_id, pd.Timestamp(date_s).date())
            assert code == day_codes[key]
            assert (obs is None) == (code != 0)
        if ev["cell"]["suppression"] in PRIVACY:
            assert d.observed is None and d.statistic is None
        # no value in signal units from the detector's rolling periods: only published day cells
        assert d.expected is None and d.threshold is None and "expected" not in ev["detectors"]["affect"]
        if d.observed is not None:
            assert day_codes[(d.region_id, d.data_end)] == 0
        alert = {"alert_id": f"{d.region_id}|affect_distress|x", "region_id": d.region_id, "signal": "affect_distress",
                 "level": d.level or "insufficient_data", "status": "open", "rule": "affect_distress",
                 "detectors": ",".join(d.detectors), "statistic": d.statistic, "threshold": d.threshold,
                 "p_value": d.p_value, "probability": None, "observed": d.observed, "expected": d.expected,
                 "data_start": d.data_start, "data_end": d.data_end, "provisional": d.provisional,
                 "reason": d.reason, "evidence_obj": ev}
        safe = render._safe_series(alert, s)
        assert all(v is None for v, c in zip(safe["observed"], series["suppression"]) if c != 0)


# -- the examples ------------------------------------------------------------------------
MONDAY = T0 + timedelta(days=1)


def _window(device: str, start: datetime, n: int, abstained: int, distress: float) -> dict:
    return rows([{"region": "36", "device": 0, "day": 0, "hour": 0, "n_observations": n, "n_abstained": abstained,
                  "distress": distress, "quality": 0.9, "version": "m1"}]).assign(
        device_id=device, window_start=start, window_end=start + timedelta(hours=1),
        ingested_at=start + timedelta(hours=1, minutes=1)).iloc[0].to_dict()


def _surfaces(con, s, rule, now: datetime) -> dict:
    """Every surface's view of region 36: {surface: {period: (code, distress)}}."""
    out = {}
    day = con.execute("select day, suppression, distress_share from analyst.affect_region_day "
                      "where region_id = '36' and n_windows > 0").fetchall()
    out["mart_day"] = {d: (c, v) for d, c, v in day}
    week = con.execute("select week_start, suppression, distress_share from analyst.affect_region_week "
                       "where region_id = '36'").fetchall()
    out["mart_week"] = {d: (c, v) for d, c, v in week}
    dd = q.affect_daily(con, "wh", "36", 60)
    out["dashboard_day"] = {p: (c, v) for p, c, v in zip(dd["period"], dd["suppression"], dd["distress"])}
    dw = q.affect_week(con, "wh", T0.date())
    out["dashboard_week"] = {p: (c, v) for p, c, v in zip(dw["period"], dw["suppression"], dw["distress"])}
    for freq, shift in (("D", 0), ("W", 6)):
        f = affect_features(con, freq=freq, settings=s)
        out[f"panel_{freq}"] = {(pd.Timestamp(d) - pd.Timedelta(days=shift)).date(): (c, v)
                                for d, c, v in zip(f["date"], f["suppression"], f["distress_share"])}
    (decision,) = [d for d in affect_decisions(con, "affect_distress", rule, s, now) if d.region_id == "36"]
    series = decision.evidence["series"]
    out["alert_evidence"] = {pd.Timestamp(d).date(): (c, v) for d, c, v in
                             zip(series["dates"], series["suppression"], series["observed"])}
    out["_decision"] = decision
    return out


def _email(decision, s) -> str:
    alert = {"alert_id": "36|affect_distress|x", "region_id": "36", "signal": "affect_distress",
             "level": decision.level or "insufficient_data", "status": "open", "rule": "affect_distress",
             "detectors": ",".join(decision.detectors), "statistic": decision.statistic,
             "threshold": decision.threshold, "p_value": decision.p_value, "probability": None,
             "observed": decision.observed, "expected": decision.expected, "data_start": decision.data_start,
             "data_end": decision.data_end, "provisional": decision.provisional, "reason": decision.reason,
             "evidence_obj": decision.evidence}
    msg = render.render_immediate(alert, "a@b.example", "<x@y>", settings=s, now=NOW)
    return "\n".join(p.get_content() for p in msg.walk() if p.get_content_type() in ("text/plain", "text/html"))


def test_36_scored_27_abstained_3_devices_is_published_alike_everywhere(env):
    """n_observations already counts scored observations: 36 >= k_min, so every surface shows 0.8."""
    con, s, rule = env
    df = pd.DataFrame([_window(f"dev36x{i}", MONDAY + timedelta(hours=9 + i), 12, 9, 0.8) for i in range(3)])
    load(con, df)
    seen = _surfaces(con, s, rule, MONDAY + timedelta(hours=23))
    monday, sunday = MONDAY.date(), T0.date()
    for surface in ("mart_day", "dashboard_day", "panel_D", "alert_evidence"):
        code, value = seen[surface][monday]
        assert code == 0 and value == pytest.approx(0.8), surface
    for surface in ("mart_week", "dashboard_week", "panel_W"):
        code, value = seen[surface][sunday]
        assert code == 0 and value == pytest.approx(0.8), surface
    assert con.execute("select n_scored, n_abstained from analyst.affect_region_day where region_id = '36' "
                       "and n_windows > 0").fetchone() == (36, 27)


def test_week_minus_monday_cannot_reveal_the_lone_wednesday_device(env):
    """A, B, C on Monday and D alone on Wednesday: 4 x week - 3 x Monday would be D's value (0.91)."""
    con, s, rule = env
    df = pd.DataFrame([_window(d, MONDAY + timedelta(hours=9 + i), 12, 0, 0.5) for i, d in enumerate("ABC")]
                      + [_window("D", MONDAY + timedelta(days=2, hours=10), 20, 0, 0.91)])
    load(con, df)
    seen = _surfaces(con, s, rule, MONDAY + timedelta(days=2, hours=23))
    monday, wednesday, sunday = MONDAY.date(), (MONDAY + timedelta(days=2)).date(), T0.date()
    for surface in ("mart_day", "dashboard_day", "panel_D", "alert_evidence"):
        assert seen[surface][monday] == (0, pytest.approx(0.5)), surface
        code, value = seen[surface][wednesday]
        assert code == 2 and (value is None or pd.isna(value)), surface
    for surface in ("mart_week", "dashboard_week", "panel_W"):
        code, value = seen[surface][sunday]
        assert code == 5 and (value is None or pd.isna(value)), surface  # complementary suppression
    label = con.execute("select suppression_label from analyst.affect_region_week where region_id = '36'").fetchone()[0]
    assert "differencing" in label
    assert "0.91" not in _email(seen["_decision"], s)
