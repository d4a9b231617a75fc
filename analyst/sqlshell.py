"""`affectwatch sql`: an analyst session on the suppressed analyst store (see ``analyst.store``).

- ``affectwatch sql`` opens an interactive shell: statements end with ``;``, dot-commands
  (``.tables``, ``.views``, ``.describe VIEW``, ``.snapshots``, ``.mode csv|json|table``,
  ``.help``, ``.quit``) and readline history in ``<data_dir>/sql_history``.
- ``affectwatch sql --query "select ..." --format csv|json|table`` runs one query for scripts.
- ``--snapshot N`` or ``--as-of TIMESTAMP`` open analyst-store publication N, or the one in force then.

The boundary is the analyst store itself: a separate DuckDB file of published, suppressed marts,
attached read-only in a session with external access off and the configuration locked; the
warehouse is not attached. The statement guard (``analyst.guard``) is defence in depth.
``--raw`` is the pipeline engineers' session on the warehouse (read-only, views installed); it
needs read access to the warehouse files, which analysts' accounts do not have.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings

log = get_logger(__name__)

FORMATS = ("table", "csv", "json")
PROMPT, CONTINUE = "affectwatch> ", "        ...> "
HELP = """\
Statements end with ';' and may span lines. Views live in the catalog 'analyst' (the default here).
The session is read-only and cannot read files, attach databases, load extensions or change settings.
  .tables              list the analyst views and macros
  .views               list them with their descriptions
  .describe VIEW       columns of a view with types, units and descriptions
  .snapshots           analyst-store publications (for --snapshot / --as-of time travel)
  .mode table|csv|json output format
  .help                this help
  .quit / .exit        leave (Ctrl-D works too)
Example: select * from affect_region_week where region_id = '06' order by week_start;"""


class SqlShellError(Exception):
    """A user-facing error of the SQL shell (bad option, failed query)."""


@dataclass
class Session:
    """An open SQL session: connection, settings, mode and output format.

    ``publication`` is the analyst-store publication id (None for a ``raw`` warehouse session).
    """

    con: object
    settings: Settings
    raw: bool = False
    fmt: str = "table"
    catalog_docs: dict = field(default_factory=dict)
    publication: int | None = None

    def run(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run ``sql`` (after the analyst guard unless raw); returns (column names, rows) of the last statement."""
        import duckdb

        from analyst.guard import check_analyst_statement

        if not self.raw:
            check_analyst_statement(self.con, sql)
        try:
            cur = self.con.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cols else []
        except duckdb.Error as exc:
            raise SqlShellError(str(exc)) from exc
        return cols, rows


def open_session(
    settings: Settings | None = None,
    *,
    snapshot: int | None = None,
    as_of: str | None = None,
    raw: bool = False,
    fmt: str = "table",
) -> Session:
    """Analyst mode: open an analyst-store publication, locked. Raw: the warehouse read-only with the views."""
    from analyst.catalog_docs import load_catalog

    s = settings or get_settings()
    if fmt not in FORMATS:
        raise SqlShellError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    docs = {v["name"]: v for v in load_catalog()["views"]}
    if raw:
        con = _open_raw(s, snapshot, as_of)
        publication = None
    else:
        from analyst.store import StoreError, open_store

        try:
            con, publication = open_store(s, snapshot=snapshot, as_of=as_of)
        except StoreError as exc:
            raise SqlShellError(str(exc)) from exc
    log.debug("sql session opened", raw=raw, snapshot=snapshot, as_of=as_of, publication=publication)
    return Session(con, s, raw=raw, fmt=fmt, catalog_docs=docs, publication=publication)


def _open_raw(s: Settings, snapshot: int | None, as_of: str | None):
    """The warehouse read-only (optionally as of a DuckLake snapshot) with the views installed, locked."""
    import duckdb

    from affectwatch.warehouse import connect
    from analyst.views import CATALOG, install_views

    try:
        con = connect(s, read_only=True, use=False, snapshot=snapshot, as_of=as_of)
    except (duckdb.Error, ValueError) as exc:
        raise SqlShellError(f"cannot attach the warehouse{_as_of_text(snapshot, as_of)}: {exc}") from exc
    try:
        install_views(con, s)
    except RuntimeError as exc:
        raise SqlShellError(f"{exc} (does the warehouse{_as_of_text(snapshot, as_of)} hold the migrated tables?)") from exc
    con.execute(f"use {CATALOG}")
    local = [p for p in (s.data_path, s.catalog.removeprefix("sqlite:")) if "://" not in p and not p.startswith("postgres:")]
    if len(local) == 2:  # remote storage needs external access
        dirs = sorted({str(Path(p).resolve().parent if not p.endswith("/") else Path(p).resolve()) + "/" for p in local})
        con.execute("set allowed_directories = ?", [dirs])
        con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    return con


def _as_of_text(snapshot, as_of) -> str:
    if snapshot is not None:
        return f" at snapshot {snapshot}"
    return f" as of {as_of}" if as_of else ""


# -- output ------------------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def render(cols: list[str], rows: list[tuple], fmt: str) -> str:
    """Format a result as an aligned text table, CSV (header + rows) or a JSON array of objects."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows([["" if v is None else _plain(v) for v in r] for r in rows])
        return buf.getvalue().rstrip("\n")
    if fmt == "json":
        return json.dumps([dict(zip(cols, (_plain(v) for v in r))) for r in rows], default=str, indent=None)
    if not cols:
        return "ok"
    cells = [["NULL" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(_plain(v))) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |", line]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in cells]
    out += [line, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"]
    return "\n".join(out)


# -- REPL --------------------------------------------------------------------------------------

def dot_command(session: Session, line: str) -> str | None:
    """Run a dot-command; returns its output, or None for .quit."""
    cmd, _, arg = line.strip().partition(" ")
    arg = arg.strip().rstrip(";")
    if cmd in (".quit", ".exit"):
        return None
    if cmd == ".help":
        return HELP
    if cmd == ".mode":
        if arg not in FORMATS:
            return f"error: .mode takes one of {', '.join(FORMATS)}"
        session.fmt = arg
        return f"output format: {arg}"
    if cmd in (".tables", ".views"):
        return _list_views(session, with_docs=cmd == ".views")
    if cmd == ".describe":
        return _describe(session, arg)
    if cmd == ".snapshots":
        if session.raw:
            sql = f"select snapshot_id, snapshot_time, changes from ducklake_snapshots('{session.settings.warehouse.alias}')"
        else:
            from analyst.store import PUBLICATIONS

            sql = f"select * from {PUBLICATIONS}"
        cur = session.con.execute(sql + " order by 1")
        return render([c[0] for c in cur.description], cur.fetchall(), session.fmt)
    return f"error: unknown command {cmd}; try .help"


def _list_views(session: Session, with_docs: bool) -> str:
    names = _queryable(session)
    if not with_docs:
        return "\n".join(names)
    rows = [(n, (session.catalog_docs.get(n, {}).get("description") or "").strip().split("\n")[0]) for n in names]
    return render(["view", "description"], rows, session.fmt)


def _queryable(session: Session) -> list[str]:
    from analyst.store import PUBLICATIONS
    from analyst.views import mart_names

    return mart_names() + ([] if session.raw else [PUBLICATIONS])


def _describe(session: Session, name: str) -> str:
    from analyst.views import CATALOG

    if name not in _queryable(session):
        return f"error: no analyst view named {name!r}; see .tables"
    doc = session.catalog_docs.get(name, {})
    columns = {c["name"]: c for c in doc.get("columns", [])}
    if doc.get("kind") == "macro":
        return f"{name}: {doc.get('description', '').strip()}"
    types = session.con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = ? and schema_name = 'main' "
        "and table_name = ? order by column_index", [CATALOG, name]).fetchall()
    rows = [(c, t, columns.get(c, {}).get("unit", ""), columns.get(c, {}).get("description", "")) for c, t in types]
    head = f"{name}: {(doc.get('description') or '').strip()}\ngrain: {doc.get('grain', '')}\n"
    return head + render(["column", "type", "unit", "description"], rows, session.fmt)


def statements(lines: Iterable[str]) -> Iterable[str]:
    """Group input lines into complete statements (ending with ';') and dot-commands."""
    buf: list[str] = []
    for line in lines:
        if not buf and line.strip().startswith("."):
            yield line.strip()
        elif line.strip() or buf:
            buf.append(line)
            if line.rstrip().endswith(";") and not line.lstrip().startswith("--"):  # a comment never ends one
                yield "\n".join(buf)
                buf = []
    if "".join(buf).strip():
        yield "\n".join(buf)


def repl(session: Session, lines: Iterable[str], out: TextIO) -> int:
    """Read-eval-print over ``lines``; returns the number of failed statements."""
    from analyst.guard import AnalystQueryError

    failures = 0
    for item in statements(lines):
        if item.startswith("."):
            text = dot_command(session, item)
            if text is None:
                break
            print(text, file=out)
            continue
        try:
            cols, rows = session.run(item)
            print(render(cols, rows, session.fmt), file=out)
        except (AnalystQueryError, SqlShellError) as exc:
            failures += 1
            print(f"error: {exc}", file=out)
    return failures


def _interactive_lines(history: Path) -> Iterable[str]:
    """Lines typed at a terminal, with readline editing and a persistent history file."""
    try:
        import readline
    except ImportError:  # pragma: no cover - not on Linux
        readline = None
    if readline is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
        try:
            readline.read_history_file(history)
        except (FileNotFoundError, OSError):
            pass
        readline.set_history_length(2000)
    prompt = PROMPT
    try:
        while True:
            try:
                line = input(prompt)
            except EOFError:
                print()
                return
            except KeyboardInterrupt:
                print("^C")
                prompt = PROMPT
                continue
            stripped = line.strip()
            if stripped.startswith(".") and prompt == PROMPT:
                prompt = PROMPT
            elif stripped:
                prompt = PROMPT if stripped.endswith(";") else CONTINUE
            yield line
    finally:
        if readline is not None:
            try:
                readline.write_history_file(history)
            except OSError:
                pass
