"""Read THE region-period affect cell (``sql/views/intermediate/int_affect_cells.sql``).

Every consumer of affect values — dashboard, forecast panels, alert engine and series, the
affect anomaly detector and (through alert evidence) emails — reads cells here, so all of them
count, weight, mean and suppress the same way as the analyst marts. Nothing in Python
re-implements the rule: codes come from the SQL, labels from :mod:`affectwatch.privacy`.

Two sources: a warehouse connection (the analyst views are installed into its in-memory
``analyst`` catalog when missing) or a DataFrame shaped like the ``affect_windows`` table (put in
a throw-away in-memory DuckDB under the warehouse alias, so the same SQL runs on it).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd

from affectwatch.settings import Settings, get_settings
from affectwatch.warehouse import migration_files

GRAINS = ("hour", "day", "week")
CELLS = "analyst.staging.int_affect_cells"
# affect_windows columns the cell SQL reads, with the type used when a DataFrame lacks one.
WINDOW_COLUMNS = {
    "device_id": "varchar", "region_id": "varchar", "site_type": "varchar",
    "window_start": "timestamptz", "window_end": "timestamptz",
    "n_observations": "bigint", "n_abstained": "bigint",
    "valence_mean": "double", "arousal_mean": "double", "valence_sd": "double", "arousal_sd": "double",
    "distress_share": "double", "confidence_mean": "double",
    "quality_pose_stability": "double", "quality_lighting": "double", "quality_snr_db": "double",
    "modality": "varchar", "model_version": "varchar", "dp_epsilon": "double", "simulated": "boolean",
    "ingested_at": "timestamptz",
}


def ensure_views(con: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> None:
    """Install the analyst views (and so the cell model) on ``con`` unless already there."""
    have = con.execute("select count(*) from duckdb_views() where database_name = 'analyst' "
                       "and view_name = 'int_affect_cells'").fetchone()[0]
    if not have:
        from analyst.views import install_views

        install_views(con, settings or get_settings())


def read(con: duckdb.DuckDBPyConnection, grain: str, *, settings: Settings | None = None,
         where: str = "true", params: list | tuple = ()) -> pd.DataFrame:
    """Cells of one grain (``hour`` | ``day`` | ``week``), filtered by a SQL condition with ``?`` params.

    ``where`` is program text (never user input); values go in ``params``.
    """
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}; choose one of: {', '.join(GRAINS)}")
    ensure_views(con, settings)
    cur = con.cursor()
    try:
        cur.execute("set TimeZone = 'UTC'")
        return cur.execute(f"select * from {CELLS} where grain = ? and ({where}) order by region_id, period_start",
                           [grain, *params]).df()
    finally:
        cur.close()


@contextmanager
def windows_session(windows: pd.DataFrame, settings: Settings | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A throw-away in-memory DuckDB holding ``windows`` (a DataFrame with ``affect_windows`` columns;
    missing optional ones are NULL) under the warehouse alias, so :func:`read` runs the same cell SQL
    on it, at as many grains as needed."""
    import pyarrow as pa

    s = settings or get_settings()
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach ':memory:' as {s.warehouse.alias}")
        con.execute(f"use {s.warehouse.alias}")
        for path in migration_files():  # every table the views name, empty
            con.execute(path.read_text())
        cols = ", ".join(f"{name} {typ}" for name, typ in WINDOW_COLUMNS.items())
        con.execute("drop table affect_windows")  # the window columns only, nullable: any affect_windows-shaped frame
        con.execute(f"create table affect_windows ({cols})")
        if len(windows):
            present = [c for c in WINDOW_COLUMNS if c in windows.columns]
            con.register("windows_df", pa.Table.from_pandas(windows[present], preserve_index=False))
            con.execute("insert into affect_windows by name select * from windows_df")
            if "simulated" not in windows.columns:
                con.execute("update affect_windows set simulated = false")
        yield con
    finally:
        con.close()


def from_windows(windows: pd.DataFrame, grain: str, settings: Settings | None = None,
                 where: str = "true", params: list | tuple = ()) -> pd.DataFrame:
    """Cells of one grain of ``windows`` (see :func:`windows_session`)."""
    with windows_session(windows, settings) as con:
        return read(con, grain, settings=settings, where=where, params=params)
