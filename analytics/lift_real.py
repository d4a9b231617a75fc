"""Does real survey affect improve admission forecasts? The honest test, with controls.

Rolling-origin backtests of state hospital admissions (HHS, Delphi COVIDcast format) with and without
survey-affect covariates (CTIS ``wdepressed_7d``, ``wworried_finances``), run through the product's
forecasters (:func:`analytics.backtest.backtest`), scorers and :func:`analytics.lift.lift_table`.

What each reference date D may use (nothing issued after D):

* target: a day is known from ``min(issue, day + 5 days)`` on, never before the series' first issue
  (see :func:`read_target`: the exports keep only the latest revision of each day; both arms of
  every comparison see exactly the same target data);
* affect: :func:`analytics.survey_affect.as_of` (latest issue <= D), suppressed cells (sample size
  below ``min_survey_sample_size``) left out, the last known value carried forward to D.

Variants, each compared with the same symptom-only ensemble on the same forecasts:

* ``affect`` — own state's wdepressed_7d + wworried_finances (the claim under test);
* ``wdepressed_7d``, ``wworried_finances`` — each indicator alone;
* ``permuted_state`` — negative control: the affect of a different, randomly assigned state
  (a derangement fixed by the seed);
* ``shifted`` — negative control: the own state's affect delayed by ``shift_days`` (default 56),
  which removes any lead shorter than that;
* ``wili`` — positive control: the survey's self-reported influenza-like illness, a symptom signal.

Targets: ``covid`` (confirmed COVID-19 admissions, 7-day average count per day) and ``flu``
(confirmed influenza admissions per 100k, 7-day average, turned into counts with the state
population of data/flusight/locations.csv). Weekly: the 7-day sum ending each Saturday (7 x the
7-day average), horizons 0-3 weeks. Daily: the 7-day average count, horizons 1-14 days, reference
dates every ``daily_every`` days.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from analytics import survey_affect
from analytics.backtest import backtest, saturdays
from analytics.lift import lift_table
from analytics.scoring import score

log = get_logger(__name__)

AFFECT = ("wdepressed_7d", "wworried_finances")
POSITIVE = ("wili",)
VARIANTS = ("affect", "wdepressed_7d", "wworried_finances", "permuted_state", "shifted", "wili")
NOMINAL_LAG_DAYS = 5  # typical HHS reporting lag (median issue - day in the exports: 3-5 days)
CONTROLS = {"permuted_state": "negative control", "shifted": "negative control", "wili": "positive control"}


@dataclass(frozen=True)
class LiftRealConfig:
    targets: tuple[str, ...] = ("covid", "flu")
    freqs: tuple[str, ...] = ("W", "D")
    variants: tuple[str, ...] = VARIANTS
    states: tuple[str, ...] | None = None  # 2-digit FIPS; None = every state with data
    start: str | None = None  # first reference date (default: first date the target is known + 10 weeks)
    end: str | None = None
    daily_every: int = 14  # days between daily reference dates
    shift_days: int = 56
    components: tuple[str, ...] = ("glm", "qr")
    seed: int = 0
    n_boot: int = 2000
    n_jobs: int = 2
    min_sample_size: int | None = None  # default settings.privacy.min_survey_sample_size
    reuse: bool = False  # reuse scores_<target>_<freq>.csv.gz already in the output directory


# -- inputs ------------------------------------------------------------------------------------
def read_target(path: str | Path, nominal_lag_days: int = NOMINAL_LAG_DAYS) -> tuple[str, pd.DataFrame]:
    """An HHS COVIDcast export -> (signal, daily frame location, date, value (count/day), as_of).

    The exports keep one (the latest) issue per day, not the first: a day revised months later would
    look unknown until then although a first report existed. ``as_of`` is therefore the earlier of the
    stored issue and ``date + nominal_lag_days`` (the typical HHS reporting lag), but never before the
    first issue of the whole series (the initial backfill really was published only then)."""
    from ingest.load_affect import state_abbreviations
    from ingest.load_symptoms import LOCATIONS_CSV

    df = pd.read_csv(path, dtype={"geo_value": str})
    need = {"geo_value", "signal", "time_value", "issue", "value"} - set(df.columns)
    if need:
        raise ValueError(f"{Path(path).name}: COVIDcast columns missing {sorted(need)}")
    abbr = state_abbreviations()
    df["location"] = df["geo_value"].str.lower().map(abbr)
    df = df.dropna(subset=["location", "value"])
    signal = str(df["signal"].iloc[0])
    if "prop" in signal:  # per 100,000 people -> count
        pop = pd.read_csv(LOCATIONS_CSV, dtype={"location": str}).set_index("location")["population"]
        df = df[df["location"].isin(pop.index)]
        df["value"] = df["value"] * df["location"].map(pop) / 1e5
    day, issue = pd.to_datetime(df["time_value"]), pd.to_datetime(df["issue"])
    as_of = np.minimum(issue, day + pd.Timedelta(days=nominal_lag_days)).clip(lower=issue.min())
    out = pd.DataFrame({"location": df["location"], "date": day, "value": df["value"].astype(float), "as_of": as_of})
    return signal, out.sort_values(["location", "date", "as_of"]).reset_index(drop=True)


def weekly(daily: pd.DataFrame) -> pd.DataFrame:
    """7-day sums ending on Saturdays (7 x the 7-day average), with that day's issue as ``as_of``."""
    w = daily[daily["date"].dt.dayofweek == 5].copy()
    w["value"] = w["value"] * 7
    return w


def derangement(locations: Sequence[str], seed: int) -> dict[str, str]:
    """Each location -> a different, randomly assigned location (fixed by the seed)."""
    locs = sorted(locations)
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(len(locs))
        if len(locs) < 2 or not np.any(perm == np.arange(len(locs))):
            return {locs[i]: locs[j] for i, j in enumerate(perm)}


def variant_rows(survey: pd.DataFrame, variant: str, *, mapping: dict[str, str], shift_days: int) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Survey rows of one variant (before as-of), and the indicators used as covariates."""
    if variant == "wili":
        return survey[survey["indicator"].isin(POSITIVE)], POSITIVE
    inds = AFFECT if variant in ("affect", "permuted_state", "shifted") else (variant,)
    rows = survey[survey["indicator"].isin(inds)].copy()
    if variant == "permuted_state":
        donor_of = {v: k for k, v in mapping.items()}  # rows of donor d become rows of the state that receives d
        rows["region_id"] = rows["region_id"].map(donor_of)
        rows = rows.dropna(subset=["region_id"])
    elif variant == "shifted":
        rows["date"] = rows["date"] + pd.Timedelta(days=shift_days)  # value of t - shift used at t; issue unchanged
    return rows, inds


# -- backtests ---------------------------------------------------------------------------------
def _one_ref(target, variant_data, ref, freq, target_name, components, seed, min_n):
    horizons = (0, 1, 2, 3) if freq == "W" else tuple(range(1, 15))
    kw = dict(horizons=horizons, freq=freq, n_jobs=1, seed=seed, components=components, target_name=target_name)
    frames = []
    base = backtest(target, [ref], models=("ensemble",), **kw)
    if len(base):
        frames.append(base.assign(variant="none"))
    for name, (rows, inds) in variant_data.items():
        known = survey_affect.suppress(survey_affect.as_of(rows, ref), min_n)
        known = known[known["suppression"] == 0]
        aff = survey_affect.features(known, inds, ref, freq=freq)
        if aff.empty:
            continue
        fc = backtest(target, [ref], models=("ensemble_affect",), affect=aff, affect_features=list(inds), **kw)
        if len(fc):
            frames.append(fc.assign(variant=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def reference_dates(target: pd.DataFrame, freq: str, cfg: LiftRealConfig) -> list[pd.Timestamp]:
    """Origins from 10 weeks after the first issue of the target (enough history) to 3 weeks before its end."""
    first_known = target["as_of"].min() + pd.Timedelta(weeks=10)
    start = max(first_known, pd.Timestamp(cfg.start)) if cfg.start else first_known
    stop = target["date"].max() - pd.Timedelta(weeks=3 if freq == "W" else 2)
    stop = min(stop, pd.Timestamp(cfg.end)) if cfg.end else stop
    refs = saturdays(start, stop)
    return refs if freq == "W" else refs[:: max(1, cfg.daily_every // 7)]


def run(target_paths: dict[str, Path], affect_paths: Sequence[Path], cfg: LiftRealConfig, out: Path | None = None) -> pd.DataFrame:
    """Every (target, frequency, variant) lift row; writes forecasts/scores/lift CSVs to ``out``."""
    from joblib import Parallel, delayed

    from affectwatch.settings import get_settings

    min_n = cfg.min_sample_size if cfg.min_sample_size is not None else get_settings().privacy.min_survey_sample_size
    survey = survey_affect.read_files(affect_paths)
    if cfg.states:
        survey = survey[survey["region_id"].isin(cfg.states)]
    tables = []
    for tkey in cfg.targets:
        signal, daily = read_target(target_paths[tkey])
        if cfg.states:
            daily = daily[daily["location"].isin(cfg.states)]
        mapping = derangement(sorted(set(daily["location"]) & set(survey["region_id"])), cfg.seed)
        variant_data = {v: variant_rows(survey, v, mapping=mapping, shift_days=cfg.shift_days) for v in cfg.variants}
        for freq in cfg.freqs:
            target = weekly(daily) if freq == "W" else daily
            tname = f"{'wk' if freq == 'W' else 'day'} inc {tkey} hosp"
            truth = target  # scored against the latest issue of each day (latest_truth)
            saved = out / f"scores_{tkey}_{freq}.csv.gz" if out is not None else None
            if cfg.reuse and saved is not None and saved.exists():  # resume: same options, scores already written
                sc = pd.read_csv(saved, dtype={"location": str}, parse_dates=["reference_date", "target_end_date"])
                log.info("lift-real reuses scores", file=str(saved), rows=len(sc))
            else:
                refs = reference_dates(target, freq, cfg)
                log.info("lift-real backtest", target=tkey, freq=freq, reference_dates=len(refs), variants=len(variant_data))
                parts = Parallel(n_jobs=cfg.n_jobs)(
                    delayed(_one_ref)(target, variant_data, r, freq, tname, cfg.components, cfg.seed, min_n) for r in refs)
                fc = pd.concat([p for p in parts if len(p)], ignore_index=True)
                sc = score(fc.drop(columns=["variant"]).assign(model=fc["model"] + "|" + fc["variant"]), truth)
                if out is not None:
                    fc.to_csv(out / f"forecasts_{tkey}_{freq}.csv.gz", index=False)
                    sc.to_csv(saved, index=False)
            for v, (rows, inds) in variant_data.items():
                fused = f"ensemble_affect|{v}"
                if fused not in set(sc["model"]):
                    continue
                lead_rows = survey_affect.suppress(rows.sort_values("issue").drop_duplicates(survey_affect.KEY, keep="last"), min_n)
                feat = survey_affect.features(lead_rows[lead_rows["suppression"] == 0], inds, target["date"].max(), freq=freq)
                tab = lift_table(sc, truth, feat, symptom_model="ensemble|none", fused_model=fused, target_name=tname,
                                 feature=inds[0], freq=freq, n_boot=cfg.n_boot, seed=cfg.seed, simulated=False)
                tab.insert(0, "variant", v)
                tab.insert(1, "role", CONTROLS.get(v, "claim"))
                tab.insert(2, "covariates", "+".join(inds))
                tab["freq"] = freq
                tables.append(tab)
            if out is not None:  # written as it grows: a long run keeps what it finished
                pd.concat(tables, ignore_index=True).to_csv(out / "lift_real.csv", index=False)
    table = pd.concat(tables, ignore_index=True)
    return table


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """The 'overall' rows plus the count of states whose Bonferroni interval is above 1."""
    states = table[table["location"] != "overall"]
    n_inf = states.groupby(["target", "freq", "variant"])["informative"].sum().rename("states_informative")
    n_st = states.groupby(["target", "freq", "variant"])["location"].nunique().rename("states")
    ov = table[table["location"] == "overall"].set_index(["target", "freq", "variant"])
    ov = ov.join(n_inf).join(n_st).reset_index()
    cols = ["target", "freq", "variant", "role", "wis_ratio", "ratio_lo", "ratio_hi", "lead", "lead_lo", "lead_hi",
            "lead_unit", "n_dates", "n_forecasts", "states_informative", "states", "verdict"]
    return ov[cols]


def summary_json(table: pd.DataFrame) -> str:
    s = summary(table)
    rows = {f"{r.target}_{r.freq}_{r.variant}": {"wis_ratio": round(float(r.wis_ratio), 4),
                                                 "ratio_lo": round(float(r.ratio_lo), 4),
                                                 "ratio_hi": round(float(r.ratio_hi), 4),
                                                 "states_informative": int(r.states_informative),
                                                 "verdict": r.verdict} for r in s.itertuples()}
    return json.dumps({"lift_real": rows, "simulated": False})
