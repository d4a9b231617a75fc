"""Warehouse creation and idempotent migrations."""
from affectwatch.warehouse import connect, migrate, migration_files


def test_migrations_are_idempotent(settings):
    con = connect(settings)
    first = migrate(con)
    assert first == [p.stem for p in migration_files()]
    assert migrate(con) == []
    tables = {r[0] for r in con.execute("show tables").fetchall()}
    assert {"affect_windows", "symptom_reports", "dead_letters", "ingest_offsets", "forecasts", "alerts"} <= tables


def test_sqlite_catalog_is_in_wal_mode(settings):
    import sqlite3

    connect(settings).close()
    path = settings.catalog.removeprefix("sqlite:")
    assert sqlite3.connect(path).execute("pragma journal_mode").fetchone()[0].lower() == "wal"


def test_read_only_connection_cannot_write(settings):
    import duckdb
    import pytest

    con = connect(settings)
    migrate(con)
    con.close()
    ro = connect(settings, read_only=True)
    with pytest.raises(duckdb.Error):
        ro.execute("insert into dead_letters (reason, received_at) values ('x', now())")


def test_readers_and_a_writer_in_one_process_never_see_io_errors(settings):
    """A dashboard, a scheduler or an in-process worker opens read-only sessions while another thread
    commits. Opening the catalog with a second SQLite library (Python's sqlite3) in the same process
    used to drop DuckDB's locks on it: readers and the writer failed with "disk I/O error" within
    seconds (4 errors in 5 s here; the writer died)."""
    import threading
    import time

    con = connect(settings)
    migrate(con)
    con.close()
    errors: list[str] = []
    stop = threading.Event()

    def write():
        w = connect(settings)
        try:
            while not stop.is_set():
                w.execute("insert into dead_letters (reason, received_at) values ('x', now())")
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            errors.append(f"writer: {e}")
        finally:
            w.close()

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 6
    reads = 0
    try:
        while time.monotonic() < deadline and not errors:
            try:
                ro = connect(settings, read_only=True)
                ro.execute("select count(*) from dead_letters").fetchall()
                ro.close()
                reads += 1
            except Exception as e:  # noqa: BLE001
                errors.append(f"reader: {e}")
    finally:
        stop.set()
        writer.join(timeout=60)
    assert errors == []
    assert reads > 0
    with connect(settings, read_only=True) as ro:
        assert ro.execute("select count(*) from dead_letters").fetchone()[0] > 0


# -- contention: retry with jittered backoff, bounded by time -------------------------------------------
def test_backoff_is_jittered_exponential_and_capped():
    import random

    from affectwatch.warehouse import backoff_delays

    gen = backoff_delays(first=0.1, cap=1.0, rnd=random.Random(1))
    delays = [next(gen) for _ in range(12)]
    bounds = [min(1.0, 0.1 * 2 ** i) for i in range(12)]
    assert all(d / 2 <= x <= d for x, d in zip(delays, bounds))
    assert len({round(x, 6) for x in delays}) == len(delays)  # jittered, not lockstep
    assert max(delays) <= 1.0


def test_transaction_retries_contention_as_one_transaction(warehouse):
    """A contended attempt is rolled back in full and re-run; other errors are raised at once."""
    import duckdb
    import pytest

    from affectwatch.warehouse import transaction

    calls = []

    def work():
        calls.append(1)
        warehouse.execute("insert into dead_letters (reason, received_at) values ('x', now())")
        if len(calls) < 3:  # the same error DuckLake raises when another writer holds the SQLite catalog
            raise duckdb.TransactionException("Failed to flush changes into DuckLake: database is locked")
        return len(calls)

    assert transaction(warehouse, work, max_seconds=30) == 3
    assert warehouse.execute("select count(*) from dead_letters").fetchone()[0] == 1  # two attempts rolled back

    def broken():
        calls.append(1)
        raise duckdb.CatalogException("Table with name nope does not exist")

    calls.clear()
    with pytest.raises(duckdb.CatalogException):
        transaction(warehouse, broken, max_seconds=30)
    assert len(calls) == 1


def test_transaction_gives_up_after_its_time_budget(warehouse):
    import time

    import duckdb
    import pytest

    from affectwatch.warehouse import WarehouseBusy, transaction

    waits = []

    def always_busy():
        raise duckdb.TransactionException("Failed to commit DuckLake transaction: conflict")

    t0 = time.monotonic()
    with pytest.raises(WarehouseBusy, match="still busy"):
        transaction(warehouse, always_busy, max_seconds=1.0, on_wait=lambda a, w, e: waits.append((a, w)))
    assert 1.0 <= time.monotonic() - t0 < 10
    assert len(waits) >= 3 and [a for a, _ in waits] == list(range(1, len(waits) + 1))


def test_session_opens_and_closes_its_own_connection(settings):
    import duckdb
    import pytest

    from affectwatch.warehouse import session

    migrate(settings=settings)
    with session(settings, read_only=True) as con:
        assert con.execute("select count(*) from dead_letters").fetchone()[0] == 0
        with pytest.raises(duckdb.Error):  # the kwargs reach connect(): read-only
            con.execute("insert into dead_letters (reason, received_at) values ('x', now())")
    with pytest.raises(duckdb.ConnectionException):  # closed on exit
        con.execute("select 1")


def test_session_borrows_a_given_connection_and_leaves_it_open(warehouse, settings):
    import pytest

    from affectwatch.warehouse import session

    with session(settings, con=warehouse, read_only=True) as con:
        assert con is warehouse
        con.execute("insert into dead_letters (reason, received_at) values ('borrowed', now())")  # not read-only
    with pytest.raises(RuntimeError):
        with session(settings, con=warehouse) as con:
            raise RuntimeError("the caller's error propagates")
    assert warehouse.execute("select count(*) from dead_letters where reason = 'borrowed'").fetchone()[0] == 1
