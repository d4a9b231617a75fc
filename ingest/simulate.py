"""Device-fleet simulator: SIMULATED AffectWindows driven by a REAL symptom series.

Every affect value produced here is synthetic (``simulated=True`` in the warehouse, Kafka header
``aw-simulated: 1``). The symptom reports are the real weekly values of the input series
(default: FluSight/NHSN influenza hospital admissions).

How a window is made: for each device and window the simulator draws a number of observations
(daily and weekly activity cycles, device dropouts), draws per-observation valence, arousal and
model confidence, and hands them to the edge aggregator (``ingest.edge.aggregate_segments``) —
so abstention, k_min suppression and (optionally) Laplace noise work exactly as on a device.

Scenarios (the latent "epidemic affect" signal z in [0, 1] of a region and day):
* ``lead``: z is the region's symptom series shifted *earlier* by ``lead_days`` (default 14),
  log-scaled and min-max normalised per region. Distress share and arousal rise with z, so
  affect leads the symptoms by ``lead_days``.
  Region "mood swings" (an AR(1) process, SD 0.15) are added so that the lead is imperfect.
* ``null``: z is an AR(1) process (phi 0.8 per day) drawn independently of any symptom data:
  a negative control in which affect carries no information about symptoms.

Nuisances present in both scenarios: daily and weekly cycles of activity and arousal (local
standard time), devices going silent for days (dropouts), lighting/quality dips that lower the
model confidence and raise abstentions, and a model update from ``v1.3`` to ``v2.0`` rolled out
over a week from ``model_change`` that adds +0.08 to arousal.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import msgspec
import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.settings import REPO_ROOT, Settings, get_settings
from ingest.contracts import AFFECT_COLUMNS
from ingest.edge import QUALITY_KEYS, aggregate_segments, pseudonymous_device_id

log = get_logger(__name__)

DEFAULT_SERIES = REPO_ROOT / "data" / "flusight" / "target-hospital-admissions.csv"
SIMULATOR_SECRET = b"affectwatch-simulated-fleet"  # device-id secret of the simulated fleet
MODEL_OLD, MODEL_NEW = "v1.3", "v2.0"
MODEL_NEW_AROUSAL_SHIFT = 0.08
SCENARIOS = ("lead", "null")
SIMULATED_HEADER = ("aw-simulated", b"1")

SITE_TYPES = np.array(["ed", "clinic", "transit", "school", "other"])
SITE_P = np.array([0.45, 0.25, 0.15, 0.10, 0.05])
SITE_RATE = {"ed": 30.0, "clinic": 22.0, "transit": 40.0, "school": 25.0, "other": 18.0}  # obs/hour at peak
MODALITIES = np.array(["face", "voice", "multimodal"])
MODALITY_P = np.array([0.6, 0.25, 0.15])

# Local standard-time offset (hours) by state FIPS, for daily cycles. DST is ignored.
UTC_OFFSET = {
    "01": -6, "02": -9, "04": -7, "05": -6, "06": -8, "08": -7, "09": -5, "10": -5, "11": -5, "12": -5,
    "13": -5, "15": -10, "16": -7, "17": -6, "18": -5, "19": -6, "20": -6, "21": -5, "22": -6, "23": -5,
    "24": -5, "25": -5, "26": -5, "27": -6, "28": -6, "29": -6, "30": -7, "31": -6, "32": -8, "33": -5,
    "34": -5, "35": -7, "36": -5, "37": -5, "38": -6, "39": -5, "40": -6, "41": -8, "42": -5, "44": -5,
    "45": -5, "46": -6, "47": -6, "48": -6, "49": -7, "50": -5, "51": -5, "53": -8, "54": -5, "55": -6,
    "56": -7, "60": -11, "66": 10, "69": 10, "72": -4, "78": -4,
}
# Relative activity by weekday (Mon..Sun) per site type.
WEEKLY_ACTIVITY = {
    "ed": [1.1, 1.0, 1.0, 1.0, 1.0, 0.95, 0.95],
    "clinic": [1.1, 1.05, 1.0, 1.0, 0.95, 0.4, 0.15],
    "transit": [1.05, 1.05, 1.05, 1.05, 1.0, 0.6, 0.5],
    "school": [1.0, 1.0, 1.0, 1.0, 0.95, 0.05, 0.05],
    "other": [1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.7],
}
AROUSAL_BY_WEEKDAY = np.array([0.04, 0.02, 0.0, 0.0, 0.01, -0.03, -0.04])


# -- input series --------------------------------------------------------------------------------
def load_series(path: str | Path = DEFAULT_SERIES) -> pd.DataFrame:
    """Read FluSight target data (either layout of :mod:`affectwatch.target_data`, the latest vintage
    when it has ``as_of``) into ``region_id, date, value`` (drops 'US' and NA values)."""
    from analytics.hubverse import read_target_csv
    from analytics.scoring import latest_truth

    df = latest_truth(read_target_csv(path))  # FormatError (a ValueError) names the columns needed
    df = df[df["location"] != "US"]
    loc = df["location"].str.strip()
    loc = loc.where(loc.str.len() != 1, loc.str.zfill(2))  # '6' -> '06' (spreadsheet-stripped zero)
    out = pd.DataFrame({"region_id": loc, "date": df["date"], "value": df["value"].astype(float)})
    return out.sort_values(["region_id", "date"]).reset_index(drop=True)


def _as_date(value, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an ISO date (YYYY-MM-DD)") from None


def _check_series(series: pd.DataFrame) -> pd.DataFrame:
    need = {"region_id", "date", "value"}
    if not need <= set(series.columns):
        raise ValueError(f"series: columns needed {sorted(need)}, found {list(series.columns)}")
    s = series[["region_id", "date", "value"]].copy()
    s["date"] = pd.to_datetime(s["date"])
    if s["value"].isna().any() or (s["value"] < 0).any():
        bad = s[s["value"].isna() | (s["value"] < 0)].head(3)
        raise ValueError(f"series: values must be non-negative numbers, e.g. {bad.to_dict('records')}")
    return s


def _pick_regions(series: pd.DataFrame, regions: Iterable[str] | None) -> list[str]:
    available = sorted(series["region_id"].unique())
    if regions is None:
        return available
    regions = [r.strip() for r in regions if r.strip()]
    unknown = sorted(set(regions) - set(available))
    if unknown:
        raise ValueError(f"regions {unknown} are not in the symptom series; available: {', '.join(available)}")
    return sorted(set(regions))


def _date_range(series: pd.DataFrame, start, end) -> tuple[date, date]:
    s = _as_date(start, "start") if start is not None else (series["date"].min() - pd.Timedelta(days=6)).date()
    e = _as_date(end, "end") if end is not None else series["date"].max().date()
    if e < s:
        raise ValueError(f"end {e} is before start {s}")
    return s, e


# -- latent signal -------------------------------------------------------------------------------
def _stable_seed(*parts) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


def _daily_symptoms(region_series: pd.DataFrame, days: pd.DatetimeIndex) -> np.ndarray:
    """Weekly values placed mid-week (Wednesday), interpolated daily, held flat beyond the ends."""
    mid = (region_series["date"] - pd.Timedelta(days=3)).to_numpy(dtype="datetime64[D]").astype(np.int64)
    x = np.log1p(region_series["value"].to_numpy(dtype=float))
    return np.interp(days.to_numpy(dtype="datetime64[D]").astype(np.int64), mid, x)


LEAD_NOISE_SD = 0.15  # in the lead scenario, z = normalised lead series + 0.15 x AR(1) noise
AR_PHI = 0.8  # daily persistence of the AR(1) mood process


def _ar1(rng: np.random.Generator, n: int, burn_in: int = 60) -> np.ndarray:
    """A stationary AR(1) series with unit variance (phi = AR_PHI per day)."""
    eps = rng.normal(0.0, np.sqrt(1 - AR_PHI**2), n + burn_in)
    out = np.empty(n + burn_in)
    out[0] = rng.normal()
    for t in range(1, len(out)):
        out[t] = AR_PHI * out[t - 1] + eps[t]
    return out[burn_in:]


def latent_signal(series: pd.DataFrame, regions: list[str], days: pd.DatetimeIndex, scenario: str, lead_days: int, seed: int,
                  drivers: dict[str, str] | None = None) -> np.ndarray:
    """z[region, day] in [0, 1]: the driver of distress and arousal (see module docstring).

    ``drivers`` maps a county or H3 region to the state whose symptom series drives it; its own
    AR(1) mood swings (seeded by its id) make it differ from the state and its neighbours.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario {scenario!r} is not one of {SCENARIOS}")
    drivers = drivers or {}
    z = np.zeros((len(regions), len(days)))
    for i, region in enumerate(regions):
        noise = _ar1(np.random.default_rng(_stable_seed(seed, scenario, region)), len(days))
        if scenario == "lead":
            rs = series[series["region_id"] == drivers.get(region, region)].sort_values("date")
            x = _daily_symptoms(rs, days + pd.Timedelta(days=lead_days))
            lo, hi = np.log1p(rs["value"].min()), np.log1p(rs["value"].max())
            driver = (x - lo) / (hi - lo) if hi > lo else np.zeros(len(days))
            z[i] = driver + LEAD_NOISE_SD * noise  # the signal plus region mood swings unrelated to it
        else:
            z[i] = 1 / (1 + np.exp(-1.7 * noise))  # logistic to (0, 1), spread like the lead driver
    return np.clip(z, 0.0, 1.0)


# -- fleet ---------------------------------------------------------------------------------------
@dataclass
class Fleet:
    region_idx: np.ndarray
    hardware_id: np.ndarray
    site_type: np.ndarray
    modality: np.ndarray
    rate: np.ndarray  # observations per hour at peak activity
    valence_offset: np.ndarray
    arousal_offset: np.ndarray
    rollout_delay: np.ndarray  # days after model_change when the device gets v2.0
    utc_offset: np.ndarray
    weekly: np.ndarray  # (devices, 7) activity by weekday

    @property
    def size(self) -> int:
        return len(self.region_idx)


def _utc_offset(region: str, state: str | None = None) -> int:
    state = state or region[:2]
    return UTC_OFFSET.get(state, -6) if state.isdigit() else -6


def build_fleet(regions: list[str], devices_per_region: int | list[int], seed: int,
                drivers: dict[str, str] | None = None) -> Fleet:
    """Devices of every region; ``devices_per_region`` is one number or one per region."""
    sizes = [devices_per_region] * len(regions) if isinstance(devices_per_region, int) else list(devices_per_region)
    if len(sizes) != len(regions) or min(sizes, default=1) < 1:
        raise ValueError(f"devices_per_region must be >= 1 (one number or one per region), got {devices_per_region}")
    drivers = drivers or {}
    parts = []
    for i, (region, n) in enumerate(zip(regions, sizes)):
        rng = np.random.default_rng(_stable_seed(seed, "fleet", region))
        site = rng.choice(SITE_TYPES, n, p=SITE_P)
        parts.append({
            "region_idx": np.full(n, i),
            "hardware_id": np.array([f"sim-{region}-{seed}-{k:05d}" for k in range(n)]),
            "site_type": site,
            "modality": rng.choice(MODALITIES, n, p=MODALITY_P),
            "rate": np.array([SITE_RATE[s] for s in site]) * rng.lognormal(0, 0.35, n),
            "valence_offset": rng.normal(0, 0.05, n),
            "arousal_offset": rng.normal(0, 0.05, n),
            "rollout_delay": rng.integers(0, 7, n),
            "utc_offset": np.full(n, _utc_offset(region, drivers.get(region))),
            "weekly": np.array([WEEKLY_ACTIVITY[s] for s in site]),
        })
    return Fleet(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def _activity(local_hour: np.ndarray) -> np.ndarray:
    """Relative activity by local hour: ~0.15 at 4 am, 1.0 mid-afternoon."""
    return 0.15 + 0.85 * np.exp(-(((local_hour - 15.0) / 5.0) ** 2))


# -- simulation core -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulationPlan:
    series: pd.DataFrame
    scenario: str
    regions: list[str]
    start: date
    end: date
    devices_per_region: int
    window_minutes: int
    lead_days: int
    seed: int
    k_min: int
    model_change: date
    dp_epsilon: float | None
    devices: tuple[int, ...] = ()  # per region (states: devices_per_region; counties/H3: by population)
    drivers: dict | None = None  # county / H3 region -> the state whose series drives it


def _plan(series, scenario, start, end, regions, devices_per_region, window_minutes, lead_days, seed, settings,
          model_change, dp_epsilon, counties=None, h3_resolution=None, people_per_device=300_000) -> SimulationPlan:
    s = settings or get_settings()
    series = _check_series(series)
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario {scenario!r} is not one of {SCENARIOS}")
    if not 5 <= window_minutes <= 1440 or 1440 % window_minutes:
        raise ValueError(f"window_minutes={window_minutes} must divide a day and be within 5..1440")
    if lead_days < 0:
        raise ValueError(f"lead_days must be >= 0, got {lead_days}")
    picked = _pick_regions(series, regions)
    devices = [devices_per_region] * len(picked)
    drivers: dict[str, str] = {}
    if counties:
        from ingest.sim_geo import sub_state_regions

        states = _pick_regions(series, counties)  # their symptom series drive the counties / cells
        for region, state, n in sub_state_regions(states, h3_resolution, people_per_device):
            picked.append(region)
            devices.append(n)
            drivers[region] = state
    elif h3_resolution is not None:
        raise ValueError("h3_resolution needs counties (the states whose area the H3 cells cover)")
    d0, d1 = _date_range(series, start, end)
    change = _as_date(model_change, "model_change") if model_change is not None else d0 + timedelta(days=int((d1 - d0).days * 0.6))
    return SimulationPlan(series, scenario, picked, d0, d1, devices_per_region, window_minutes, lead_days, seed,
                          s.privacy.k_min, change, dp_epsilon, tuple(devices), drivers)


def _simulate_frames(plan: SimulationPlan) -> Iterator[pd.DataFrame]:
    """One DataFrame (affect_windows columns + simulated) per simulated day, windows in time order."""
    days = pd.date_range(plan.start, plan.end, freq="D")
    z = latent_signal(plan.series, plan.regions, days, plan.scenario, plan.lead_days, plan.seed, plan.drivers)
    fleet = build_fleet(plan.regions, list(plan.devices) or plan.devices_per_region, plan.seed, plan.drivers)
    per_day = 1440 // plan.window_minutes
    hours = plan.window_minutes / 60.0
    active = np.ones(fleet.size, dtype=bool)
    id_cache: dict[tuple[int, str], str] = {}
    now = pd.Timestamp(datetime.now(timezone.utc).replace(tzinfo=None))  # naive UTC like the grid
    warned_future = False
    for d, day in enumerate(days):
        rng = np.random.default_rng(_stable_seed(plan.seed, plan.scenario, "day", day.date().isoformat()))
        # dropouts: an active device goes silent with p=0.02/day, a silent one returns with p=0.3/day
        flip = rng.random(fleet.size)
        active = np.where(active, flip >= 0.02, flip < 0.3)
        dip = rng.random(fleet.size) < 0.06  # lighting/quality dip for the whole day
        new_model = (day.date() - plan.model_change).days >= fleet.rollout_delay
        # device x window grid, time-major so output is in time order
        w_idx = np.repeat(np.arange(per_day), fleet.size)
        dev = np.tile(np.arange(fleet.size), per_day)
        starts = day + pd.to_timedelta(w_idx * plan.window_minutes, unit="m")
        mid_hour_utc = (w_idx + 0.5) * hours
        local_hour = (mid_hour_utc + fleet.utc_offset[dev]) % 24
        weekday = ((day.weekday() * 24 + mid_hour_utc + fleet.utc_offset[dev]) // 24).astype(int) % 7
        lam = fleet.rate[dev] * hours * _activity(local_hour) * fleet.weekly[dev, weekday] * active[dev]
        lam *= np.where(dip[dev], 0.9, 1.0)
        n_obs = rng.poisson(lam)
        zz = z[fleet.region_idx[dev], d]
        night = (local_hour < 6) | (local_hour >= 21)
        shift = np.where(new_model[dev], MODEL_NEW_AROUSAL_SHIFT, 0.0)
        a_mu = (-0.02 + 0.08 * np.sin(2 * np.pi * (local_hour - 9) / 24) + AROUSAL_BY_WEEKDAY[weekday]
                + fleet.arousal_offset[dev] + 0.32 * zz + shift)
        v_mu = 0.12 + 0.03 * np.sin(2 * np.pi * (local_hour - 11) / 24) + fleet.valence_offset[dev] - 0.32 * zz
        c_mu = 0.82 - 0.30 * dip[dev] - 0.08 * night * (fleet.modality[dev] != "voice")
        # observations
        seg = np.repeat(np.arange(len(n_obs)), n_obs)
        m = len(seg)
        valence = np.clip(rng.normal(v_mu[seg], 0.35), -1, 1)
        arousal = np.clip(rng.normal(a_mu[seg], 0.35), -1, 1)
        confidence = np.clip(rng.normal(c_mu[seg], 0.12), 0, 1)
        mod = fleet.modality[dev][seg]
        has_face = mod != "voice"
        quality = {
            "lighting": np.where(has_face, np.clip(rng.normal(0.85 - 0.45 * dip[dev][seg] - 0.2 * night[seg], 0.05), 0, 1), np.nan),
            "pose_stability": np.where(has_face, np.clip(rng.normal(0.8, 0.08, m), 0, 1), np.nan),
            "snr_db": np.where(mod != "face", rng.normal(22.0 - 8.0 * dip[dev][seg], 3.0), np.nan),
        }
        stats = aggregate_segments(seg, len(n_obs), valence, arousal, confidence, k_min=plan.k_min,
                                   epsilon=plan.dp_epsilon, quality=quality, rng=rng)
        keep = stats["reason"] == None  # noqa: E711 - elementwise on an object array
        ends = starts + pd.Timedelta(minutes=plan.window_minutes)
        if (ends[keep] > now).any():
            if not warned_future:
                log.warning("future windows not simulated", after=now.isoformat() + "Z")
                warned_future = True
            keep &= np.asarray(ends <= now)
        if not keep.any():
            continue
        kd = dev[keep]
        month = day.strftime("%Y-%m")
        dev_ids = np.array([
            id_cache.get((k, month)) or id_cache.setdefault((k, month), pseudonymous_device_id(fleet.hardware_id[k], day.date(), SIMULATOR_SECRET))
            for k in range(fleet.size)
        ])
        frame = pd.DataFrame({
            "device_id": dev_ids[kd],
            "region_id": np.array(plan.regions)[fleet.region_idx[kd]],
            "site_type": fleet.site_type[kd],
            "window_start": starts[keep].tz_localize("UTC"),
            "window_end": ends[keep].tz_localize("UTC"),
            **{c: stats[c][keep] for c in ("n_observations", "n_abstained", "valence_mean", "arousal_mean",
                                           "valence_sd", "arousal_sd", "distress_share", "confidence_mean")},
            **{f"quality_{k}": stats[f"quality_{k}"][keep] for k in QUALITY_KEYS},
            "modality": fleet.modality[kd],
            "model_version": np.where(new_model[kd], MODEL_NEW, MODEL_OLD),
            "dp_epsilon": stats["dp_epsilon"][keep],
            "schema_version": 1,
            "simulated": True,
        })
        frame["n_observations"] = frame["n_observations"].astype("int32")
        frame["n_abstained"] = frame["n_abstained"].astype("int32")
        frame["schema_version"] = frame["schema_version"].astype("int32")
        for c in ("device_id", "region_id", "site_type", "modality", "model_version"):
            frame[c] = frame[c].astype("string[pyarrow]")  # ~8x smaller than Python str objects
        yield frame


def _frame_records(frame: pd.DataFrame) -> Iterator[dict]:
    """AffectWindow v1 dicts (aware UTC datetimes; ``quality`` nested, missing keys omitted)."""
    cols = {c: frame[c].tolist() for c in frame.columns if c not in ("window_start", "window_end")}
    ws = pd.DatetimeIndex(frame["window_start"]).to_pydatetime()
    we = pd.DatetimeIndex(frame["window_end"]).to_pydatetime()
    for i in range(len(frame)):
        q = {k: cols[f"quality_{k}"][i] for k in QUALITY_KEYS if cols[f"quality_{k}"][i] == cols[f"quality_{k}"][i]}
        eps = cols["dp_epsilon"][i]
        yield {
            "schema_version": 1,
            "device_id": cols["device_id"][i],
            "region_id": cols["region_id"][i],
            "site_type": cols["site_type"][i],
            "window_start": ws[i],
            "window_end": we[i],
            "n_observations": cols["n_observations"][i],
            "n_abstained": cols["n_abstained"][i],
            "valence_mean": cols["valence_mean"][i],
            "arousal_mean": cols["arousal_mean"][i],
            "valence_sd": cols["valence_sd"][i],
            "arousal_sd": cols["arousal_sd"][i],
            "distress_share": cols["distress_share"][i],
            "confidence_mean": cols["confidence_mean"][i],
            "quality": q,
            "modality": cols["modality"][i],
            "model_version": cols["model_version"][i],
            "dp_epsilon": None if eps != eps else eps,  # NaN -> no noise
        }


def simulate_windows(
    series: pd.DataFrame,
    scenario: str = "lead",
    start=None,
    end=None,
    regions: Iterable[str] | None = None,
    devices_per_region: int = 20,
    window_minutes: int = 60,
    lead_days: int = 14,
    seed: int = 0,
    settings: Settings | None = None,
    *,
    model_change=None,
    dp_epsilon: float | None = None,
    counties: Iterable[str] | None = None,
    h3_resolution: int | None = None,
    people_per_device: float = 300_000,
) -> Iterator[dict]:
    """SIMULATED AffectWindow v1 dicts for ``devices_per_region`` devices in each region, days start..end.

    ``series`` has columns ``region_id, date, value`` (see ``load_series``). Deterministic given the
    arguments. Windows below k_min are suppressed by the edge aggregator and never yielded.
    ``counties`` (state FIPS codes) adds every county of those states - and with ``h3_resolution``
    the H3 cells covering them - as regions of their own, with devices by population
    (``ingest/sim_geo.py``), driven by their state's series.
    """
    plan = _plan(series, scenario, start, end, regions, devices_per_region, window_minutes, lead_days, seed,
                 settings, model_change, dp_epsilon, counties, h3_resolution, people_per_device)
    for frame in _simulate_frames(plan):
        yield from _frame_records(frame)


def affect_frame(
    series: pd.DataFrame,
    scenario: str = "lead",
    start=None,
    end=None,
    regions: Iterable[str] | None = None,
    devices_per_region: int = 20,
    window_minutes: int = 60,
    lead_days: int = 14,
    seed: int = 0,
    settings: Settings | None = None,
    *,
    model_change=None,
    dp_epsilon: float | None = None,
    counties: Iterable[str] | None = None,
    h3_resolution: int | None = None,
    people_per_device: float = 300_000,
) -> pd.DataFrame:
    """The same SIMULATED windows as ``simulate_windows``, as one DataFrame with the warehouse column
    names (the contract columns of ``affect_windows`` plus ``simulated=True``)."""
    plan = _plan(series, scenario, start, end, regions, devices_per_region, window_minutes, lead_days, seed,
                 settings, model_change, dp_epsilon, counties, h3_resolution, people_per_device)
    frames = list(_simulate_frames(plan))
    columns = list(AFFECT_COLUMNS) + ["simulated"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]


# -- symptom reports -----------------------------------------------------------------------------
def simulate_symptom_reports(
    series: pd.DataFrame,
    regions: Iterable[str] | None = None,
    start=None,
    end=None,
    syndrome: str = "flu_admissions",
    source: str = "flusight-nhsn",
    *,
    revise_share: float = 0.0,
    seed: int = 0,
) -> Iterator[dict]:
    """Weekly SymptomReport v1 dicts with the REAL values of ``series`` (MMWR weeks ending Saturday).

    period_start = Saturday - 6 days, period_end = Saturday, reported_at = the following Wednesday
    16:00 UTC. With ``revise_share`` > 0, that share of weeks is first reported provisionally
    (a SIMULATED undercount of 75-95 %) and revised to the real value a week later.
    """
    series = _check_series(series)
    picked = _pick_regions(series, regions)
    d0, d1 = _date_range(series, start, end)
    if not 0 <= revise_share <= 1:
        raise ValueError(f"revise_share must be in [0, 1], got {revise_share}")
    rng = np.random.default_rng(_stable_seed(seed, "revisions"))
    rows = series[series["region_id"].isin(picked)].sort_values(["date", "region_id"])
    for region, day, value in zip(rows["region_id"], rows["date"], rows["value"]):
        period_end = day.date()
        if period_end.weekday() != 5:
            raise ValueError(f"series date {period_end} for region {region} is not a Saturday (MMWR week end)")
        if not d0 <= period_end <= d1:
            continue
        base = {"schema_version": 1, "region_id": region, "syndrome": syndrome,
                "period_start": period_end - timedelta(days=6), "period_end": period_end, "source": source}
        first = datetime.combine(period_end + timedelta(days=4), datetime.min.time(), timezone.utc) + timedelta(hours=16)
        count = int(round(value))
        if revise_share and rng.random() < revise_share:
            yield base | {"count": int(count * rng.uniform(0.75, 0.95)), "reported_at": first}
            yield base | {"count": count, "reported_at": first + timedelta(days=7)}
        else:
            yield base | {"count": count, "reported_at": first}


# -- Kafka ---------------------------------------------------------------------------------------
def make_producer(settings: Settings | None = None, **overrides):
    """A kafka-python producer tuned for throughput (lz4, linger, big batches)."""
    from kafka import KafkaProducer

    s = settings or get_settings()
    kw = s.kafka.client_kwargs() | {
        "compression_type": "lz4",
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "acks": "all",
        "retries": 5,
    }
    return KafkaProducer(**(kw | overrides))


def produce(
    records: Iterable[dict],
    topic: str,
    settings: Settings | None = None,
    rate: float | None = None,
    simulated: bool = True,
    key_field: str = "region_id",
    *,
    producer=None,
    on_sent=None,
) -> int:
    """Send each record as JSON (key = ``record[key_field]`` UTF-8) to ``topic``; returns the count.

    ``rate`` paces to that many messages per second; None sends as fast as possible (backfill).
    Records carry the header ``aw-simulated: 1`` when ``simulated``. Flushes before returning and
    raises if the broker rejected any message.
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be > 0 messages/s, got {rate}")
    own = producer is None
    producer = producer or make_producer(settings)
    headers = [SIMULATED_HEADER] if simulated else []
    encode = msgspec.json.Encoder().encode
    errors: list[BaseException] = []
    n = 0
    t0 = time.perf_counter()
    try:
        for rec in records:
            fut = producer.send(topic, key=str(rec[key_field]).encode(), value=encode(rec), headers=headers)
            fut.add_errback(errors.append)
            n += 1
            if on_sent is not None:
                on_sent(1)
            if rate is not None and n % 16 == 0:
                ahead = n / rate - (time.perf_counter() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        if own:
            producer.close()
    if errors:
        raise RuntimeError(f"{len(errors)} of {n} messages to {topic} failed; first error: {errors[0]!r}")
    log.info("produced", topic=topic, messages=n, seconds=round(time.perf_counter() - t0, 3), simulated=simulated)
    return n
