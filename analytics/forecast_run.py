"""Refresh forecasts for the latest reference date from the warehouse panels (called by the
scheduler, the demo and ``affectwatch forecast run``).

The reference date defaults to the Saturday after the last observed week of each syndrome (as in
FluSight, the week ending on the reference date is not yet reported), so horizons 0..3 are the
current week and the three after it. Affect-fused models run when affect features exist for the
forecast regions; the ``affect_lift`` table (from ``affectwatch forecast lift``) tells readers
where the fused forecast is worth using.
"""
from __future__ import annotations

import uuid

import duckdb
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings
from analytics.backtest import affect_wide, wide
from analytics.forecast import forecast_panel, period_days, target_name
from analytics.models import Panel
from affectwatch.progress import progress
from analytics.panels import affect_features, symptom_series
from analytics.store import write_forecasts

log = get_logger(__name__)

SYMPTOM_MODELS = ("baseline", "glm", "qr", "ets", "ensemble")
FUSED_MODELS = ("glm_affect", "qr_affect", "ensemble_affect")
# stored as forecasts of their own only with settings.forecast.pooled_models (they always run as the
# weekly ensemble's members)
POOLED_MODELS = ("gbq", "qar")
POOLED_FUSED_MODELS = ("gbq_affect", "qar_affect")
MIN_AFFECT_PERIODS = 8  # unsuppressed affect periods a region needs for the fused models


def _syndromes(con: duckdb.DuckDBPyConnection, syndrome: str | None) -> list[str]:
    if syndrome:
        return [syndrome]
    return [r[0] for r in con.execute("select distinct syndrome from symptom_reports order by 1").fetchall()]


def forecast_syndrome(con: duckdb.DuckDBPyConnection, syndrome: str, *, settings: Settings, freq: str = "W",
                      reference_date=None, as_of=None, run_id: str | None = None, n_jobs: int = 2) -> dict:
    series = symptom_series(con, syndrome, freq=freq, as_of=as_of)
    if series.empty:
        log.warning("no symptom data; nothing to forecast", syndrome=syndrome)
        return {"syndrome": syndrome, "rows": 0, "reason": "no data"}
    last = pd.Timestamp(series["date"].max())
    ref = pd.Timestamp(reference_date) if reference_date is not None else last + pd.Timedelta(days=period_days(freq))
    y = wide(series[series["date"] <= ref], freq=freq, end=min(last, ref))
    aff = affect_features(con, freq=freq, start=y.index.min(), end=ref + pd.Timedelta(days=1), settings=settings)
    affect = affect_wide(aff, y.index, y.columns, None) if not aff.empty else None
    pooled = settings.forecast.pooled_models
    models = list(SYMPTOM_MODELS) + (list(POOLED_MODELS) if pooled else [])
    if affect:
        ok = affect["distress_share"].notna().sum()
        if (ok >= MIN_AFFECT_PERIODS).any():
            models += list(FUSED_MODELS) + (list(POOLED_FUSED_MODELS) if pooled else [])
        else:
            log.info("too little affect data for fused models", syndrome=syndrome, max_periods=int(ok.max()))
            affect = None
    fc = forecast_panel(Panel(y, affect, freq), ref, models=models, target=target_name(syndrome, freq), n_jobs=n_jobs)
    rows = write_forecasts(con, fc, run_id)
    return {"syndrome": syndrome, "reference_date": str(ref.date()), "last_observed": str(last.date()),
            "rows": rows, "locations": int(fc["location"].nunique()), "models": models,
            "fallbacks": len(fc.attrs.get("fallbacks", []))}


def run_latest(settings: Settings | None = None, con: duckdb.DuckDBPyConnection | None = None,
               syndrome: str | None = None, *, reference_date=None, freq: str = "W", n_jobs: int = 2) -> dict:
    """Forecast every syndrome (or one) for its latest reference date and write the rows to
    ``forecasts``. Returns a summary per syndrome and the run id."""
    from affectwatch.warehouse import session

    s = settings or get_settings()
    run_id = uuid.uuid4().hex[:12]
    with session(s, con=con) as con:
        syndromes = _syndromes(con, syndrome)
        results = [forecast_syndrome(con, syn, settings=s, freq=freq, reference_date=reference_date,
                                     run_id=run_id, n_jobs=n_jobs)
                   for syn in progress(syndromes, total=len(syndromes), desc="forecast run", unit="syndrome")]
    log.info("forecast run done", run_id=run_id, syndromes=[r["syndrome"] for r in results],
             rows=sum(r["rows"] for r in results))
    return {"run_id": run_id, "syndromes": results}
