"""A small, realistic, deterministic warehouse for tests, the dashboard's AppTests and demos.

``build_fixture_warehouse(settings)`` migrates the warehouse under ``settings.data_dir`` and
fills every pipeline table with fixture rows, using the vendored real data in ``data/`` where
it exists:

- ``symptom_reports``: weekly laboratory-confirmed influenza admissions (FluSight target data,
  syndrome ``flu_admissions``) and ILINet visit counts (syndrome ``ili``) for eight states,
  2022-10 .. 2023-06, plus later *revisions* of a few recent weeks written in a separate
  (later) warehouse snapshot, so that as-of queries see the first reports;
- ``affect_windows``: simulated (``simulated = true``) hourly device windows for the last eight
  weeks, several devices per state, a model-version rollout on 2023-06-01, one region-week
  with only two devices (state 25, week of 2023-05-21) and one county region with very few
  scored observations (04013, week of 2023-06-11) so that small-cell suppression is exercised;
- forecasts (hubverse quantiles, 23 levels, horizons 0..3, ``baseline`` and ``ensemble``, one
  superseded run), forecast scores computed from those forecasts and the admissions, affect-lift
  verdicts, alerts with events and an acknowledgement, dead letters, ingest batches and offsets,
  subscriptions, the email outbox and scheduler runs.

Everything is generated from a seeded ``numpy`` generator and fixed timestamps: two builds with
the same seed hold the same rows.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from affectwatch import mmwr
from affectwatch.logs import get_logger
from affectwatch.settings import REPO_ROOT, Settings, get_settings

log = get_logger(__name__)

DATA = REPO_ROOT / "data"
UTC = timezone.utc

# The fixture states (FIPS -> ILINet region name).
STATES: dict[str, str] = {
    "06": "California",
    "36": "New York",
    "48": "Texas",
    "12": "Florida",
    "17": "Illinois",
    "53": "Washington",
    "25": "Massachusetts",
    "04": "Arizona",
}
SYMPTOMS_FROM = date(2022, 10, 2)  # first period_start (Sunday)
SYMPTOMS_TO = date(2023, 6, 24)  # last period_end (Saturday)
AFFECT_FROM = date(2023, 4, 30)  # eight MMWR weeks of device windows ...
AFFECT_TO = date(2023, 6, 24)  # ... ending with the last symptom week
MODEL_ROLLOUT = datetime(2023, 6, 1, tzinfo=UTC)  # devices in ROLLOUT_STATES switch model here
ROLLOUT_STATES = ("06", "36", "48")
FEW_DEVICES_CELL = ("25", date(2023, 5, 21))  # region-week with only two reporting devices
FEW_OBSERVATIONS_REGION = "04013"  # Maricopa county: three devices, one mostly-abstained window each
FEW_OBSERVATIONS_WEEK = date(2023, 6, 11)
REFERENCE_DATES = [date(2023, 6, 3), date(2023, 6, 10), date(2023, 6, 17), date(2023, 6, 24)]
QUANTILE_LEVELS = [0.01, 0.025, *[round(0.05 * i, 2) for i in range(1, 20)], 0.975, 0.99]
TARGET = "wk inc flu_admissions"
FIXTURE_NOW = datetime(2023, 6, 28, 12, 0, tzinfo=UTC)  # "now" of the fixture (last scheduler run)

FLU_FILE = "target-hospital-admissions.csv"
ILI_FILE = "ILINet_states_2010w40-2023w39.csv"


def _ts(d: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC)


# -- symptom reports ----------------------------------------------------------------------------

def flu_admissions() -> pd.DataFrame:
    """Weekly influenza admissions of the fixture states (FluSight target data), one row per week."""
    df = pd.read_csv(DATA / "flusight" / FLU_FILE, dtype={"location": str})
    df["period_end"] = pd.to_datetime(df["date"]).dt.date
    df = df[df["location"].isin(list(STATES)) & df["value"].notna()]
    df = df[(df["period_end"] >= SYMPTOMS_FROM + timedelta(days=6)) & (df["period_end"] <= SYMPTOMS_TO)]
    df = df.assign(
        region_id=df["location"],
        period_start=df["period_end"] - timedelta(days=6),
        count=df["value"].round().astype("int64"),
    )
    return df[["region_id", "period_start", "period_end", "count"]].sort_values(["region_id", "period_end"]).reset_index(drop=True)


def ili_visits() -> pd.DataFrame:
    """Weekly ILINet ILI visits and total patients of the fixture states."""
    df = pd.read_csv(DATA / "ili" / ILI_FILE, skiprows=1, na_values=["X"])
    df = df[(df["REGION TYPE"] == "States") & df["REGION"].isin(list(STATES.values()))]
    df = df.dropna(subset=["ILITOTAL", "TOTAL PATIENTS"])
    starts = [mmwr.week_start(int(y), int(w)) for y, w in zip(df["YEAR"], df["WEEK"])]
    by_name = {v: k for k, v in STATES.items()}
    out = pd.DataFrame({
        "region_id": df["REGION"].map(by_name).to_numpy(),
        "period_start": starts,
        "count": df["ILITOTAL"].astype("int64").to_numpy(),
        "denominator": df["TOTAL PATIENTS"].astype("int64").to_numpy(),
    })
    out["period_end"] = out["period_start"] + timedelta(days=6)
    out = out[(out["period_start"] >= SYMPTOMS_FROM) & (out["period_end"] <= SYMPTOMS_TO)]
    return out.sort_values(["region_id", "period_start"]).reset_index(drop=True)


def symptom_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(first reports, later revisions) in the column layout of ``symptom_reports``.

    The three most recent admission weeks of CA, NY and TX were first reported low (80 % of the
    final value, as provisional hospital data usually is) and revised a week later to the value in
    the FluSight file; one Florida week was first reported 10 % high and revised down.
    """
    flu = flu_admissions().assign(denominator=pd.NA, syndrome="flu_admissions", source="flusight-nhsn",
                                  origin=f"file:{FLU_FILE}")
    ili = ili_visits().assign(syndrome="ili", source="ilinet", origin=f"file:{ILI_FILE}")
    first = pd.concat([flu, ili], ignore_index=True)
    first["reported_at"] = [_ts(d + timedelta(days=4), 15) for d in first["period_end"]]
    last_weeks = sorted(flu["period_end"].unique())[-3:]
    revise_up = (first["syndrome"] == "flu_admissions") & first["region_id"].isin(["06", "36", "48"]) & first["period_end"].isin(last_weeks)
    revise_down = (first["syndrome"] == "flu_admissions") & (first["region_id"] == "12") & (first["period_end"] == date(2023, 5, 27))
    revisions = first[revise_up | revise_down].copy()
    first.loc[revise_up, "count"] = (first.loc[revise_up, "count"] * 0.8).round().astype("int64")
    first.loc[revise_down, "count"] = (first.loc[revise_down, "count"] * 1.1).round().astype("int64")
    revisions["reported_at"] = revisions["reported_at"] + timedelta(days=7)
    revisions["origin"] = "kafka:symptoms.reports.v1"
    revisions["kafka_partition"] = [int(r) % 4 for r in revisions["region_id"]]
    revisions["kafka_offset"] = np.arange(len(revisions), dtype="int64") + 1000
    for df in (first, revisions):
        df["schema_version"] = 1
        df["ingested_at"] = df["reported_at"] + timedelta(minutes=3)
    first["kafka_partition"] = pd.NA
    first["kafka_offset"] = pd.NA
    return first, revisions


# -- affect windows -------------------------------------------------------------------------------

_SITE_HOURS = {"ed": range(0, 24), "clinic": range(8, 18), "transit": range(6, 22), "school": range(8, 15)}


def _device_id(region: str, i: int) -> str:
    return hashlib.sha256(f"fixture-device|{region}|{i}".encode()).hexdigest()[:24]


def affect_frame(rng: np.random.Generator, weekly_admissions: pd.DataFrame) -> pd.DataFrame:
    """Hourly simulated windows for every fixture state plus the small-cell county (see module doc)."""
    days = pd.date_range(AFFECT_FROM, AFFECT_TO, freq="D")
    # A distress signal that follows the state's admissions (normalised), plus noise: simulated.
    level = {}
    for region, grp in weekly_admissions.groupby("region_id"):
        s = grp.set_index("period_end")["count"].astype(float)
        level[region] = (s / max(s.max(), 1.0)).to_dict()
    rows: list[pd.DataFrame] = []
    for r_i, region in enumerate(STATES):
        n_devices = 4 + r_i % 3  # 4..6 devices per state
        for d_i in range(n_devices):
            site = ("ed", "clinic", "transit", "ed", "school", "clinic")[d_i]
            rows.append(_device_windows(rng, region, d_i, site, days, level.get(region, {})))
    few = _device_windows(rng, FEW_OBSERVATIONS_REGION, 0, "clinic", pd.DatetimeIndex([]), {})
    rows.append(few)
    df = pd.concat(rows, ignore_index=True)
    # Drop every device but two in the few-devices region-week.
    region, week = FEW_DEVICES_CELL
    in_week = (df["region_id"] == region) & (df["window_start"] >= _ts(week)) & (df["window_start"] < _ts(week + timedelta(days=7)))
    keep_devices = {_device_id(region, 0), _device_id(region, 1)}
    df = df[~(in_week & ~df["device_id"].isin(keep_devices))]
    df = pd.concat([df, _few_observation_windows()], ignore_index=True)
    df = df.sort_values(["window_start", "device_id"]).reset_index(drop=True)
    df["kafka_topic"] = "affect.windows.v1"
    df["kafka_partition"] = [int(hashlib.md5(r.encode()).hexdigest(), 16) % 4 for r in df["region_id"]]
    df["kafka_offset"] = df.groupby("kafka_partition").cumcount().astype("int64")
    return df


def _device_windows(rng, region: str, d_i: int, site: str, days: pd.DatetimeIndex, level: dict) -> pd.DataFrame:
    hours = list(_SITE_HOURS[site])
    starts = [datetime(d.year, d.month, d.day, h, tzinfo=UTC) for d in days for h in hours]
    n = len(starts)
    if n == 0:
        return pd.DataFrame()
    start = pd.Series(pd.to_datetime(starts, utc=True))
    hour = start.dt.hour.to_numpy()
    week_end = [(s + timedelta(days=(5 - s.weekday()) % 7)).date() for s in starts]
    signal = np.array([level.get(w, 0.5) for w in week_end])
    busy = 0.5 + 0.5 * np.sin((hour - 6) / 24 * 2 * np.pi).clip(0)  # more people during the day
    n_obs = (11 + rng.poisson(8 + 40 * busy)).astype("int32")
    n_abst = rng.binomial(n_obs, 0.08).astype("int32")
    modality = "voice" if site == "transit" else "face"
    rollout = region in ROLLOUT_STATES
    model = np.where(rollout & (start >= MODEL_ROLLOUT).to_numpy(), "affect-1.5.0", "affect-1.4.0")
    shift = np.where(model == "affect-1.5.0", 0.05, 0.0)  # the new model scores slightly more positive
    valence = (0.1 - 0.25 * signal + shift + rng.normal(0, 0.08, n)).clip(-1, 1)
    arousal = (0.05 + 0.2 * signal + rng.normal(0, 0.08, n)).clip(-1, 1)
    distress = (0.08 + 0.2 * signal + rng.normal(0, 0.03, n)).clip(0, 1)
    device = _device_id(region, d_i)
    return pd.DataFrame({
        "device_id": device,
        "region_id": region,
        "site_type": site,
        "window_start": start,
        "window_end": start + pd.Timedelta(hours=1),
        "n_observations": n_obs,
        "n_abstained": n_abst,
        "valence_mean": valence.round(4),
        "arousal_mean": arousal.round(4),
        "valence_sd": rng.uniform(0.15, 0.35, n).round(4),
        "arousal_sd": rng.uniform(0.15, 0.35, n).round(4),
        "distress_share": distress.round(4),
        "confidence_mean": rng.uniform(0.55, 0.9, n).round(4),
        "quality_pose_stability": rng.uniform(0.6, 0.95, n).round(3) if modality == "face" else np.nan,
        "quality_lighting": rng.uniform(0.5, 0.95, n).round(3) if modality == "face" else np.nan,
        "quality_snr_db": rng.uniform(8, 25, n).round(2) if modality == "voice" else np.nan,
        "modality": modality,
        "model_version": model,
        "dp_epsilon": 1.0 if d_i % 2 else np.nan,
        "schema_version": 1,
        "simulated": True,
        "produced_at": start + pd.Timedelta(hours=1, seconds=20),
        "ingested_at": start + pd.Timedelta(hours=1, minutes=2),
    })


def _few_observation_windows() -> pd.DataFrame:
    """County 04013: three devices, one window each, 3 scored observations (+ 9 abstained) each: 9 < k_min.

    Windows below today's k_min are rejected at ingest; these stand for windows written while the
    deployment ran with a lower k_min (a setting later raised), the one way a cell falls below k_min."""
    rows = []
    for i in range(3):
        start = _ts(FEW_OBSERVATIONS_WEEK + timedelta(days=1 + 2 * i), 10)  # Mon, Wed, Fri
        rows.append({
            "device_id": _device_id(FEW_OBSERVATIONS_REGION, i), "region_id": FEW_OBSERVATIONS_REGION,
            "site_type": "clinic", "window_start": start, "window_end": start + timedelta(hours=1),
            "n_observations": 3, "n_abstained": 9, "valence_mean": -0.4 + 0.1 * i, "arousal_mean": 0.3,
            "valence_sd": 0.2, "arousal_sd": 0.2, "distress_share": 0.5, "confidence_mean": 0.35,
            "quality_pose_stability": 0.4, "quality_lighting": 0.2, "quality_snr_db": np.nan,
            "modality": "face", "model_version": "affect-1.4.0", "dp_epsilon": np.nan, "schema_version": 1,
            "simulated": True, "produced_at": start + timedelta(hours=1, seconds=20),
            "ingested_at": start + timedelta(hours=1, minutes=2),
        })
    df = pd.DataFrame(rows)
    for col in ("window_start", "window_end", "produced_at", "ingested_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


# -- forecasts and scores ---------------------------------------------------------------------------

def forecast_frame(truth: pd.DataFrame) -> pd.DataFrame:
    """Hubverse quantile rows for the last four reference dates, models baseline and ensemble.

    Both models see the admissions up to the week before the reference date. ``baseline`` is flat
    (FluSight-style persistence) with a widening normal spread; ``ensemble`` follows the recent
    growth rate with a narrower spread. Quantiles are clipped at zero, so they never cross.
    One earlier, superseded ensemble run exists for the last reference date.
    """
    from scipy.stats import norm

    z = norm.ppf(QUANTILE_LEVELS)
    rows = []
    for ref in REFERENCE_DATES:
        for region, grp in truth.groupby("region_id"):
            hist = grp[grp["period_end"] <= ref - timedelta(days=7)].sort_values("period_end")["count"].to_numpy(float)
            last, prev = hist[-1], hist[-2]
            growth = float(np.clip((last + 1) / (prev + 1), 0.8, 1.2))
            for model in ("baseline", "ensemble"):
                runs = [("", 0)]
                if model == "ensemble" and ref == REFERENCE_DATES[-1]:
                    runs = [("-superseded", -1), ("", 0)]
                for suffix, shift_days in runs:
                    created = _ts(ref - timedelta(days=3), 12) + timedelta(days=shift_days)
                    for h in range(4):
                        if model == "baseline":
                            median, sd = last, max(4.0, 0.25 * last) * np.sqrt(h + 1)
                        else:
                            median, sd = last * growth ** ((h + 1) / 2), max(3.0, 0.2 * last) * np.sqrt(h + 1)
                        if suffix:
                            median *= 1.3
                        values = np.maximum(0.0, median + sd * z)
                        for level, value in zip(QUANTILE_LEVELS, values):
                            rows.append((ref, h, TARGET, ref + timedelta(weeks=h), region, "quantile", level,
                                         round(float(value), 3), model, created, f"run-{ref:%Y%m%d}{suffix}"))
    cols = ["reference_date", "horizon", "target", "target_end_date", "location", "output_type", "output_type_id",
            "value", "model", "created_at", "run_id"]
    return pd.DataFrame(rows, columns=cols)


def interval_scores(levels: np.ndarray, values: np.ndarray, y: float) -> dict:
    """WIS and its decomposition (Bracher et al. 2021) plus central interval coverage and PIT."""
    lv = np.round(levels, 4)
    median = float(values[lv == 0.5][0])
    lower_levels = lv[lv < 0.5]
    k = len(lower_levels)
    disp = over = under = 0.0
    cover = {}
    for lo_level in lower_levels:
        alpha = 2 * lo_level
        lo = float(values[lv == lo_level][0])
        hi = float(values[lv == round(1 - lo_level, 4)][0])
        disp += alpha / 2 * (hi - lo)
        over += max(lo - y, 0.0)
        under += max(y - hi, 0.0)
        cover[round(1 - alpha, 3)] = lo <= y <= hi
    over += 0.5 * max(median - y, 0.0)
    under += 0.5 * max(y - median, 0.0)
    scale = 1 / (k + 0.5)
    disp, over, under = disp * scale, over * scale, under * scale
    return {
        "wis": disp + over + under, "dispersion": disp, "overprediction": over, "underprediction": under,
        "cover_50": cover[0.5], "cover_80": cover[0.8], "cover_95": cover[0.95],
        "pit": float(np.interp(y, values, levels, left=0.0, right=1.0)),
    }


def score_frame(forecasts: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Scores of the latest run per (model, location, reference date, horizon) whose target week is observed."""
    observed = truth.set_index(["region_id", "period_end"])["count"].to_dict()
    latest = forecasts[~forecasts["run_id"].str.endswith("-superseded")]
    rows = []
    for (model, loc, ref, h), grp in latest.groupby(["model", "location", "reference_date", "horizon"]):
        end = ref + timedelta(weeks=int(h))
        if (loc, end) not in observed:
            continue
        y = float(observed[(loc, end)])
        grp = grp.sort_values("output_type_id")
        sc = interval_scores(grp["output_type_id"].to_numpy(), grp["value"].to_numpy(), y)
        rows.append({"model": model, "location": loc, "target": TARGET, "reference_date": ref, "horizon": int(h),
                     **sc, "observed": y, "created_at": FIXTURE_NOW - timedelta(hours=6), "run_id": "score-20230628"})
    return pd.DataFrame(rows)


def affect_lift_frame() -> pd.DataFrame:
    """Backtest verdicts: California informative, Arizona insufficient data, the rest not informative."""
    rows = []
    for i, region in enumerate([*STATES, "overall"]):
        if region == "06":
            r = (1.14, 1.04, 1.25, 2.0, 1.0, 3.0, True, "affect informative", 30)
        elif region == "04":
            r = (None, None, None, None, None, None, False, "insufficient data", 4)
        else:
            ratio = 0.97 + 0.01 * (i % 5)
            r = (ratio, ratio - 0.08, ratio + 0.07, 1.0, 0.0, 3.0, False, "affect not informative here", 30)
        rows.append({"location": region, "target": TARGET, "wis_ratio": r[0], "ratio_lo": r[1], "ratio_hi": r[2],
                     "lead": r[3], "lead_lo": r[4], "lead_hi": r[5], "lead_unit": None if r[3] is None else "weeks",
                     "informative": r[6], "verdict": r[7], "n_forecasts": r[8], "simulated": True,
                     "created_at": FIXTURE_NOW - timedelta(hours=5), "run_id": "backtest-20230628"})
    return pd.DataFrame(rows)


# -- alerts, ops tables ------------------------------------------------------------------------------

def alert_frames() -> dict[str, pd.DataFrame]:
    """Four alerts covering the lifecycle, their events and one acknowledgement."""
    t = FIXTURE_NOW
    ev = lambda **kw: json.dumps(kw, sort_keys=True)  # noqa: E731
    alerts = [
        dict(alert_id="48|flu_admissions|2023-06-17", region_id="48", signal="flu_admissions", level="red",
             status="open", rule="admissions_surge", detectors="farrington,forecast_exceedance", statistic=3.4,
             threshold=2.58, p_value=0.0007, probability=0.91, observed=109.0, expected=71.5,
             data_start=date(2022, 10, 2), data_end=date(2023, 6, 24), provisional=True,
             evidence=ev(farrington={"z": 3.4, "threshold": 2.58}, forecast_exceedance={"probability": 0.91}),
             first_seen=t - timedelta(days=4), last_updated=t - timedelta(hours=6), resolved_at=None,
             created_at=t - timedelta(days=4)),
        dict(alert_id="06|affect_distress|2023-06-11", region_id="06", signal="affect_distress", level="yellow",
             status="ongoing", rule="distress_rise", detectors="cusum", statistic=5.2, threshold=4.0,
             p_value=None, probability=None, observed=0.21, expected=0.17, data_start=AFFECT_FROM,
             data_end=AFFECT_TO, provisional=False, evidence=ev(cusum={"s": 5.2, "h": 4.0, "k": 0.5}),
             first_seen=t - timedelta(days=12), last_updated=t - timedelta(hours=6), resolved_at=None,
             created_at=t - timedelta(days=12)),
        dict(alert_id="36|ili|2023-05-14", region_id="36", signal="ili", level="yellow", status="resolved",
             rule="ili_above_baseline", detectors="farrington", statistic=2.9, threshold=2.58, p_value=0.004,
             probability=None, observed=1480.0, expected=1130.0, data_start=date(2022, 10, 2),
             data_end=date(2023, 5, 20), provisional=False, evidence=ev(farrington={"z": 2.9, "threshold": 2.58}),
             first_seen=t - timedelta(days=40), last_updated=t - timedelta(days=26),
             resolved_at=t - timedelta(days=26), created_at=t - timedelta(days=40)),
        dict(alert_id="04|affect_distress|2023-06-18", region_id="04", signal="affect_distress",
             level="insufficient_data", status="open", rule="distress_rise", detectors=None, statistic=None,
             threshold=4.0, p_value=None, probability=None, observed=None, expected=None, data_start=AFFECT_FROM,
             data_end=AFFECT_TO, provisional=False, evidence=ev(reason="fewer than 3 devices or k_min observations"),
             first_seen=t - timedelta(days=3), last_updated=t - timedelta(hours=6), resolved_at=None,
             created_at=t - timedelta(days=3)),
    ]
    events = [
        ("48|flu_admissions|2023-06-17", "opened", "yellow", "farrington z=2.7", t - timedelta(days=4)),
        ("48|flu_admissions|2023-06-17", "escalated", "red", "forecast exceedance p=0.91", t - timedelta(days=2)),
        ("06|affect_distress|2023-06-11", "opened", "yellow", "cusum s=4.3", t - timedelta(days=12)),
        ("06|affect_distress|2023-06-11", "new_evidence", "yellow", "cusum s=5.2", t - timedelta(hours=6)),
        ("36|ili|2023-05-14", "opened", "yellow", "farrington z=2.9", t - timedelta(days=40)),
        ("36|ili|2023-05-14", "resolved", "yellow", "two weeks below threshold", t - timedelta(days=26)),
        ("04|affect_distress|2023-06-18", "opened", "insufficient_data", "too few devices", t - timedelta(days=3)),
    ]
    acks = [("48|flu_admissions|2023-06-17", "epi.lead@health.example.org", t - timedelta(days=1),
             "Confirmed with TX DSHS; hospital surge plan activated.", "true_alarm")]
    return {
        "alerts": pd.DataFrame(alerts),
        "alert_events": pd.DataFrame(events, columns=["alert_id", "event", "level", "detail", "event_at"]),
        "alert_acks": pd.DataFrame(acks, columns=["alert_id", "acknowledged_by", "acknowledged_at", "note", "label"]),
    }


def dead_letter_frame() -> pd.DataFrame:
    """Rejected records with several named reasons over the last week of the affect period."""
    base = _ts(AFFECT_TO, 9)
    specs = [
        ("bad_json", b'{"schema_version": 1, "device_id": "a1b2c3d4e5f6", ', "Expecting value: line 1 column 45", "06"),
        ("bad_json", b"\xff\xfe not json", "invalid utf-8 start byte", "36"),
        ("bad_json", b'{"schema_version": 1,,}', "Expecting property name", "48"),
        ("unknown_field", b'{"schema_version": 1, "face_embedding": [0.1]}', "Object contains unknown field `face_embedding`", "06"),
        ("unknown_field", b'{"schema_version": 1, "person_id": "x"}', "Object contains unknown field `person_id`", "12"),
        ("below_k_anonymity", b'{"schema_version": 1, "n_observations": 4}', "n_observations=4 < k_min=11", "25"),
        ("below_k_anonymity", b'{"schema_version": 1, "n_observations": 7}', "n_observations=7 < k_min=11", "25"),
        ("below_k_anonymity", b'{"schema_version": 1, "n_observations": 9}', "n_observations=9 < k_min=11", "04"),
        ("below_k_anonymity", b'{"schema_version": 1, "n_observations": 10}', "n_observations=10 < k_min=11", "17"),
        ("value_out_of_range", b'{"schema_version": 1, "valence_mean": 1.7}', "Expected `float` <= 1.0 - at `$.valence_mean`", "53"),
        ("value_out_of_range", b'{"schema_version": 1, "distress_share": -0.2}', "Expected `float` >= 0.0 - at `$.distress_share`", "06"),
        ("future_window", b'{"schema_version": 1, "window_end": "2023-06-25T09:00:00Z"}', "window_end 2023-06-25T09:00:00Z is 23h in the future", "48"),
        ("bad_region_id", b'{"schema_version": 1, "region_id": "California"}', "region_id 'California' is not FIPS or H3", None),
    ]
    rows = []
    for i, (reason, raw, detail, region) in enumerate(specs):
        at = base - timedelta(days=i % 6, hours=i)
        rows.append({"topic": "affect.windows.v1", "kafka_partition": i % 4, "kafka_offset": 50_000 + i,
                     "message_key": region.encode() if region else None, "raw": raw, "reason": reason,
                     "detail": detail, "produced_at": at - timedelta(seconds=2), "received_at": at})
    rows.append({"topic": f"file:{FLU_FILE}", "kafka_partition": None, "kafka_offset": None, "message_key": None,
                 "raw": b"2023-06-24,US,US,NA,", "reason": "value_out_of_range", "detail": "count is NA",
                 "produced_at": None, "received_at": base - timedelta(days=2)})
    return pd.DataFrame(rows)


def ingest_frames(affect: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One committed batch per day (counts consistent with the windows) and the final offsets."""
    day = affect["window_end"].dt.floor("D")
    per_day = affect.groupby(day).size()
    batches = pd.DataFrame({
        "consumer_group": "affectwatch-ingest",
        "committed_at": [d.to_pydatetime() + timedelta(hours=23, minutes=59) for d in per_day.index],
        "n_messages": per_day.to_numpy().astype("int32"),
        "n_affect": per_day.to_numpy().astype("int32"),
        "n_symptoms": 0,
        "n_duplicates": [int(i % 7 == 3) * 5 for i in range(len(per_day))],
        "n_dead_letters": 0,
        "max_lag": [int(i % 5) * 10 for i in range(len(per_day))],
        "seconds": [0.05 + 0.001 * (i % 9) for i in range(len(per_day))],
    })
    batches["n_messages"] = batches["n_messages"] + batches["n_duplicates"]
    last = affect.groupby("kafka_partition")["kafka_offset"].max()
    offsets = pd.DataFrame({"consumer_group": "affectwatch-ingest", "topic": "affect.windows.v1",
                            "kafka_partition": last.index.astype("int32"), "next_offset": (last + 1).to_numpy(),
                            "committed_at": batches["committed_at"].max()})
    return {"ingest_batches": batches, "ingest_offsets": offsets}


def notification_frames() -> dict[str, pd.DataFrame]:
    t = FIXTURE_NOW
    subs = pd.DataFrame([
        ("sub-tx-red", "tx.epi@health.example.org", "48", "red", "immediate", None, None, True, t - timedelta(days=90)),
        ("sub-all-digest", "state.epi@health.example.org", "*", "yellow", "digest", "07:30", "America/New_York", True, t - timedelta(days=90)),
        ("sub-ca-yellow", "ca.epi@health.example.org", "06,04", "yellow", "immediate", None, None, True, t - timedelta(days=60)),
        ("sub-old", "former.staff@health.example.org", "36", "yellow", "immediate", None, None, False, t - timedelta(days=200)),
    ], columns=["subscription_id", "recipient", "regions", "min_level", "mode", "digest_time", "timezone", "active", "created_at"])
    outbox = pd.DataFrame([
        ("<alert-48-red.1@affectwatch.local>", "tx.epi@health.example.org", "immediate", "48|flu_admissions|2023-06-17",
         "[AffectWatch] RED: Texas influenza admissions", "sent", 1, None, None, t - timedelta(days=2), t - timedelta(days=2) + timedelta(seconds=4)),
        ("<alert-06-yellow.1@affectwatch.local>", "ca.epi@health.example.org", "immediate", "06|affect_distress|2023-06-11",
         "[AffectWatch] YELLOW: California affect distress (simulated)", "sent", 2, None, None, t - timedelta(days=12), t - timedelta(days=12) + timedelta(minutes=1)),
        ("<digest-20230628@affectwatch.local>", "state.epi@health.example.org", "digest",
         "48|flu_admissions|2023-06-17,06|affect_distress|2023-06-11", "[AffectWatch] Daily digest 2023-06-28", "pending", 0,
         t + timedelta(hours=1), None, t, None),
        ("<alert-04-insufficient.1@affectwatch.local>", "ca.epi@health.example.org", "immediate", "04|affect_distress|2023-06-18",
         "[AffectWatch] Arizona: insufficient data for affect distress", "failed", 8, None,
         "SMTP 550 mailbox unavailable", t - timedelta(days=3), None),
    ], columns=["message_id", "recipient", "kind", "alert_ids", "subject", "status", "attempts", "next_attempt_at",
                "last_error", "created_at", "sent_at"])
    attempts = []
    for m in outbox.itertuples():
        for a in range(1, m.attempts + 1):
            ok = m.status == "sent" and a == m.attempts
            attempts.append((m.message_id, a, m.created_at + timedelta(seconds=30 * 2 ** (a - 1)), "sent" if ok else "error",
                             None if ok else (m.last_error or "timed out")))
    runs = pd.DataFrame([
        ("forecast", t - timedelta(hours=6, minutes=10), t - timedelta(hours=6, minutes=8), "ok", "64 series"),
        ("detect", t - timedelta(hours=6), t - timedelta(hours=5, minutes=59), "ok", "4 alerts"),
        ("email", t - timedelta(minutes=5), t - timedelta(minutes=5) + timedelta(seconds=3), "ok", "0 sent"),
    ], columns=["job", "started_at", "finished_at", "status", "detail"])
    return {
        "subscriptions": subs,
        "email_outbox": outbox,
        "email_attempts": pd.DataFrame(attempts, columns=["message_id", "attempt", "attempted_at", "outcome", "error"]),
        "scheduler_runs": runs,
    }


# -- build -------------------------------------------------------------------------------------------

def _insert(con, table: str, df: pd.DataFrame) -> int:
    if df.empty:
        return 0
    con.register("_fixture_df", df)
    try:
        cols = ", ".join(f'"{c}"' for c in df.columns)
        con.execute(f"insert into {table} ({cols}) select {cols} from _fixture_df")
    finally:
        con.unregister("_fixture_df")
    return len(df)


def build_fixture_warehouse(settings: Settings | None = None, seed: int = 0) -> dict[str, int]:
    """Migrate the warehouse of ``settings`` and fill it with the fixture; returns rows per table.

    Writes happen in two transactions: everything except the symptom revisions first, then the
    revisions, so that the snapshot before the last one holds only the first reports.
    """
    from affectwatch.warehouse import migrate, session, transaction
    from ingest.load_affect import fixture_frame as survey_fixture_frame

    s = settings or get_settings()
    rng = np.random.default_rng(seed)
    first, revisions = symptom_frames()
    flu_truth = pd.concat([first, revisions])
    flu_truth = flu_truth[flu_truth["syndrome"] == "flu_admissions"].sort_values("reported_at")
    flu_truth = flu_truth.drop_duplicates(["region_id", "period_end"], keep="last")
    affect = affect_frame(rng, flu_truth)
    forecasts = forecast_frame(flu_truth)
    frames: dict[str, pd.DataFrame] = {
        "symptom_reports": first,
        "affect_windows": affect,
        "forecasts": forecasts,
        "forecast_scores": score_frame(forecasts, flu_truth),
        "affect_lift": affect_lift_frame(),
        "dead_letters": dead_letter_frame(),
        "survey_affect": survey_fixture_frame(DATA / "affect_real" / "ctis_smoothed_wdepressed_7d.csv.gz"),
        **alert_frames(),
        **ingest_frames(affect),
        **notification_frames(),
    }
    with session(s) as con:
        migrate(con)
        counts = transaction(con, lambda: {table: _insert(con, table, df) for table, df in frames.items()},
                             what="fixture warehouse")
        counts["symptom_reports"] += transaction(con, lambda: _insert(con, "symptom_reports", revisions),
                                                 what="fixture symptom revisions")
    log.info("fixture warehouse built", data_dir=str(s.data_dir), **counts)
    return counts
