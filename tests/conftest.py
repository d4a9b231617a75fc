"""Shared fixtures. Area-specific fixtures live in tests/fixtures/<area>.py (plugins below)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from affectwatch.settings import REPO_ROOT, Settings

pytest_plugins = ["tests.fixtures.warehouse", "tests.fixtures.kafka", "tests.fixtures.smtp", "tests.fixtures.data", "tests.fixtures.postgres"]

DATA = REPO_ROOT / "data"
_EXTENSIONS = "AFFECTWATCH_WAREHOUSE__EXTENSION_DIR"


def pytest_configure(config):
    """One DuckDB extension directory for the whole run (the test processes and every process they start),
    installed once from the offline wheels: each fresh data dir would otherwise install them again (~1 s)."""
    if os.environ.get(_EXTENSIONS):
        return
    ext_dir = Path(tempfile.mkdtemp(prefix="affectwatch-test-extensions-"))
    config._affectwatch_extension_dir = ext_dir
    import duckdb
    from duckdb_extensions import import_extension

    con = duckdb.connect(config={"extension_directory": str(ext_dir), "autoinstall_known_extensions": "false"})
    try:
        for name in ("ducklake", "sqlite_scanner", "postgres_scanner"):
            import_extension(name, con=con)
    finally:
        con.close()
    os.environ[_EXTENSIONS] = str(ext_dir)


def pytest_unconfigure(config):
    ext_dir = getattr(config, "_affectwatch_extension_dir", None)
    if ext_dir is not None:
        os.environ.pop(_EXTENSIONS, None)
        shutil.rmtree(ext_dir, ignore_errors=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data dir (warehouse, extensions, logs) is a fresh temporary folder."""
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
def warehouse(settings: Settings, migrated_template: Path):
    """A migrated DuckLake warehouse (SQLite catalog) and an open connection to it."""
    from tests.fixtures.warehouse import open_migrated

    con = open_migrated(migrated_template, settings)
    yield con
    con.close()


@pytest.fixture(scope="module")
def module_warehouse(tmp_path_factory, migrated_template):
    """(settings, connection) of one migrated warehouse per test module; a module's ``warehouse`` fixture empties the tables it uses with :func:`emptied`."""
    from tests.fixtures.warehouse import open_migrated

    s = Settings(data_dir=tmp_path_factory.mktemp("module-warehouse") / "var")
    con = open_migrated(migrated_template, s)
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
