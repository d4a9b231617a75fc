"""Leave-one-season-out (LOSO) validation of the forecasting models and of the ensemble's choices.

Folds: the 13 ILINet seasons 2010-11 .. 2022-23 (state ILI visit counts, ILITOTAL, as extra
validation targets), the NHSN admissions season 2022-23 and the HHS influenza admissions season
2021-22 (``data/affect_real``, COVIDcast export with issue dates: each reference date sees only what
was issued by then; the season before NHSN reporting became mandatory, small and late). In a fold
every model forecasts the held-out season from the panel a forecaster would have had (data up to the
reference date, latency 1 week); the pooled models (``gbq``, ``qar``) train on that history plus
every OTHER season:

* ILINet fold S: extra series = ILINet seasons after S (the panel already holds the seasons before
  it) and the NHSN admissions outside season S; the target is ILI itself (``target_is_ili``);
* NHSN fold 2022-23, HHS fold 2021-22: the production path (ILINet published by the reference date;
  nothing later).

:func:`choose` then picks, using the folds only, the ensemble members and their combination
(mean or median of quantiles) by the mean over folds of relative WIS (WIS / baseline WIS on the
same forecasts), and for each horizon a calibration factor per central interval that makes the LOSO
coverage of that horizon match its nominal level. Each reported fold uses choices made on the OTHER folds (nested), so the table
is out of sample. Results are cached as parquet files (``cache_dir``).
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from analytics.backtest import build_panel, saturdays, vintage
from analytics.features import Series
from analytics.forecast import forecast_panel
from analytics.ilinet import DATA, ili_states, season_label, season_start_year
from analytics.nhsn import nhsn_admissions
from analytics.models.ensemble import calibrate_by_horizon, combine, weighted_combine
from affectwatch.progress import progress
from analytics.quantiles import LEVELS, MEDIAN_INDEX
from analytics.scoring import wis_components

log = get_logger(__name__)

ILI_SEASONS = tuple(range(2010, 2023))
NHSN_SEASON = 2022
HHS_SEASON = 2021
HHS_FLU_CSV = DATA / "affect_real" / "hhs_confirmed_admissions_influenza_1d_prop_7dav.csv.gz"
MEMBERS = ("glm", "qr", "ets", "gbq", "qar")
TODAY = ("glm", "qr", "ets")  # the ensemble before this validation (median, envelope tails)
LV = np.asarray(LEVELS)


def nhsn_target() -> pd.DataFrame:
    return nhsn_admissions()


def hhs_target() -> pd.DataFrame:
    """HHS confirmed influenza admissions per state and week (7 x the 7-day average per day, ending
    Saturdays), 2021-05 .. 2022-04, with ``as_of`` (issue) as :func:`analytics.lift_real.read_target` defines it.
    Two July 2021 weeks of Massachusetts are negative in the export (corrections netted out): counted as 0."""
    from analytics.lift_real import read_target, weekly

    t = weekly(read_target(HHS_FLU_CSV)[1])[["date", "location", "value", "as_of"]].reset_index(drop=True)
    return t.assign(value=t["value"].clip(lower=0.0))


def fold_target(source: str) -> pd.DataFrame:
    return {"nhsn": nhsn_target, "hhs": hhs_target, "ilinet": ili_states}[source]()


def fold_refs(source: str, season: int, target: pd.DataFrame, every: int) -> list[pd.Timestamp]:
    """Every ``every``-th Saturday from 15 October to 27 May that has data before it and whose
    horizon-3 target is in the file."""
    first = target["as_of"].min() if "as_of" in target.columns else target["date"].min()
    refs = [r for r in saturdays(f"{season}-10-15", f"{season + 1}-05-27")
            if r > first and r + pd.Timedelta(days=21) <= target["date"].max()]
    return refs[::every]


def _series(frame: pd.DataFrame, source: str) -> list[Series]:
    out = []
    for loc, g in frame.groupby("location", sort=True):
        g = g.sort_values("date")
        idx = pd.date_range(g["date"].iloc[0], g["date"].iloc[-1], freq="7D")
        out.append(Series(source, str(loc), idx, g.set_index("date")["value"].reindex(idx).to_numpy(dtype=float)))
    return out


def fold_extra(source: str, season: int) -> list[Series] | None:
    """Extra training series for the pooled models in a fold (None = production path)."""
    if source != "ilinet":
        return None
    ili = ili_states()
    later = ili[season_start_year(ili["date"]) > season]
    nhsn = nhsn_target()
    nhsn = nhsn[season_start_year(nhsn["date"]) != season]
    return _series(later, "ilinet") + _series(nhsn, "nhsn")


def _forecast_ref(target, ref, extra, source, models):
    panel = build_panel(target, ref, latency=1)
    # admissions: one per-capita scale; ILINet visit counts: the location's own (they depend on how many providers report)
    panel = dataclasses.replace(panel, extra=extra, per_capita=source != "ilinet", target_is_ili=source == "ilinet")
    return forecast_panel(panel, ref, models=["baseline", *models], components=models)


def models_tag(models) -> str:
    """Cache key of fold forecasts: the member names and the source of the forecasting code (a change
    to any model, feature or data rule makes the cached forecasts stale; the ensemble's choice does not)."""
    import hashlib

    root = Path(__file__).resolve().parent
    h = hashlib.sha1(",".join(models).encode())
    members = [f for f in root.glob("models/*.py") if f.name != "ensemble.py"]
    for f in sorted([*members, root / "features.py", root / "ilinet.py", root / "backtest.py",
                     root / "forecast.py", root / "quantiles.py", root / "revisions.py", root / "nhsn.py"]):
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def fold_forecasts(source: str, season: int, every: int = 4, n_jobs: int = 2, cache_dir: Path | None = None,
                   models=MEMBERS) -> pd.DataFrame:
    """Hubverse rows of every member (and the baseline) for the fold's reference dates."""
    path = Path(cache_dir) / f"loso_{source}_{season}_every{every}_{models_tag(models)}.parquet" if cache_dir else None
    if path is not None and path.exists():
        return pd.read_parquet(path)
    target = fold_target(source)
    refs = fold_refs(source, season, target, every)
    extra = fold_extra(source, season)
    if n_jobs > 1:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_forecast_ref)(target, r, extra, source, models) for r in refs)
    else:
        done = (_forecast_ref(target, r, extra, source, models) for r in refs)
    fc = pd.concat(list(progress(done, total=len(refs), desc=f"LOSO {source} {season_label(season)}", unit="ref date")),
                   ignore_index=True)
    fc["fold"] = f"{source} {season_label(season)}"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fc.to_parquet(path)
    return fc


def all_folds(every: int = 4, n_jobs: int = 2, cache_dir: Path | None = None) -> pd.DataFrame:
    folds = [("ilinet", s) for s in ILI_SEASONS] + [("nhsn", NHSN_SEASON), ("hhs", HHS_SEASON)]
    return pd.concat([fold_forecasts(src, s, every, n_jobs, cache_dir) for src, s in folds], ignore_index=True)


def arrays(fc: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """Align every model's quantiles with the truth: (keys frame, model -> (N, 23), observed (N,))."""
    hhs = hhs_target()
    final = vintage(hhs, hhs["as_of"].max())  # the latest issue of every week
    truth = pd.concat([ili_states().assign(src="ilinet"), nhsn_target().assign(src="nhsn"),
                       final[["date", "location", "value"]].assign(src="hhs")])
    fc = fc.assign(src=fc["fold"].str.split().str[0], target_end_date=pd.to_datetime(fc["target_end_date"]))
    keys = ["fold", "src", "location", "reference_date", "horizon", "target_end_date"]
    wide = fc.pivot_table(index=[*keys, "model"], columns="output_type_id", values="value", aggfunc="first")
    models = sorted(wide.index.get_level_values("model").unique())
    base = wide.xs("baseline", level="model").reset_index()
    base = base.merge(truth.rename(columns={"date": "target_end_date", "value": "observed"}),
                      on=["src", "location", "target_end_date"], how="inner")
    idx = pd.MultiIndex.from_frame(base[keys])
    q = {}
    for m in models:
        w = wide.xs(m, level="model").reindex(idx)
        q[m] = w.to_numpy(dtype=float)
    ok = np.all([np.isfinite(v).all(axis=1) for v in q.values()], axis=0)
    return base.loc[ok, keys].reset_index(drop=True), {m: v[ok] for m, v in q.items()}, base.loc[ok, "observed"].to_numpy()


def _fold_rel(keys, q, y, base_wis) -> pd.Series:
    w = wis_components(q, y, LEVELS)["wis"]
    g = pd.DataFrame({"fold": keys["fold"], "w": w, "b": base_wis}).groupby("fold")[["w", "b"]].mean()
    return g["w"] / g["b"]


def _coverage(q, y, lo_idx, hi_idx):
    return (q[:, lo_idx] <= y) & (y <= q[:, hi_idx])


PAIR_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # weight of the first of two members (quantile mean)


def candidates(members=MEMBERS):
    """(members, combination, weights): every subset; quantile mean of any, median of three or more;
    a pair's mean also with unequal weights (``PAIR_WEIGHTS``), larger sets with equal weights."""
    for r in range(1, len(members) + 1):
        for combo in itertools.combinations(members, r):
            if r == 2:
                for w in PAIR_WEIGHTS:
                    yield combo, "mean", (w, round(1 - w, 2))
            else:
                yield combo, "mean", None
            if r >= 3:
                yield combo, "median", None


def ensemble_q(q: dict[str, np.ndarray], combo, how, weights=None) -> np.ndarray:
    stack = np.stack([q[m] for m in combo])
    return weighted_combine(stack, weights) if how == "mean" else combine(stack, tail=None)


def fit_calibration(q: np.ndarray, y: np.ndarray, folds: pd.Series) -> np.ndarray:
    """Factor per lower level (11 central intervals): scales distances from the median so the mean
    over folds of the interval's coverage is closest to nominal (grid 0.5..3.0)."""
    grid = np.round(np.arange(0.5, 3.0001, 0.05), 2)
    med = q[:, [MEDIAN_INDEX]]
    out = np.ones(MEDIAN_INDEX)
    for i in range(MEDIAN_INDEX):
        j = len(LV) - 1 - i
        nominal = 1 - 2 * LV[i]
        best, err = 1.0, np.inf
        for c in grid:
            lo, hi = med[:, 0] + c * (q[:, i] - med[:, 0]), med[:, 0] + c * (q[:, j] - med[:, 0])
            cov = pd.Series((lo <= y) & (y <= hi)).groupby(folds.to_numpy()).mean().mean()
            if abs(cov - nominal) < err:
                best, err = c, abs(cov - nominal)
        out[i] = best
    return np.maximum.accumulate(out[::-1])[::-1]  # outer intervals widen at least as much as inner ones


def fit_calibration_by_horizon(q: np.ndarray, y: np.ndarray, keys: pd.DataFrame) -> list[list[float]]:
    """:func:`fit_calibration` for each horizon (0, 1, 2, ...) on its own: intervals four weeks out
    need more widening than this week's (one list of factors per horizon)."""
    h = keys["horizon"].to_numpy()
    out = []
    for horizon in range(int(h.max()) + 1):
        m = h == horizon
        f = fit_calibration(q[m], y[m], keys["fold"][m]) if m.any() else np.ones(MEDIAN_INDEX)
        out.append([round(float(c), 2) for c in f])
    return out


def choose(keys: pd.DataFrame, q: dict[str, np.ndarray], y: np.ndarray, holdout: str | None = None) -> dict:
    """Members, combination (with weights) and calibration chosen on every fold except ``holdout``."""
    use = (keys["fold"] != holdout).to_numpy() if holdout else np.ones(len(y), bool)
    kk, yy = keys[use], y[use]
    qq = {m: v[use] for m, v in q.items()}
    base_wis = wis_components(qq["baseline"], yy, LEVELS)["wis"]
    scored = []
    for combo, how, weights in candidates([m for m in MEMBERS if m in qq]):
        rel = _fold_rel(kk, ensemble_q(qq, combo, how, weights), yy, base_wis)
        scored.append((float(rel.mean()), combo, how, weights))
    scored.sort(key=lambda r: r[0])
    _, combo, how, weights = scored[0]
    factors = fit_calibration_by_horizon(ensemble_q(qq, combo, how, weights), yy, kk)
    w = [float(x) for x in (weights or (1.0 / len(combo),) * len(combo))]
    return {"members": list(combo), "how": how, "weights": [round(x / sum(w), 2) for x in w],
            "calibration": factors, "loso_rel_wis": round(scored[0][0], 4)}


def table(keys: pd.DataFrame, q: dict[str, np.ndarray], y: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Per fold: relative WIS of each member, of today's ensemble and of the new ensemble (members,
    combination and calibration chosen on the other folds), with the new ensemble's coverage."""
    base_wis = wis_components(q["baseline"], y, LEVELS)["wis"]
    rows = {m: _fold_rel(keys, q[m], y, base_wis) for m in MEMBERS if m in q}
    rows["ensemble (before)"] = _fold_rel(keys, combine(np.stack([q[m] for m in TODAY])), y, base_wis)
    new = np.empty_like(q["baseline"])
    for fold in keys["fold"].unique():
        c = choose(keys, q, y, holdout=fold)
        m = (keys["fold"] == fold).to_numpy()
        new[m] = calibrate_by_horizon(ensemble_q({k: v[m] for k, v in q.items()}, c["members"], c["how"], c["weights"]),
                                      keys["horizon"].to_numpy()[m], c)
    rows["ensemble (LOSO)"] = _fold_rel(keys, new, y, base_wis)
    out = pd.DataFrame(rows)
    for nominal, (lo, hi) in {50: (0.25, 0.75), 80: (0.1, 0.9), 95: (0.025, 0.975)}.items():
        cov = _coverage(new, y, int(np.argmin(abs(LV - lo))), int(np.argmin(abs(LV - hi))))
        out[f"cover_{nominal}"] = pd.Series(cov).groupby(keys["fold"].to_numpy()).mean()
    out.loc["mean"] = out.mean()
    return out, choose(keys, q, y)
