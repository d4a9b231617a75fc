"""The analyst store: the suppressed marts, published into their own DuckDB files, and the locked session.

Analysts never touch the raw warehouse. ``refresh`` (``affectwatch analyst refresh``; the scheduler
job ``analyst-refresh``; the demo after loading) opens the warehouse read-only, installs the views
of ``sql/views`` and materialises every mart and macro into a new file
``<store_dir>/pub-NNNNNN/analyst.duckdb`` - one immutable *publication*. Staging models, the
privacy parameters and raw tables are never copied. ``open_store`` opens one publication file as
the session's only database (catalog ``analyst``, read-only) with external access off (no file
reads, ``ATTACH``, ``COPY``, ``INSTALL``/``LOAD``, HTTP) and the configuration locked from the
start, so no statement can undo that. The warehouse is not attached in that session at all.

Time travel: ``--snapshot N`` opens publication N, ``--as-of T`` the latest published at or
before T; each publication carries the table ``publications`` (the history up to itself).

Differencing between publications (issue #12, item 3) - for *cell marts* (a mart with the
columns ``suppression`` and ``n_devices`` plus a period column from ``PERIOD_END``):

- a cell is published only once its period is closed: period end + ``analyst.grace_hours``
  before the refresh time, so late windows arrive before the first publication;
- a published visible cell (``suppression = 0``) changes in a later publication only when the
  change is itself above the minimums: at least ``privacy.k_min`` scored observations *and* at
  least ``privacy.min_devices`` devices more (or fewer). Otherwise the published row is *held*
  (kept as it was), so subtracting two publications of a cell never isolates fewer devices or
  observations than a published cell has. A cell that was suppressed may become visible (its
  earlier values were never published), and a visible one suppressed (e.g. after the minimums
  were raised); a published cell never disappears.
"""
from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings
from analyst.views import CATALOG, MART_SCHEMA, install_views, view_files

log = get_logger(__name__)

PUBLICATIONS = "publications"  # table in every publication: the history up to and including it
_DIR = re.compile(r"^pub-(\d{6})$")
# Period columns of a cell mart -> SQL for the (exclusive) end of the period, first match wins.
PERIOD_END = {
    "period_end": "period_end + interval 1 day",  # an inclusive date
    "week_start": "week_start + interval 7 day",
    "day": "day + interval 1 day",
    "hour_start": "hour_start + interval 1 hour",
}
# Columns that identify a cell (whichever of them a cell mart has).
KEY_COLUMNS = ("region_id", "region_level", "geo_level", "grain", "site_type", "modality",
               "period_start", "period_end", "week_start", "day", "hour_start", "hour_of_week")
# The analyst session's configuration, fixed at start-up; lock_configuration keeps it so.
LOCKDOWN = (
    ("enable_external_access", "false"),  # no file/URL reads or writes, ATTACH, INSTALL/LOAD
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("allow_community_extensions", "false"),
    ("python_enable_replacements", "false"),  # no scans of Python variables by name
    ("lock_configuration", "true"),  # no SET/RESET of anything
)


class StoreError(RuntimeError):
    """The analyst store cannot be opened or published; the message says what to do."""


# -- publications on disk ----------------------------------------------------------------------

def publication_path(settings: Settings, publication_id: int) -> Path:
    return settings.analyst_store_dir / f"pub-{publication_id:06d}" / f"{CATALOG}.duckdb"


def publication_ids(settings: Settings) -> list[int]:
    """Ids of the complete publications present, oldest first."""
    d = settings.analyst_store_dir
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _DIR.match(p.name)) and (p / f"{CATALOG}.duckdb").exists())


def _sql_text(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _choose(settings: Settings, snapshot: int | None, as_of: str | None) -> int:
    ids = publication_ids(settings)
    if not ids:
        raise StoreError(f"no analyst store in {settings.analyst_store_dir}: run `affectwatch analyst refresh` "
                         "(the scheduler and the demo do it after loading)")
    if snapshot is not None and as_of is not None:
        raise StoreError("give either --snapshot or --as-of, not both")
    if snapshot is not None:
        if snapshot not in ids:
            raise StoreError(f"no analyst publication {snapshot}; available: {ids[0]}..{ids[-1]} (see .snapshots)")
        return snapshot
    if as_of is None:
        return ids[-1]
    con = duckdb.connect(str(publication_path(settings, ids[-1])), read_only=True, config=dict(LOCKDOWN))
    try:
        try:
            row = con.execute(f"select max(publication_id) from {PUBLICATIONS} "
                              "where published_at <= cast(? as timestamptz)", [as_of]).fetchone()
        except duckdb.ConversionException as exc:
            raise StoreError(f"--as-of {as_of!r} is not a timestamp: {exc}") from exc
    finally:
        con.close()
    if row[0] is None:
        raise StoreError(f"nothing was published by {as_of}; the first publication is {ids[0]} (see .snapshots)")
    if row[0] not in ids:
        raise StoreError(f"publication {row[0]} (as of {as_of}) was deleted by retention "
                         f"(analyst.keep_publications); the oldest kept is {ids[0]}")
    return row[0]


def open_store(settings: Settings | None = None, *, snapshot: int | None = None,
               as_of: str | None = None) -> tuple[duckdb.DuckDBPyConnection, int]:
    """A locked analyst session on one publication (latest, ``snapshot`` or ``as_of``); returns (con, id).

    The publication file is the session's database, opened read-only with ``LOCKDOWN`` applied at
    start-up; nothing else is attached.
    """
    s = settings or get_settings()
    pub = _choose(s, snapshot, as_of)
    try:
        con = duckdb.connect(str(publication_path(s, pub)), read_only=True, config=dict(LOCKDOWN))
    except duckdb.Error as exc:
        raise StoreError(f"cannot open analyst publication {pub}: {exc}") from exc
    return con, pub


# -- refresh -----------------------------------------------------------------------------------

@contextmanager
def _store_lock(store: Path) -> Iterator[None]:
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".refresh.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _columns(con, catalog: str, name: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select column_name from duckdb_columns() where database_name = ? and schema_name = 'main' "
        "and table_name = ? order by column_index", [catalog, name]).fetchall()]


def _cell_spec(name: str, cols: list[str]) -> dict | None:
    """How to publish a cell mart (period end, keys, counts), or None for other marts."""
    if "suppression" not in cols or "n_devices" not in cols:
        return None
    period = next((c for c in PERIOD_END if c in cols), None)
    if period is None:
        raise StoreError(f"cell mart {name} has none of the period columns {', '.join(PERIOD_END)}; "
                         "add its period to analyst.store.PERIOD_END")
    return {"period_end": PERIOD_END[period], "keys": [c for c in KEY_COLUMNS if c in cols],
            "scored": "n_scored" if "n_scored" in cols else "n_observations"}


def _publish_cells(con, name: str, spec: dict, cutoff: datetime, has_prev: bool, s: Settings) -> dict:
    """Create pub.main.<name> from the closed cells, holding published cells against small changes."""
    con.execute(f"create or replace temp table fresh as select * from {CATALOG}.main.{name} "
                f"where {spec['period_end']} <= cast(? as timestamptz)", [cutoff])
    n_open = con.execute(f"select count(*) from {CATALOG}.main.{name}").fetchone()[0] - \
        con.execute("select count(*) from fresh").fetchone()[0]
    keys = ", ".join(spec["keys"])
    if con.execute(f"select count(*) - count(distinct ({keys})) from fresh").fetchone()[0]:
        raise StoreError(f"cell mart {name}: ({keys}) does not identify a row; add its key column to "
                         "analyst.store.KEY_COLUMNS")
    if not has_prev or name not in _tables(con, "prev"):
        con.execute(f"create table pub.main.{name} as select * from fresh")
        return {"held": 0, "open": n_open}
    on = " and ".join(f"f.{k} is not distinct from o.{k}" for k in spec["keys"])
    sc = spec["scored"]
    same = f"f.{sc} = o.{sc} and f.n_devices = o.n_devices and f.suppression = o.suppression"
    small = f"not (abs(f.{sc} - o.{sc}) >= ? and abs(f.n_devices - o.n_devices) >= ?)"
    # keep: the published row stays - same counts (same data; keeps rows byte-stable) or a small change
    # to a visible cell that stays visible (a cell that becomes suppressed, e.g. after the minimums
    # were raised, is published suppressed: that reveals no value)
    con.execute(f"""
        create or replace temp table kept as
        select o.*, not ({same}) as held_back from prev.main.{name} o join fresh f on {on}
        where ({same}) or (o.suppression = 0 and f.suppression = 0 and {small})""",
                [s.privacy.k_min, s.privacy.min_devices])
    con.execute(f"""
        create table pub.main.{name} as
        select * from fresh f where not exists (select 1 from kept o where {on})
        union all by name select * exclude (held_back) from kept
        union all by name
        select * from prev.main.{name} o where not exists (select 1 from fresh f where {on})""")
    return {"held": con.execute("select count(*) from kept where held_back").fetchone()[0], "open": n_open}


def _tables(con, catalog: str) -> set[str]:
    return {r[0] for r in con.execute("select table_name from duckdb_tables() where database_name = ?",
                                      [catalog]).fetchall()}


def _comparable(con, catalog: str, name: str) -> str:
    """SELECT of a table with floating-point columns rounded (parallel sums differ in the last bits)."""
    cols = con.execute("select column_name, data_type from duckdb_columns() where database_name = ? "
                       "and schema_name = 'main' and table_name = ? order by column_index", [catalog, name]).fetchall()
    exprs = [f'round("{c}", 9) as "{c}"' if t in ("DOUBLE", "FLOAT") else f'"{c}"' for c, t in cols]
    return f"select {', '.join(exprs)} from {catalog}.main.{name}"


def _same_as_prev(con) -> bool:
    names = _tables(con, "pub") - {PUBLICATIONS}
    if names != _tables(con, "prev") - {PUBLICATIONS}:
        return False
    for n in names:
        new, old = _comparable(con, "pub", n), _comparable(con, "prev", n)
        try:
            diff = con.execute(f"select count(*) from (({new} except all {old}) union all ({old} except all {new}))"
                               ).fetchone()[0]
        except duckdb.Error:  # the columns changed
            return False
        if diff:
            return False
    return True


def refresh(settings: Settings | None = None, *, now: datetime | None = None,
            warehouse_snapshot: int | None = None) -> dict:
    """Publish the marts (as of the warehouse now, or ``warehouse_snapshot``) as a new publication.

    Nothing is written when the result equals the previous publication. Returns a summary dict.
    """
    from affectwatch.warehouse import session

    s = settings or get_settings()
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(hours=s.analyst.grace_hours)
    store = s.analyst_store_dir
    with _store_lock(store):
        ids = publication_ids(s)
        new_id = ids[-1] + 1 if ids else 1
        tmp_dir = store / f"pub-{new_id:06d}.tmp"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir()
        tmp = tmp_dir / f"{CATALOG}.duckdb"
        with session(s, read_only=True, use=False, snapshot=warehouse_snapshot) as con:
            install_views(con, s)
            wh_snapshot = warehouse_snapshot if warehouse_snapshot is not None else con.execute(
                "select max(snapshot_id) from ducklake_snapshots(?)", [s.warehouse.alias]).fetchone()[0]
            con.execute(f"attach {_sql_text(tmp)} as pub")
            if ids:
                con.execute(f"attach {_sql_text(publication_path(s, ids[-1]))} as prev (read_only)")
            held = n_open = 0
            for view in view_files():
                if view.schema != MART_SCHEMA:
                    continue
                if view.layer == "macros":
                    con.execute(f"create macro pub.main.{view.name}({', '.join(view.macro_params)}) as table\n"
                                f"{view.sql.strip().rstrip(';')}")
                    continue
                spec = _cell_spec(view.name, _columns(con, CATALOG, view.name))
                if spec is None:
                    con.execute(f"create table pub.main.{view.name} as select * from {CATALOG}.main.{view.name}")
                else:
                    got = _publish_cells(con, view.name, spec, cutoff, bool(ids), s)
                    held, n_open = held + got["held"], n_open + got["open"]
            unchanged = bool(ids) and _same_as_prev(con)
            history = f"select * from prev.main.{PUBLICATIONS} union all " if ids else ""
            con.execute(f"""create table pub.main.{PUBLICATIONS} as {history}
                select ?::integer as publication_id, ?::timestamptz as published_at,
                       ?::bigint as warehouse_snapshot, ?::timestamptz as periods_closed_before,
                       ?::integer as cells_held, ?::integer as cells_not_yet_published""",
                        [new_id, now, wh_snapshot, cutoff, held, n_open])
            con.execute("detach pub")
        summary = {"publication_id": ids[-1] if unchanged else new_id, "published": not unchanged,
                   "warehouse_snapshot": wh_snapshot, "periods_closed_before": cutoff.isoformat(),
                   "cells_held": held, "cells_not_yet_published": n_open}
        if unchanged:
            shutil.rmtree(tmp_dir)
            log.info("analyst store unchanged", **summary)
            return summary
        tmp_dir.replace(publication_path(s, new_id).parent)
        _prune(s)
        log.info("analyst store published", **summary)
        return summary


def _prune(s: Settings) -> None:
    keep = s.analyst.keep_publications
    ids = publication_ids(s)
    if keep > 0 and len(ids) > keep:
        for old in ids[:-keep]:
            shutil.rmtree(publication_path(s, old).parent, ignore_errors=True)
