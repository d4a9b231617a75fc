"""Analyst views: install the SQL in ``sql/views`` into a DuckDB session.

The views live in their own in-memory catalog ``analyst`` of the session (never in the
warehouse), and read the warehouse through its alias (``wh.<table>``). So they work when the
warehouse is attached read-only or as of an earlier snapshot, and names do not collide with the
raw tables: ``analyst.forecast_scores`` is the summary view, ``wh.forecast_scores`` the table.

Layout (dbt-style):

- ``analyst.staging``: ``stg_*`` views that only rename and cast, ``int_*`` intermediate models,
  and the ``privacy_params`` / ``privacy_labels`` tables (minimums and code labels from settings,
  inserted as bound parameters). Device-level rows exist only here; the analyst shell refuses to read this schema.
- ``analyst.main``: the marts (CTE chains ending in ``final``) and table macros such as
  ``symptoms_known_at(ts)``. Small cells are suppressed inside the marts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from affectwatch.logs import get_logger
from affectwatch.privacy import labels as privacy_labels
from affectwatch.settings import REPO_ROOT, Settings, get_settings

log = get_logger(__name__)

VIEWS_DIR = REPO_ROOT / "sql" / "views"
CATALOG = "analyst"  # the in-memory catalog holding the views (referenced by the SQL files)
INTERNAL_SCHEMA = "staging"
MART_SCHEMA = "main"
LAYERS = ("staging", "intermediate", "marts", "macros")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MART_REF = re.compile(r"\banalyst\.main\.([a-z_][a-z0-9_]*)")
_MACRO_PARAMS = re.compile(r"^--\s*\w+\(([^)]*)\)", re.M)


@dataclass(frozen=True)
class ViewSql:
    name: str
    layer: str  # staging | intermediate | marts | macros
    path: Path
    sql: str

    @property
    def schema(self) -> str:
        return INTERNAL_SCHEMA if self.layer in ("staging", "intermediate") else MART_SCHEMA

    @property
    def qualified(self) -> str:
        return f"{CATALOG}.{self.schema}.{self.name}"

    @property
    def depends_on(self) -> set[str]:
        return set(_MART_REF.findall(self.sql)) - {self.name}

    @property
    def macro_params(self) -> list[str]:
        """Parameters of a table macro, from its header line ``-- name(param, ...)``."""
        m = _MACRO_PARAMS.search(self.sql)
        return [p.strip() for p in m.group(1).split(",") if p.strip()] if m else []


def view_files(views_dir: Path = VIEWS_DIR) -> list[ViewSql]:
    """All view SQL files in install order: staging, intermediate, marts (dependencies first), macros."""
    out: list[ViewSql] = []
    for layer in LAYERS:
        items = [ViewSql(p.stem, layer, p, p.read_text()) for p in sorted((views_dir / layer).glob("*.sql"))]
        out.extend(_dependency_order(items) if layer in ("marts", "macros") else items)
    return out


def _dependency_order(items: list[ViewSql]) -> list[ViewSql]:
    names = {v.name for v in items}
    done: list[ViewSql] = []
    placed: set[str] = set()
    pending = list(items)
    while pending:
        ready = [v for v in pending if (v.depends_on & names) <= placed]
        if not ready:
            raise ValueError(f"circular view dependencies among: {', '.join(v.name for v in pending)}")
        for v in ready:
            done.append(v)
            placed.add(v.name)
            pending.remove(v)
    return done


def mart_names(views_dir: Path = VIEWS_DIR) -> list[str]:
    """Names analysts may query (marts and macros, not staging)."""
    return [v.name for v in view_files(views_dir) if v.schema == MART_SCHEMA]


def _sql_for_alias(sql: str, alias: str) -> str:
    if not _IDENT.match(alias):
        raise ValueError(f"warehouse alias {alias!r} is not a plain SQL identifier")
    return sql if alias == "wh" else re.sub(r"\bwh\.", f"{alias}.", sql)


def install_views(
    con: duckdb.DuckDBPyConnection,
    settings: Settings | None = None,
    views_dir: Path = VIEWS_DIR,
) -> list[str]:
    """Create the analyst catalog, the privacy parameters and every view/macro; returns qualified names.

    Idempotent: views are ``create or replace``d. The warehouse must already be attached under
    ``settings.warehouse.alias`` (see ``affectwatch.warehouse.connect``).
    """
    s = settings or get_settings()
    attached = {r[0] for r in con.execute("select database_name from duckdb_databases()").fetchall()}
    if CATALOG not in attached:
        con.execute(f"attach ':memory:' as {CATALOG}")
    con.execute(f"create schema if not exists {CATALOG}.{INTERNAL_SCHEMA}")
    con.execute(f"create or replace table {CATALOG}.{INTERNAL_SCHEMA}.privacy_params "
                "(k_min integer, min_devices integer, min_quality double)")
    con.execute(f"insert into {CATALOG}.{INTERNAL_SCHEMA}.privacy_params values (?, ?, ?)",
                [s.privacy.k_min, s.privacy.min_devices, s.privacy.min_quality])
    con.execute(f"create or replace table {CATALOG}.{INTERNAL_SCHEMA}.privacy_labels (code integer, label varchar)")
    con.executemany(f"insert into {CATALOG}.{INTERNAL_SCHEMA}.privacy_labels values (?, ?)",
                    list(privacy_labels(s.privacy).items()))
    con.execute(f"create or replace table {CATALOG}.{INTERNAL_SCHEMA}.survey_privacy_params as "
                "select cast(? as integer) as min_sample_size", [s.privacy.min_survey_sample_size])
    created = []
    for view in view_files(views_dir):
        body = _sql_for_alias(view.sql, s.warehouse.alias).strip().rstrip(";")
        if view.layer == "macros":
            ddl = f"create or replace macro {view.qualified}({', '.join(view.macro_params)}) as table\n{body}"
        else:
            ddl = f"create or replace view {view.qualified} as\n{body}"
        try:
            con.execute(ddl)
        except duckdb.Error as exc:
            raise RuntimeError(f"view {view.name} ({view.path.relative_to(REPO_ROOT)}) failed to compile: {exc}") from exc
        created.append(view.qualified)
    log.debug("analyst views installed", views=len(created), k_min=s.privacy.k_min, min_devices=s.privacy.min_devices)
    return created
