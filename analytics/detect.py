"""Outbreak detection on any count series: one entry point over all detectors.

``detect(df, method, period=None, **params)`` takes a long frame with columns ``series, t,
observed`` (optional ``date``; other columns are ignored) and returns one row per series and t:
``series, t, [date], observed, expected, threshold, statistic, p_value, alarm, level, reason``.

* ``t`` is an integer time index, consecutive within each series (fill missing periods with
  explicit zeros first). ``observed`` is a non-negative number.
* ``threshold`` is on the scale of ``observed``: the smallest observed value that would have
  raised an alarm at that time (for Farrington: the upper bound U).
* ``p_value`` is NaN where the method defines none (EARS, CUSUM).
* ``level`` is 'red', 'yellow' or None: ESSENCE methods red p < 0.01 / yellow p < 0.05;
  Farrington/Noufaily alarm red when p < 0.01, else yellow; EARS and CUSUM alarms are 'yellow'.
* ``reason`` says why a row has no verdict: 'insufficient_baseline' (then expected is NaN and
  alarm False) or, for Farrington, 'too_few_recent_cases' (fewer than 5 cases in 4 periods).

The seasonal ``period`` matters for Farrington/Noufaily (52 for weekly, 365 for daily data) and
for the ESSENCE regression (day-of-week terms for daily data, i.e. period 7 or daily dates). It
is inferred from ``date`` when present (step of 1 day -> daily, 7 days -> weekly); without dates
Farrington assumes weekly data (52). Detector definitions and references are in the docstrings
of ``analytics/detectors/*.py``.
"""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import pandas as pd

from analytics.detectors.base import LEVELS, REASONS, Result
from analytics.detectors.registry import METHODS, REGISTRY
from affectwatch.logs import get_logger

log = get_logger(__name__)

REQUIRED_COLUMNS = ("series", "t", "observed")
OUTPUT_COLUMNS = (
    "series", "t", "date", "observed", "expected", "threshold", "statistic", "p_value", "alarm", "level", "reason",
)

_FUNCS: dict[str, Callable[..., Result]] = {m: REGISTRY[m].func for m in METHODS}
_USES_DOW = {m for m in METHODS if REGISTRY[m].uses_dow}
_SEASONAL = {m for m in METHODS if REGISTRY[m].seasonal}
_INTERNAL_PARAMS = {"Y", "dow", "period", "_return_r2"}
_NOUFAILY_PARAMS = {"no_periods", "past_weeks_not_included", "threshold_method"}


class DetectInputError(ValueError):
    """Bad input to a detector: the message names the bad columns, rows and values."""


def _rows(mask: np.ndarray, values: pd.Series | None = None, limit: int = 5) -> str:
    pos = np.flatnonzero(mask)
    shown = ", ".join(
        f"row {p}" + (f" ({values.iloc[p]!r})" if values is not None else "") for p in pos[:limit]
    )
    more = f" and {pos.size - limit} more" if pos.size > limit else ""
    return shown + more


def allowed_params(method: str) -> list[str]:
    """Keyword parameters a method accepts (besides period)."""
    names = [
        n for n, p in inspect.signature(_FUNCS[method]).parameters.items()
        if n not in _INTERNAL_PARAMS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if method == "noufaily":
        names += [n for n in allowed_params("farrington") if n not in names]
    return names


def validate_input(df: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise the input frame; raise DetectInputError naming every problem found."""
    if not isinstance(df, pd.DataFrame):
        raise DetectInputError(f"input must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DetectInputError(
            f"missing required column(s): {', '.join(missing)}; columns available: {', '.join(map(str, df.columns)) or '(none)'}"
        )
    if len(df) == 0:
        raise DetectInputError("input has no rows")
    df = df.reset_index(drop=True)
    problems: list[str] = []
    if df["series"].isna().any():
        problems.append(f"column 'series' is empty at {_rows(df['series'].isna().to_numpy())}")
    t = pd.to_numeric(df["t"], errors="coerce")
    bad_t = t.isna().to_numpy() | ~np.isfinite(t.to_numpy(dtype=float, na_value=np.nan))
    bad_t |= ~bad_t & (np.mod(np.nan_to_num(t.to_numpy(dtype=float, na_value=0.0)), 1) != 0)
    if bad_t.any():
        problems.append(f"column 't' must hold integers; bad values at {_rows(bad_t, df['t'])}")
    obs = pd.to_numeric(df["observed"], errors="coerce")
    bad_obs = obs.isna().to_numpy() | ~np.isfinite(obs.to_numpy(dtype=float, na_value=np.nan))
    if bad_obs.any():
        problems.append(f"column 'observed' has non-numeric or missing values at {_rows(bad_obs, df['observed'])}")
    neg = ~bad_obs & (obs.to_numpy(dtype=float, na_value=0.0) < 0)
    if neg.any():
        problems.append(f"column 'observed' has negative values at {_rows(neg, df['observed'])}")
    out = pd.DataFrame({"series": df["series"].astype(str), "t": t, "observed": obs})
    if "date" in df.columns:
        date = pd.to_datetime(df["date"], errors="coerce")
        bad_date = date.isna().to_numpy()
        if bad_date.any():
            problems.append(f"column 'date' has unparseable or missing dates at {_rows(bad_date, df['date'])}")
        out["date"] = date
    if problems:
        raise DetectInputError("; ".join(problems))
    out["t"] = out["t"].astype(np.int64)
    out["observed"] = out["observed"].astype(float)
    dup = out.duplicated(["series", "t"], keep=False).to_numpy()
    if dup.any():
        raise DetectInputError(f"duplicate (series, t) pairs at {_rows(dup)}; one row per series and t is required")
    out = out.sort_values(["series", "t"], kind="stable").reset_index(drop=True)
    step = out.groupby("series", sort=False)["t"].diff()
    gaps = out.loc[step.notna() & (step != 1), ["series", "t"]]
    if len(gaps):
        detail = ", ".join(f"series {s!r} before t={v}" for s, v in gaps.head(5).itertuples(index=False))
        raise DetectInputError(
            f"t must be consecutive within each series (fill missing periods explicitly); gaps in {detail}"
            + (f" and {len(gaps) - 5} more" if len(gaps) > 5 else "")
        )
    if "date" in out.columns:
        dstep = out.groupby("series", sort=False)["date"].diff().dropna().dt.days.unique()
        if len(dstep) > 1 or (len(dstep) == 1 and dstep[0] not in (1, 7)):
            raise DetectInputError(
                f"column 'date' must advance by one day or one week per t; found steps of {sorted(dstep.tolist())} days"
            )
    return out


def _step_days(data: pd.DataFrame) -> int | None:
    if "date" not in data.columns:
        return None
    d = data.groupby("series", sort=False)["date"].diff().dropna().dt.days
    return int(d.iloc[0]) if len(d) else None


def _resolve_period(method: str, period: int | None, step: int | None) -> int | None:
    if period is not None:
        if int(period) != period or period < 2:
            raise DetectInputError(f"period must be an integer >= 2; got {period!r}")
        return int(period)
    if method in _SEASONAL:
        if step == 1:
            return 365
        if step is None:
            log.info("period not given and no dates: assuming weekly data", method=method, period=52)
        return 52
    return None


def _check_params(method: str, params: dict) -> None:
    allowed = set(allowed_params(method))
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise DetectInputError(
            f"unknown parameter(s) for {method}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed)) or '(none)'}"
        )


def detect(df: pd.DataFrame, method: str, period: int | None = None, **params) -> pd.DataFrame:
    """Run one detector over every series of ``df``; see the module docstring for the contract."""
    if method not in METHODS:
        raise DetectInputError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    _check_params(method, params)
    data = validate_input(df)
    step = _step_days(data)
    period = _resolve_period(method, period, step)
    has_date = "date" in data.columns
    daily = step == 1 or (step is None and period == 7)

    codes, uniques = pd.factorize(data["series"], sort=False)
    lengths = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    if method in _USES_DOW and daily:
        first = data.iloc[starts]
        dow0 = (first["date"].dt.dayofweek.to_numpy() if has_date else np.mod(first["t"].to_numpy(), 7))
    else:
        dow0 = np.full(len(uniques), -1)

    n = len(data)
    cols = {k: np.full(n, np.nan) for k in ("expected", "threshold", "statistic", "p_value")}
    alarm = np.zeros(n, dtype=bool)
    level = np.zeros(n, dtype=np.int8)
    reason = np.zeros(n, dtype=np.int8)
    obs = data["observed"].to_numpy()
    func = _FUNCS[method]
    keys = pd.DataFrame({"L": lengths, "d": dow0})
    for (L, d0), grp in keys.groupby(["L", "d"], sort=False):
        sids = grp.index.to_numpy()
        rows = starts[sids][:, None] + np.arange(L)[None, :]
        Y = obs[rows]
        kwargs = dict(params)
        if method in _SEASONAL:
            kwargs["period"] = period
        if method in _USES_DOW:
            kwargs["dow"] = np.mod(d0 + np.arange(L), 7) if d0 >= 0 else None
        res = func(Y, **kwargs)
        flat = rows.reshape(-1)
        for k in cols:
            cols[k][flat] = getattr(res, k).reshape(-1)
        alarm[flat] = res.alarm.reshape(-1)
        level[flat] = res.level.reshape(-1)
        reason[flat] = res.reason.reshape(-1)

    out = pd.DataFrame({"series": data["series"].to_numpy(), "t": data["t"].to_numpy()})
    if has_date:
        out["date"] = data["date"].dt.date.to_numpy()
    out["observed"] = obs
    for k, v in cols.items():
        out[k] = v
    out["alarm"] = alarm
    out["level"] = pd.Series(level).map(LEVELS).astype(object).where(level > 0, None).to_numpy()
    out["reason"] = pd.Series(reason).map(REASONS).astype(object).where(reason > 0, None).to_numpy()
    log.info("detection finished", method=method, series=len(uniques), rows=n, alarms=int(alarm.sum()))
    return out
