"""Warehouse connection: DuckDB + DuckLake (SQLite catalog in WAL mode by default).

Every process (ingest worker, scheduler, dashboard, analysts) opens the warehouse through
``connect()``; the DuckLake catalog lets them work at the same time and gives snapshot time
travel (``select ... from wh.t at (version => N)`` or ``at (timestamp => ...)``).
"""
from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import duckdb

from affectwatch.logs import get_logger
from affectwatch.settings import REPO_ROOT, Settings, get_settings

log = get_logger(__name__)

MIGRATIONS_DIR = REPO_ROOT / "sql" / "migrations"
_EXTENSIONS = ("ducklake", "sqlite_scanner")


def _load_extensions(con: duckdb.DuckDBPyConnection, settings: Settings, postgres: bool) -> None:
    """Install the DuckDB extensions from the offline PyPI packages into the project's extension dir."""
    for name in _EXTENSIONS:
        try:
            con.execute(f"LOAD {name}")
            continue
        except duckdb.Error:
            pass
        try:
            from duckdb_extensions import import_extension

            import_extension(name, con=con)
        except Exception as exc:  # pragma: no cover - online fallback
            log.warning("offline extension install failed; trying online", extension=name, error=str(exc))
            con.execute(f"INSTALL {name}")
        con.execute(f"LOAD {name}")
    if postgres:
        con.execute("INSTALL postgres; LOAD postgres")
    if settings.data_path.startswith("s3://"):
        con.execute("INSTALL httpfs; LOAD httpfs")
        w = settings.warehouse
        params = {
            "KEY_ID": w.s3_key_id,
            "SECRET": w.s3_secret.get_secret_value() if w.s3_secret else None,
            "REGION": w.s3_region,
            "ENDPOINT": w.s3_endpoint,
            "URL_STYLE": w.s3_url_style,
        }
        parts = ["TYPE s3"] + [f"{k} '{_quote(str(v))}'" for k, v in params.items() if v]
        parts.append(f"USE_SSL {'true' if w.s3_use_ssl else 'false'}")
        con.execute(f"CREATE OR REPLACE SECRET affectwatch_s3 ({', '.join(parts)})")


def _prepare_sqlite_catalog(path: Path) -> None:
    """Create the SQLite catalog file in WAL mode (once) so readers do not wait behind commits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30)
    try:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


def connect(
    settings: Settings | None = None,
    *,
    read_only: bool = False,
    use: bool = True,
    threads: int | None = None,
    snapshot: int | None = None,
    as_of: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB session with the DuckLake warehouse attached as ``settings.warehouse.alias``.

    ``snapshot`` (a DuckLake snapshot id) or ``as_of`` (a timestamp) attach the warehouse as it was
    then (time travel; implies ``read_only``).
    """
    s = settings or get_settings()
    s.extension_dir.mkdir(parents=True, exist_ok=True)
    config = {"extension_directory": str(s.extension_dir), "autoinstall_known_extensions": "false"}
    if threads:
        config["threads"] = str(threads)
    con = duckdb.connect(config=config)
    catalog = s.catalog
    postgres = catalog.startswith("postgres:")
    _load_extensions(con, s, postgres)
    if catalog.startswith("sqlite:"):
        _prepare_sqlite_catalog(Path(catalog.removeprefix("sqlite:")))
    if not s.data_path.startswith(("s3://", "gs://", "az://", "abfss://", "http")):
        Path(s.data_path).mkdir(parents=True, exist_ok=True)
    opts = [f"DATA_PATH '{_quote(s.data_path)}'"]
    if snapshot is not None and as_of is not None:
        raise ValueError("give either snapshot or as_of, not both")
    if snapshot is not None:
        opts.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    if as_of is not None:
        opts.append(f"SNAPSHOT_TIME '{_quote(str(as_of))}'")
    if read_only or snapshot is not None or as_of is not None:
        opts.append("READ_ONLY")
    elif s.warehouse.data_inlining_row_limit >= 0:
        opts.append(f"DATA_INLINING_ROW_LIMIT {int(s.warehouse.data_inlining_row_limit)}")
    alias = s.warehouse.alias
    _retry(lambda: con.execute(f"ATTACH 'ducklake:{_quote(catalog)}' AS {alias} ({', '.join(opts)})"))
    if use:
        con.execute(f"USE {alias}")
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _retry(fn, attempts: int = 20, delay: float = 0.05):
    """Retry a warehouse operation that lost a catalog race with another process."""
    for i in range(attempts):
        try:
            return fn()
        except (duckdb.TransactionException, duckdb.IOException) as exc:  # catalog busy / conflict
            if i == attempts - 1:
                raise
            log.debug("warehouse busy; retrying", attempt=i + 1, error=str(exc)[:200])
            time.sleep(delay * (1 + i))


def migration_files() -> list[Path]:
    return sorted(p for p in MIGRATIONS_DIR.glob("*.sql") if re.match(r"^\d{3}_", p.name))


def migrate(con: duckdb.DuckDBPyConnection | None = None, settings: Settings | None = None) -> list[str]:
    """Apply the versioned DDL in ``sql/migrations`` idempotently; returns the versions applied now."""
    own = con is None
    con = con or connect(settings)
    try:
        con.execute(
            "create table if not exists schema_migrations (version varchar, name varchar, applied_at timestamptz)"
        )
        done = {r[0] for r in con.execute("select version from schema_migrations").fetchall()}
        applied = []
        for path in migration_files():
            version = path.name[:3]
            if version in done:
                continue
            sql = path.read_text()

            def apply(sql=sql, version=version, name=path.stem):
                con.execute("begin")
                try:
                    con.execute(sql)
                    con.execute("insert into schema_migrations values (?, ?, now())", [version, name])
                    con.execute("commit")
                except Exception:
                    con.execute("rollback")
                    raise

            _retry(apply)
            applied.append(path.stem)
            log.info("migration applied", version=version, name=path.stem)
        return applied
    finally:
        if own:
            con.close()


def compact(con: duckdb.DuckDBPyConnection | None = None, settings: Settings | None = None, expire_older_than: str | None = None) -> dict:
    """Merge small Parquet files, optionally expire old snapshots, and delete files no longer referenced."""
    s = settings or get_settings()
    own = con is None
    con = con or connect(s)
    alias = s.warehouse.alias
    try:
        before = con.execute(f"select count(*) from ducklake_list_files('{alias}', 'affect_windows')").fetchone()[0]
        con.execute(f"call ducklake_merge_adjacent_files('{alias}')")
        if expire_older_than:
            con.execute(f"call ducklake_expire_snapshots('{alias}', older_than => now() - interval '{_quote(expire_older_than)}')")
        con.execute(f"call ducklake_cleanup_old_files('{alias}', cleanup_all => true)")
        after = con.execute(f"select count(*) from ducklake_list_files('{alias}', 'affect_windows')").fetchone()[0]
        log.info("warehouse compacted", affect_files_before=before, affect_files_after=after)
        return {"affect_files_before": before, "affect_files_after": after}
    finally:
        if own:
            con.close()
