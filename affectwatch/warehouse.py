"""Warehouse connection: DuckDB + DuckLake (SQLite catalog in WAL mode by default).

Every process (ingest worker, scheduler, dashboard, analysts) opens the warehouse through
``connect()``; the DuckLake catalog lets them work at the same time and gives snapshot time
travel (``select ... from wh.t at (version => N)`` or ``at (timestamp => ...)``).
"""
from __future__ import annotations

import fcntl
import os
import random
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import duckdb

from affectwatch.logs import get_logger
from affectwatch.settings import REPO_ROOT, Settings, get_settings

log = get_logger(__name__)

MIGRATIONS_DIR = REPO_ROOT / "sql" / "migrations"
T = TypeVar("T")


def _load_extensions(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Install the DuckDB extensions from the offline PyPI packages into the project's extension dir;
    load DuckLake and the one catalog extension this warehouse needs (each load costs ~0.2 s, which
    a dashboard's first view pays)."""
    catalog_ext = "postgres_scanner" if settings.catalog.startswith("postgres:") else "sqlite_scanner"
    for name in ("ducklake", catalog_ext):
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
    con.execute("SET enable_progress_bar = false")  # services log; a progress bar on stdout is noise
    catalog = s.catalog
    _load_extensions(con, s)
    if catalog.startswith("sqlite:"):
        Path(catalog.removeprefix("sqlite:")).parent.mkdir(parents=True, exist_ok=True)
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
    else:
        if catalog.startswith("sqlite:"):
            # WAL so readers never wait behind a commit. Set through DuckLake's own SQLite, never with
            # Python's sqlite3: a second SQLite library in the same process that opens and closes the
            # catalog drops the POSIX locks DuckDB's SQLite holds on it (locks are per process), and
            # concurrent readers and writers then fail with "disk I/O error".
            opts.append("META_JOURNAL_MODE 'WAL'")
        if s.warehouse.data_inlining_row_limit >= 0:
            opts.append(f"DATA_INLINING_ROW_LIMIT {int(s.warehouse.data_inlining_row_limit)}")
    alias = s.warehouse.alias
    retry(lambda: con.execute(f"ATTACH 'ducklake:{_quote(catalog)}' AS {alias} ({', '.join(opts)})"),
          what="attach warehouse")
    _set_ducklake_retries(con)
    if use:
        con.execute(f"USE {alias}")
    return con


def _set_ducklake_retries(con: duckdb.DuckDBPyConnection) -> None:
    """DuckLake's own commit retries (cheap: no data file is rewritten), shorter and more patient than its
    defaults (10 attempts 100 ms apart, x1.5) so that a lost snapshot race costs milliseconds, not seconds."""
    con.execute(f"SET ducklake_max_retry_count = {DUCKLAKE_RETRIES}")
    con.execute(f"SET ducklake_retry_wait_ms = {DUCKLAKE_RETRY_WAIT_MS}")
    con.execute(f"SET ducklake_retry_backoff = {DUCKLAKE_RETRY_BACKOFF}")


def _quote(text: str) -> str:
    return text.replace("'", "''")


# -- contention: several processes commit to one catalog ---------------------------------------------
# DuckLake first settles a lost snapshot race itself (ducklake_max_retry_count); what still reaches us
# (SQLite "database is locked" after its retries, a logical conflict, a PostgreSQL serialization
# failure) is retried here as a whole transaction, with jittered exponential backoff.
_CONTENTION = ("database is locked", "database is busy", "conflict", "could not serialize", "deadlock detected",
               "duplicate key value", "failed to flush changes into ducklake", "failed to commit")
DUCKLAKE_RETRIES, DUCKLAKE_RETRY_WAIT_MS, DUCKLAKE_RETRY_BACKOFF = 20, 10, 1.3
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0
WAIT_LOG_EVERY_S = 5.0


class WarehouseBusy(RuntimeError):
    """The catalog stayed contended for longer than the caller's time budget."""


def is_contention(exc: BaseException) -> bool:
    """True for errors that mean "another writer got there first / holds the catalog": retry later."""
    if isinstance(exc, duckdb.TransactionException):
        return True
    if isinstance(exc, duckdb.Error):
        text = str(exc).lower()
        return any(marker in text for marker in _CONTENTION)
    return False


def backoff_delays(first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S,
                   rnd: random.Random | None = None) -> Iterator[float]:
    """Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling up to ``cap``.

    The jitter keeps workers that lost the same race from retrying in lockstep.
    """
    rnd = rnd or random.Random()
    d = first
    while True:
        yield rnd.uniform(d / 2, d)
        d = min(cap, d * 2)


def retry(fn: Callable[[], T], *, max_seconds: float | None = 60.0, what: str = "warehouse operation",
          on_wait: Callable[[int, float, BaseException], None] | None = None) -> T:
    """Call ``fn`` until it does not fail with catalog contention.

    ``max_seconds`` bounds the total wait (then ``WarehouseBusy``); ``None`` waits for as long as it
    takes (the ingest worker: contention is never a reason to exit). Each wait is logged with
    ``status="waiting_for_catalog"`` (a warning once it lasts, at most every few seconds) and reported
    to ``on_wait(attempt, waited_s, error)``. Other errors propagate at once.
    """
    start = time.monotonic()
    delays = backoff_delays()
    last_log = start
    attempt = 0
    while True:
        attempt += 1
        try:
            out = fn()
        except Exception as exc:
            if not is_contention(exc):
                raise
            waited = time.monotonic() - start
            if max_seconds is not None and waited >= max_seconds:
                raise WarehouseBusy(f"{what}: catalog still busy after {attempt} attempts in {waited:.1f} s: "
                                    f"{str(exc)[:300]}") from exc
            now = time.monotonic()
            fields = dict(what=what, attempt=attempt, waited_s=round(waited, 2), status="waiting_for_catalog",
                          error=str(exc)[:200])
            if now - last_log >= WAIT_LOG_EVERY_S:
                last_log = now
                log.warning("warehouse catalog busy; still retrying", **fields)
            else:
                log.debug("warehouse catalog busy; retrying", **fields)
            if on_wait is not None:
                on_wait(attempt, waited, exc)
            delay = next(delays)
            if max_seconds is not None:
                delay = min(delay, max(0.0, max_seconds - waited))
            time.sleep(delay)
            continue
        if attempt > 1:
            waited = time.monotonic() - start
            (log.info if waited >= 1.0 else log.debug)(
                "warehouse catalog free again", what=what, attempts=attempt, waited_s=round(waited, 2), status="ok")
        return out


def transaction(con: duckdb.DuckDBPyConnection, fn: Callable[[], T], *, max_seconds: float | None = 60.0,
                what: str = "warehouse transaction",
                on_wait: Callable[[int, float, BaseException], None] | None = None) -> T:
    """Run ``fn()`` between ``begin`` and ``commit`` on ``con``; on contention roll back and run it all again.

    ``fn`` must do all of the transaction's work (it is re-run from scratch on each attempt), so a
    retried transaction is still one all-or-nothing commit. Any other error rolls back and propagates.
    """

    lock_path = _writer_lock_path(con)

    def attempt() -> T:
        with _writer_lock(lock_path, what):
            con.execute("begin")
            try:
                out = fn()
                con.execute("commit")
                return out
            except BaseException:
                rollback(con)
                raise

    return retry(attempt, max_seconds=max_seconds, what=what, on_wait=on_wait)


def _writer_lock_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    """``<catalog>.writer.lock`` next to a writable SQLite catalog attached to ``con`` (None otherwise)."""
    try:
        found = con.execute("select path from duckdb_databases() where type = 'ducklake' and not readonly").fetchall()
    except duckdb.Error:
        return None
    for (path,) in found:
        if path and path.startswith("sqlite:"):
            return Path(path.removeprefix("sqlite:") + ".writer.lock")
    return None


@contextmanager
def _writer_lock(path: Path | None, what: str) -> Iterator[None]:
    """Writers of one SQLite catalog take turns (an OS file lock held from ``begin`` to ``commit``).

    SQLite lets one writer in at a time and fails a writer whose read snapshot went stale at once
    ("database is locked", no busy wait), so two busy workers would otherwise keep failing each other's
    commits — the longer batch losing every time. Waiting for the lock before ``begin`` costs one
    other transaction at most and makes the commit itself succeed. The kernel drops the lock of a
    process that dies. PostgreSQL catalogs need no such lock (``path`` is None).
    """
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            t0 = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocking: a waiter is woken when the holder commits
            waited = time.monotonic() - t0
            (log.info if waited >= WAIT_LOG_EVERY_S else log.debug)(
                "waited for the catalog writer lock", what=what, waited_s=round(waited, 3), status="ok")
        yield
    finally:
        os.close(fd)  # releases the lock


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is open (a failed commit may already have ended it)."""
    try:
        con.execute("rollback")
    except duckdb.Error:
        pass


@contextmanager
def session(settings: Settings | None = None, *, con: duckdb.DuckDBPyConnection | None = None,
            **kwargs: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """``with session(settings, read_only=True) as con:`` — ``connect(...)`` closed on exit (same kwargs).

    Given ``con`` (a caller's open connection), the session borrows it: yields it unchanged and leaves
    it open (``settings`` and ``kwargs`` are then unused).
    """
    if con is not None:
        yield con
        return
    own = connect(settings, **kwargs)
    try:
        yield own
    finally:
        own.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict]:
    """The result of ``sql`` as a list of dicts keyed by column name."""
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def migration_files() -> list[Path]:
    return sorted(p for p in MIGRATIONS_DIR.glob("*.sql") if re.match(r"^\d{3}_", p.name))


def migrate(con: duckdb.DuckDBPyConnection | None = None, settings: Settings | None = None) -> list[str]:
    """Apply the versioned DDL in ``sql/migrations`` idempotently; returns the versions applied now."""
    with session(settings, con=con) as con:
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
                con.execute(sql)
                con.execute("insert into schema_migrations values (?, ?, now())", [version, name])

            transaction(con, apply, what=f"migration {version}")
            applied.append(path.stem)
            log.info("migration applied", version=version, name=path.stem)
        return applied


def compact(con: duckdb.DuckDBPyConnection | None = None, settings: Settings | None = None, expire_older_than: str | None = None) -> dict:
    """Merge small Parquet files, optionally expire old snapshots, and delete files no longer referenced."""
    s = settings or get_settings()
    alias = s.warehouse.alias
    with session(s, con=con) as con:
        before = con.execute(f"select count(*) from ducklake_list_files('{alias}', 'affect_windows')").fetchone()[0]
        con.execute(f"call ducklake_merge_adjacent_files('{alias}')")
        if expire_older_than:
            con.execute(f"call ducklake_expire_snapshots('{alias}', older_than => now() - interval '{_quote(expire_older_than)}')")
        con.execute(f"call ducklake_cleanup_old_files('{alias}', cleanup_all => true)")
        after = con.execute(f"select count(*) from ducklake_list_files('{alias}', 'affect_windows')").fetchone()[0]
        log.info("warehouse compacted", affect_files_before=before, affect_files_after=after)
        return {"affect_files_before": before, "affect_files_after": after}
