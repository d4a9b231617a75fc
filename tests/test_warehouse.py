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
