"""Statement guard of analyst sessions: defence in depth behind the analyst store's own boundary.

The boundary is ``analyst.store``: an analyst session's only database is a read-only publication
of suppressed marts, opened with external access off and the configuration locked, so it can
neither reach the warehouse nor read files. This guard checks each statement before it runs, so
that mistakes get a clear message instead of a DuckDB permission error:

- only ``select``-type statements (this includes ``describe``, ``summarize``, ``show``, ``from x``);
  ``insert``, ``create``, ``attach``, ``copy``, ``set``, ``call``, ... are refused;
- the parsed statement (``json_serialize_sql``) may only read the analyst marts: a table
  reference into another catalog (the warehouse ``wh``, its DuckLake metadata), the internal
  ``staging`` schema (``stg_*``/``int_*`` device-level views) or a quoted file path is refused;
- table functions are limited to an allow-list (no ``read_parquet``/``read_csv``/``query``/``glob``/...).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator

import duckdb

from analyst.views import CATALOG, INTERNAL_SCHEMA, MART_SCHEMA

ALLOWED_TABLE_FUNCTIONS = frozenset({
    "symptoms_known_at", "survey_affect_known_at", "range", "generate_series", "unnest",
    "duckdb_views", "duckdb_columns", "duckdb_functions", "duckdb_types", "duckdb_settings",
    "duckdb_keywords", "pragma_table_info", "pragma_show", "json_each", "json_tree",
})
_ALLOWED_CATALOGS = {"", CATALOG, "system", "temp"}
_ALLOWED_SCHEMAS = {"", MART_SCHEMA, CATALOG, "information_schema", "pg_catalog"}


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AnalystQueryError(ValueError):
    """A statement an analyst session does not run; the message says why and what to use instead."""


def check_analyst_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ``AnalystQueryError`` unless every statement in ``sql`` is a read of analyst views."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:  # syntax errors: report them as they are
        raise AnalystQueryError(str(exc)) from exc
    if not statements:
        raise AnalystQueryError("empty statement")
    for st in statements:
        if st.type != duckdb.StatementType.SELECT:
            kind = st.type.name.lower()
            raise AnalystQueryError(
                f"{kind} statements are not allowed in an analyst session (read-only: only select, describe, "
                f"summarize and show); the analyst store is read-only")
        parsed = json.loads(con.execute("select json_serialize_sql(?)", [st.query]).fetchone()[0])
        if parsed.get("error"):
            raise AnalystQueryError(f"statement not supported in an analyst session: {parsed.get('error_message', '')}")
        for node in _nodes(parsed):
            _check_node(node)


def _nodes(obj) -> Iterator[dict]:
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from _nodes(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _nodes(value)


def _check_node(node: dict) -> None:
    kind = node.get("type")
    if kind in ("BASE_TABLE", "SHOW_REF") and node.get("table_name"):
        _check_table(node.get("catalog_name") or "", node.get("schema_name") or "", node["table_name"].strip('"'))
    elif kind == "TABLE_FUNCTION":
        fn = node.get("function") or {}
        name = (fn.get("function_name") or "").lower()
        if name not in ALLOWED_TABLE_FUNCTIONS:
            raise AnalystQueryError(
                f"table function {name}() is not allowed in an analyst session; allowed: "
                f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}")


def _check_table(catalog: str, schema: str, table: str) -> None:
    name = ".".join(p for p in (catalog, schema, table) if p)
    lowered = table.lower()
    if not _PLAIN_NAME.match(table):
        raise AnalystQueryError(
            f"{table!r} is not an analyst view (file paths and URLs are not readable in an analyst session); "
            "list the views with .views")
    if schema.lower() == INTERNAL_SCHEMA or lowered.startswith(("stg_", "int_")) or lowered == "privacy_params":
        raise AnalystQueryError(
            f"{name} is an internal staging model with device-level rows; query the analyst views instead (.views)")
    if catalog.lower() not in _ALLOWED_CATALOGS or schema.lower() not in _ALLOWED_SCHEMAS:
        raise AnalystQueryError(
            f"{name} is outside the analyst views: raw warehouse tables are for the pipeline "
            f"(use `affectwatch sql --raw` if you run it); list the analyst views with .views")
