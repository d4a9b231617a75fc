"""Write forecasts, scores and affect-lift evidence to the warehouse tables of
sql/migrations/002_forecasts.sql (one transaction per call; a rerun for the same reference date,
target, model and location replaces the earlier rows)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import duckdb
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.warehouse import transaction

log = get_logger(__name__)

FORECAST_COLUMNS = ["reference_date", "horizon", "target", "target_end_date", "location", "output_type",
                    "output_type_id", "value", "model", "created_at", "run_id"]
SCORE_COLUMNS = ["model", "location", "target", "reference_date", "horizon", "wis", "dispersion", "overprediction",
                 "underprediction", "cover_50", "cover_80", "cover_95", "pit", "observed", "created_at", "run_id"]
LIFT_COLUMNS = ["location", "target", "wis_ratio", "ratio_lo", "ratio_hi", "interval_level", "lead", "lead_lo", "lead_hi", "lead_unit",
                "informative", "verdict", "n_forecasts", "simulated", "created_at", "run_id"]


def _stamp(df: pd.DataFrame, run_id: str | None) -> pd.DataFrame:
    out = df.copy()
    if "created_at" not in out.columns:
        out["created_at"] = datetime.now(timezone.utc)
    if "run_id" not in out.columns or run_id:
        out["run_id"] = run_id or uuid.uuid4().hex[:12]
    return out


def _write(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame, columns: list[str], delete_sql: str | None) -> int:
    frame = df[columns]
    con.register("_aw_rows", frame)
    cols = ", ".join(columns)

    def work():
        if delete_sql:
            con.execute(delete_sql)
        con.execute(f"insert into {table} ({cols}) select {cols} from _aw_rows")

    try:
        transaction(con, work, what=f"write {table}")
    finally:
        con.unregister("_aw_rows")
    log.info("rows written", table=table, rows=len(frame))
    return len(frame)


def write_forecasts(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, run_id: str | None = None) -> int:
    """Insert hubverse rows (+ model); earlier rows with the same reference date, target, model and
    location are replaced."""
    df = _stamp(frame, run_id)
    for c in ("reference_date", "target_end_date"):
        df[c] = pd.to_datetime(df[c]).dt.date
    delete = """delete from forecasts f using (select distinct reference_date, target, model, location from _aw_rows) n
                where f.reference_date = n.reference_date and f.target = n.target and f.model = n.model
                  and f.location = n.location"""
    return _write(con, "forecasts", df, FORECAST_COLUMNS, delete)


def write_scores(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame, run_id: str | None = None) -> int:
    df = _stamp(scores, run_id)
    df["reference_date"] = pd.to_datetime(df["reference_date"]).dt.date
    delete = """delete from forecast_scores f using (select distinct model, location, target, reference_date, horizon from _aw_rows) n
                where f.model = n.model and f.location = n.location and f.target = n.target
                  and f.reference_date = n.reference_date and f.horizon = n.horizon"""
    return _write(con, "forecast_scores", df, SCORE_COLUMNS, delete)


def write_lift(con: duckdb.DuckDBPyConnection, lift: pd.DataFrame, run_id: str | None = None) -> int:
    """Append affect-lift evidence (history is kept; readers take the latest created_at per location)."""
    return _write(con, "affect_lift", _stamp(lift, run_id), LIFT_COLUMNS, None)
