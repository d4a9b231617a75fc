"""Shared fixtures. Area-specific fixtures live in tests/fixtures/<area>.py (plugins below)."""
from __future__ import annotations

from pathlib import Path

import pytest

from affectwatch.settings import REPO_ROOT, Settings

pytest_plugins = ["tests.fixtures.kafka", "tests.fixtures.smtp", "tests.fixtures.data", "tests.fixtures.postgres"]

DATA = REPO_ROOT / "data"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data dir (warehouse, extensions, logs) is a fresh temporary folder."""
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
def warehouse(settings: Settings):
    """A migrated DuckLake warehouse (SQLite catalog) and an open connection to it."""
    from affectwatch.warehouse import connect, migrate

    con = connect(settings)
    migrate(con)
    yield con
    con.close()


@pytest.fixture(scope="module")
def module_warehouse(tmp_path_factory):
    """(settings, connection) of one migrated warehouse per test module (a fresh one per test costs
    ~2 s); a module's ``warehouse`` fixture empties the tables it uses with :func:`emptied`."""
    from affectwatch.warehouse import connect, migrate

    s = Settings(data_dir=tmp_path_factory.mktemp("module-warehouse") / "var")
    con = connect(s)
    migrate(con)
    yield s, con
    con.close()


def emptied(con, *tables: str):
    for table in tables:
        con.execute(f"delete from {table}")
    return con


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The vendored real data (data/SOURCES.md)."""
    return DATA
