"""Fit/predict orchestration: run every model on a panel for one reference date and return
hubverse quantile rows. A series a model cannot handle falls back to the baseline, with the
reason logged and kept in ``frame.attrs['fallbacks']``; the run itself never fails for one series.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.syndromes import is_flu_admissions, is_ili
from analytics.models import COMPONENTS, FUSABLE, Panel, SeriesFailure, components_for, make_model
from analytics.models.ensemble import CHOSEN, chosen_ensemble, ensemble_members, median_ensemble
from analytics.quantiles import LEVELS, repair, validate_levels

log = get_logger(__name__)

HUB_COLUMNS = ["reference_date", "horizon", "target", "target_end_date", "location", "output_type",
               "output_type_id", "value", "model"]
DEFAULT_MODELS = ("baseline", "glm", "qr", "ensemble")
WEEKLY_HORIZONS = (0, 1, 2, 3)
DAILY_HORIZONS = tuple(range(1, 15))


def period_days(freq: str) -> int:
    if freq not in ("W", "D"):
        raise ValueError(f"freq {freq!r} is not supported; use 'W' (MMWR weeks) or 'D' (days)")
    return 7 if freq == "W" else 1


def target_name(syndrome: str, freq: str = "W") -> str:
    return f"{'wk' if freq == 'W' else 'day'} inc {syndrome}"


def syndrome_of(target: str) -> str:
    """The syndrome a target name (:func:`target_name`) forecasts."""
    return target.split(" inc ", 1)[-1]


def _run_model(name: str, panel: Panel, steps: list[int], levels: np.ndarray, affect_features, seed: int):
    model = make_model(name, affect_features=affect_features, seed=seed)
    try:
        preds = model.fit(panel).predict(steps, levels)
    except SeriesFailure as exc:
        return name, steps, {}, {loc: str(exc) for loc in panel.locations}
    except (np.linalg.LinAlgError, FloatingPointError) as exc:  # a numerical failure stops one model, never the run
        log.warning("model failed numerically; its series fall back to the baseline", model=name, error=str(exc))
        return name, steps, {}, {loc: f"{name}: numerical failure ({exc})" for loc in panel.locations}
    return name, steps, preds, dict(model.failures)


def _chunks(panel: Panel, n: int) -> list[Panel]:
    cols = np.array_split(np.asarray(panel.y.columns), n)
    out = []
    for c in cols:
        if len(c):
            aff = {k: v[c] for k, v in panel.affect.items()} if panel.affect else None
            out.append(dataclasses.replace(panel, y=panel.y[c], affect=aff))
    return out


def predict_all(panel: Panel, steps: list[int], models: Sequence[str], levels: np.ndarray,
                affect_features=None, seed: int = 0, n_jobs: int = 1) -> tuple[dict, dict]:
    """Run every base model (not ensembles). With ``n_jobs`` > 1, per-series models are split by
    location over the worker processes; a pooled model (one fit on every series: the longest tasks,
    so they are dispatched first) runs as one task when there are at least ``n_jobs`` of them, and
    otherwise split by step (each part repeats the fit). Results do not depend on the split."""
    names = [m for m in dict.fromkeys(["baseline", *models]) if not m.startswith("ensemble")]
    pooled = [n for n in names if getattr(type(make_model(n)), "pooled", False)]
    tasks = []
    for name in pooled + [n for n in names if n not in pooled]:
        if n_jobs <= 1 or (name in pooled and len(pooled) >= n_jobs):
            tasks.append((name, panel, steps))
        elif name in pooled:
            tasks += [(name, panel, [int(k) for k in part]) for part in np.array_split(steps, n_jobs) if len(part)]
        else:
            tasks += [(name, p, steps) for p in _chunks(panel, n_jobs)]
    if n_jobs > 1 and len(tasks) > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(delayed(_run_model)(n, p, st, levels, affect_features, seed) for n, p, st in tasks)
    else:
        results = [_run_model(n, p, st, levels, affect_features, seed) for n, p, st in tasks]
    preds: dict[str, dict] = {n: {} for n in names}
    failures: dict[str, dict] = {n: {} for n in names}
    parts: dict[tuple[str, str], dict[int, np.ndarray]] = {}
    for name, st, p, f in results:
        failures[name].update(f)
        for loc, arr in p.items():
            parts.setdefault((name, loc), {}).update({k: arr[i] for i, k in enumerate(st)})
    for (name, loc), by_step in parts.items():
        if loc in failures[name] or len(by_step) < len(steps):
            failures[name].setdefault(loc, f"{name}: no forecast for some steps")
            continue
        preds[name][loc] = np.vstack([by_step[k] for k in steps])
    return preds, failures


def forecast_panel(
    panel: Panel,
    reference_date: date | str,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    horizons: Sequence[int] | None = None,
    target: str = "wk inc flu_admissions",
    levels: Sequence[float] = LEVELS,
    affect_features: Sequence[str] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    components: Sequence[str] = COMPONENTS,
) -> pd.DataFrame:
    """Forecast every location of ``panel`` for ``reference_date``; horizons count periods after the
    reference date (target_end_date = reference_date + 7*horizon for weeks) whatever the last
    observed date, so reporting latency just means more steps ahead."""
    lv = validate_levels(levels)
    step_days = period_days(panel.freq)
    horizons = list(horizons if horizons is not None else (WEEKLY_HORIZONS if panel.freq == "W" else DAILY_HORIZONS))
    ref = pd.Timestamp(reference_date).normalize()
    if panel.y.empty:
        raise ValueError("empty panel: no observations on or before the reference date")
    last = pd.Timestamp(panel.y.index[-1])
    gap_days = (ref - last).days
    if gap_days < 0 or gap_days % step_days:
        raise ValueError(f"reference date {ref.date()} is not a whole number of periods after the last observed date {last.date()}")
    gap = gap_days // step_days
    kept = [h for h in horizons if gap + h >= 1]
    if len(kept) < len(horizons):
        log.info("horizons already observed are skipped", skipped=[h for h in horizons if gap + h < 1], reference_date=str(ref.date()))
    steps = [gap + h for h in kept]
    syndrome = syndrome_of(target)
    panel = dataclasses.replace(panel, reference_date=ref, target_is_ili=panel.target_is_ili or is_ili(syndrome),
                                target_is_admissions=panel.target_is_admissions or is_flu_admissions(syndrome))
    fused_requested = any(m.endswith("_affect") for m in models)
    if fused_requested and not panel.affect:
        raise ValueError(f"models {[m for m in models if m.endswith('_affect')]} need affect features, but none were given")
    run = list(models)
    components = components_for(panel.freq, components)
    if "ensemble" in models:
        run += list(components)
    if "ensemble_affect" in models:
        run += [f"{c}_affect" if c in FUSABLE else c for c in components]
    preds, failures = predict_all(panel, steps, list(dict.fromkeys(run)), lv, affect_features, seed, n_jobs)
    fallbacks = []
    for name in preds:
        if name == "baseline":
            continue
        for loc in panel.locations:
            if loc not in preds[name] and loc in preds["baseline"]:
                reason = failures[name].get(loc, f"{name}: no forecast")
                log.warning("series falls back to baseline", model=name, location=loc, reason=reason)
                fallbacks.append({"model": name, "location": loc, "reason": reason})
                preds[name][loc] = preds["baseline"][loc]
    for loc, reason in failures["baseline"].items():
        log.warning("series not forecast", location=loc, reason=reason)
        fallbacks.append({"model": "baseline", "location": loc, "reason": reason})
    for ens, fused in (("ensemble", False), ("ensemble_affect", True)):
        if ens in models:
            members = [m for m in ensemble_members(list(preds), fused) if m.removesuffix("_affect") in components]
            if not members:
                raise ValueError(f"{ens} needs at least one {'fused' if fused else 'symptom-only'} component model in --models")
            bases = {m.removesuffix("_affect") for m in members}
            if CHOSEN and bases == set(CHOSEN["members"]) and len(lv) == len(LEVELS):
                preds[ens] = chosen_ensemble(preds, members, CHOSEN, kept, lv)
            else:
                preds[ens] = median_ensemble(preds, members, lv)
    frames = []
    ends = [(ref + pd.Timedelta(days=step_days * h)).date() for h in kept]
    for name in models:
        for loc, q in preds[name].items():
            q = repair(q)
            n_h, n_q = q.shape
            frames.append(pd.DataFrame({
                "reference_date": ref.date(),
                "horizon": np.repeat(kept, n_q),
                "target": target,
                "target_end_date": np.repeat(ends, n_q),
                "location": loc,
                "output_type": "quantile",
                "output_type_id": np.tile(lv, n_h),
                "value": q.ravel(),
                "model": name,
            }))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HUB_COLUMNS)
    out.attrs["fallbacks"] = fallbacks
    return out[HUB_COLUMNS]

