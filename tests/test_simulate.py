"""Device-fleet simulator (ingest/simulate.py): scenario properties, nuisances, contract, Kafka."""
from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import msgspec
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from affectwatch.settings import Settings
from ingest import simulate as sim
from ingest.contracts import AFFECT_COLUMNS, AffectWindow, SymptomReport
from ingest.validate import Validator

REGIONS = ["06", "12", "13", "17", "36", "37", "42", "48"]
RANGE = dict(start="2022-10-01", end="2023-05-31")
SMALL = dict(devices_per_region=5, window_minutes=240, model_change="2099-01-01")  # no model change inside the range
K_MIN = Settings().privacy.k_min


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    return sim.load_series()


def _weekly_distress(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean distress share per region and MMWR week (ending Saturday), like an analyst would build it."""
    day = frame["window_start"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    week_end = day + pd.to_timedelta((5 - day.dt.weekday) % 7, unit="D")
    return frame.assign(date=week_end).groupby(["region_id", "date"], as_index=False)["distress_share"].mean()


def _lag_correlations(frame: pd.DataFrame, series: pd.DataFrame, lags=range(0, 6)) -> dict[int, np.ndarray]:
    """Per-region Pearson r between weekly distress and log symptoms ``lag`` weeks later."""
    wk = _weekly_distress(frame)
    out = {}
    for lag in lags:
        rs = []
        for region, d in wk.groupby("region_id"):
            y = series[series.region_id == region].set_index("date")["value"]
            later = np.log1p(y).shift(-lag)
            joined = pd.concat([d.set_index("date")["distress_share"], later], axis=1).dropna()
            rs.append(joined.corr().iloc[0, 1])
        out[lag] = np.array(rs)
    return out


def test_lead_scenario_affect_leads_symptoms_by_lead_days(series):
    frame = sim.affect_frame(series, "lead", regions=REGIONS, **RANGE, **SMALL)
    corr = _lag_correlations(frame, series)
    means = {lag: r.mean() for lag, r in corr.items()}
    assert max(means, key=means.get) == 2, means  # 14 days = 2 weeks
    assert means[2] > 0.6 and (corr[2] > 0.3).all()
    assert stats.ttest_1samp(corr[2], 0).pvalue < 1e-4  # clearly positive across regions


def test_lead_days_option_moves_the_peak(series):
    frame = sim.affect_frame(series, "lead", regions=REGIONS[:4], lead_days=28, **RANGE, **SMALL)
    means = {lag: r.mean() for lag, r in _lag_correlations(frame, series, range(0, 7)).items()}
    assert max(means, key=means.get) == 4, means


def test_null_scenario_has_no_significant_correlation(series):
    frame = sim.affect_frame(series, "null", regions=REGIONS, **RANGE, **SMALL)
    corr = _lag_correlations(frame, series, lags=(0, 2))
    for lag, r in corr.items():
        assert abs(r.mean()) < 0.3, (lag, r)
        assert stats.ttest_1samp(r, 0).pvalue > 0.01, (lag, r)


def test_windows_follow_the_contract_and_ingest_rules(series):
    records = list(sim.simulate_windows(series, "lead", "2023-01-02", "2023-01-04", ["06", "36"], devices_per_region=6,
                                        window_minutes=30, dp_epsilon=4.0, seed=3))
    assert len(records) > 200
    validator = Validator(Settings())
    for rec in records:
        raw = msgspec.json.encode(rec)
        decoded = msgspec.json.decode(raw, type=AffectWindow)  # exact contract, unknown fields forbidden
        assert decoded.n_observations >= K_MIN and decoded.dp_epsilon == 4.0
        assert decoded.window_end - decoded.window_start == timedelta(minutes=30)
        assert validator.affect(raw) == decoded  # the ingest worker would accept it
    jsonschema = pytest.importorskip("jsonschema")
    from affectwatch.settings import REPO_ROOT

    schema = json.loads((REPO_ROOT / "schemas" / "affect_window.v1.schema.json").read_text())
    jsonschema.validate(json.loads(msgspec.json.encode(records[0])), schema)


def test_affect_frame_holds_the_same_windows_with_warehouse_columns(series):
    kw = dict(scenario="null", start="2023-02-01", end="2023-02-03", regions=["48"], devices_per_region=4, seed=9)
    frame = sim.affect_frame(series, **kw)
    records = list(sim.simulate_windows(series, **kw))
    assert list(frame.columns) == list(AFFECT_COLUMNS) + ["simulated"]
    assert frame["simulated"].all() and len(frame) == len(records)
    assert list(frame["device_id"]) == [r["device_id"] for r in records]
    assert np.allclose(frame["arousal_mean"], [r["arousal_mean"] for r in records])
    assert str(frame["window_start"].dtype) == "datetime64[ns, UTC]"


def test_deterministic_with_seed(series):
    kw = dict(start="2023-03-01", end="2023-03-02", regions=["06"], devices_per_region=3)
    a = sim.affect_frame(series, seed=1, **kw)
    b = sim.affect_frame(series, seed=1, **kw)
    c = sim.affect_frame(series, seed=2, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert not a["valence_mean"].equals(c["valence_mean"])


@pytest.fixture(scope="module")
def nuisance_frame(series):
    """30 days, model update rolled out from day 10, hourly windows."""
    return sim.affect_frame(series, "lead", "2023-01-01", "2023-01-30", ["06", "36", "48"], devices_per_region=20,
                            model_change="2023-01-10", seed=5)


def test_k_min_suppression_and_daily_weekly_cycles(nuisance_frame):
    f = nuisance_frame
    assert f["n_observations"].min() >= K_MIN
    possible = 3 * 20 * 24 * 30
    assert len(f) < 0.85 * possible  # night windows below k_min and silent devices are not emitted
    local = (f["window_start"].dt.tz_convert("UTC").dt.hour + f["region_id"].map(sim.UTC_OFFSET)) % 24
    per_hour = f.groupby(local).size()
    assert per_hour.max() > 3 * per_hour.min()  # busy afternoons, quiet nights
    clinics = f[f["site_type"] == "clinic"]
    weekday = clinics["window_start"].dt.tz_convert("America/Los_Angeles").dt.weekday
    by_day = clinics.groupby(weekday)["n_observations"].sum().reindex(range(7), fill_value=0)
    assert by_day[6] < 0.5 * by_day[2]  # clinics are quiet on Sundays


def test_dropouts_devices_go_silent_for_days(nuisance_frame):
    jan = nuisance_frame[nuisance_frame["window_start"].dt.day <= 30]
    gaps = 0
    for _, d in jan.groupby("device_id"):
        days = np.sort(d["window_start"].dt.day.unique())
        gaps += int((np.diff(days) >= 3).sum())  # two or more whole silent days between active days
    assert gaps >= 2


def test_lighting_dips_raise_abstentions(nuisance_frame):
    face = nuisance_frame.dropna(subset=["quality_lighting"])
    rate = face["n_abstained"] / (face["n_abstained"] + face["n_observations"])
    dim, bright = rate[face["quality_lighting"] < 0.55], rate[face["quality_lighting"] > 0.75]
    assert len(dim) > 20 and dim.mean() > bright.mean() + 0.1
    assert face.loc[face["quality_lighting"] < 0.55, "confidence_mean"].mean() < face.loc[face["quality_lighting"] > 0.75, "confidence_mean"].mean()


def test_model_version_change_shifts_arousal(nuisance_frame):
    f = nuisance_frame
    day = f["window_start"].dt.tz_convert("UTC").dt.date
    assert set(f.loc[day < date(2023, 1, 10), "model_version"]) == {sim.MODEL_OLD}
    assert set(f.loc[day >= date(2023, 1, 16), "model_version"]) == {sim.MODEL_NEW}
    # Two-way fixed effects: arousal ~ device + region-day + [v2.0]. Device effects remove the devices'
    # own offsets; region-day effects remove the epidemic signal and cycles. Devices switch on
    # different days of the rollout week, which identifies the version effect.
    around = f[(day >= date(2023, 1, 3)) & (day < date(2023, 1, 23))].assign(day=day.astype(str))
    X = pd.concat([
        pd.get_dummies(around["device_id"], dtype=float),
        pd.get_dummies(around["region_id"] + around["day"], dtype=float, drop_first=True),
        (around["model_version"] == sim.MODEL_NEW).astype(float).rename("v2"),
    ], axis=1)
    coef, *_ = np.linalg.lstsq(X.to_numpy(), around["arousal_mean"].to_numpy(), rcond=None)
    assert coef[-1] == pytest.approx(sim.MODEL_NEW_AROUSAL_SHIFT, abs=0.02)


def test_symptom_reports_replay_real_weekly_values(series):
    reports = list(sim.simulate_symptom_reports(series, ["06", "36"], "2022-12-01", "2023-01-31"))
    validator = Validator(Settings())
    for r in reports:
        decoded = msgspec.json.decode(msgspec.json.encode(r), type=SymptomReport)
        assert validator.symptom(msgspec.json.encode(r)) == decoded
        assert r["period_end"].weekday() == 5 and r["period_end"] - r["period_start"] == timedelta(days=6)
        assert r["reported_at"].date() > r["period_end"]
    ca = {r["period_end"]: r["count"] for r in reports if r["region_id"] == "06"}
    assert ca[date(2023, 1, 7)] == 913  # the real FluSight value
    assert len(reports) == 2 * 9


def test_symptom_revisions(series):
    reports = list(sim.simulate_symptom_reports(series, ["06"], "2022-10-01", "2023-03-31", revise_share=0.5, seed=2))
    by_period: dict = {}
    for r in reports:
        by_period.setdefault(r["period_end"], []).append(r)
    revised = [v for v in by_period.values() if len(v) == 2]
    assert 5 <= len(revised) <= len(by_period) - 5
    for first, final in revised:
        assert first["reported_at"] < final["reported_at"] and first["count"] <= final["count"]
    truth = series[(series.region_id == "06")].set_index("date")["value"]
    assert all(v[-1]["count"] == int(truth[pd.Timestamp(p)]) for p, v in by_period.items())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(regions=["06", "99"]), r"regions \['99'\] are not in the symptom series"),
        (dict(scenario="sideways"), r"scenario 'sideways' is not one of"),
        (dict(window_minutes=7), r"window_minutes=7"),
        (dict(start="2023-02-01", end="2023-01-01"), r"end 2023-01-01 is before start 2023-02-01"),
        (dict(start="yesterday"), r"start='yesterday' is not an ISO date"),
        (dict(devices_per_region=0), r"devices_per_region must be >= 1"),
    ],
)
def test_bad_arguments_are_named(series, kwargs, match):
    args = dict(regions=["06"], start="2023-01-01", end="2023-01-02") | kwargs
    with pytest.raises(ValueError, match=match):
        next(sim.simulate_windows(series, **args))


def test_load_series_rejects_wrong_columns(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("day,where,n\n2023-01-07,06,3\n")
    with pytest.raises(ValueError, match=r"columns needed \['date', 'location', 'value'\]; columns available \['day', 'where', 'n'\]"):
        sim.load_series(f)


def test_cli_dry_run_labels_simulated(tmp_path, monkeypatch):
    from affectwatch import settings as settings_mod
    from affectwatch.cli import app

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(tmp_path / "var"))
    settings_mod.get_settings.cache_clear()
    out = tmp_path / "sim.jsonl"
    try:
        help_text = CliRunner().invoke(app, ["simulate", "--help"]).output
        assert "SIMULATED" in help_text
        res = CliRunner().invoke(app, ["simulate", "--start", "2023-01-01", "--end", "2023-01-07", "--regions", "06,36",
                                       "--devices-per-region", "3", "--dry-run", "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert "SIMULATED affect windows" in res.output
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        windows = [x for x in lines if x["topic"] == "affect.windows.v1"]
        reports = [x for x in lines if x["topic"] == "symptoms.reports.v1"]
        assert len(reports) == 2 and windows and all(x["simulated"] for x in windows)
        assert {x["key"] for x in windows} == {"06", "36"}
        bad = CliRunner().invoke(app, ["simulate", "--regions", "06,99", "--dry-run", "--out", str(out)])
        assert bad.exit_code == 2 and "['99']" in bad.output
    finally:
        settings_mod.get_settings.cache_clear()


@pytest.mark.slow
@pytest.mark.kafka
def test_produce_to_real_broker_and_consume_back(series, kafka_broker, tmp_path):
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.admin import NewTopic

    bootstrap = getattr(kafka_broker, "bootstrap", kafka_broker)
    s = Settings(data_dir=tmp_path / "var", kafka={"bootstrap_servers": bootstrap})
    topic = f"sim-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    records = list(sim.simulate_windows(series, "lead", "2023-01-02", "2023-01-03", ["06", "36", "48"], devices_per_region=4))
    sent = sim.produce(records, topic, s, simulated=True)
    assert sent == len(records) > 100
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=5000, group_id=None)
    got = list(consumer)
    consumer.close()
    assert len(got) == sent
    assert {m.key.decode() for m in got} == {"06", "36", "48"}
    assert all(dict(m.headers).get("aw-simulated") == b"1" for m in got)
    assert all(json.loads(m.value)["region_id"] == m.key.decode() for m in got)
    # a region's records stay in one partition
    assert all(len({m.partition for m in got if m.key == k}) == 1 for k in {m.key for m in got})
