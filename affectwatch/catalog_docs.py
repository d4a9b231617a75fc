"""Render ``sql/catalog.yaml`` (and the example headers) into ``docs/sql_catalog.md``.

``affectwatch sql-docs`` rewrites the page; ``affectwatch sql-docs --check`` fails when the
committed page is stale. ``undocumented_columns(con)`` compares the catalogue with the columns
DuckDB reports for the installed views (used by the tests).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from affectwatch.settings import REPO_ROOT

CATALOG_FILE = REPO_ROOT / "sql" / "catalog.yaml"
EXAMPLES_DIR = REPO_ROOT / "sql" / "examples"
DOCS_FILE = REPO_ROOT / "docs" / "sql_catalog.md"

GUIDE = """\
## Getting started

```bash
affectwatch sql                                   # interactive shell, warehouse read-only, views installed
affectwatch sql --query "select * from alerts_open" --format csv    # one query, for scripts (csv|json|table)
affectwatch sql --file sql/examples/02_forecast_coverage_by_state.sql
```

In the shell, statements end with `;`; `.views` lists the views with a one-line description,
`.describe affect_region_week` shows columns with units, `.snapshots` lists warehouse snapshots,
`.mode csv` switches the output, `.help` and `.quit`. History is kept in `<data_dir>/sql_history`.
No warehouse yet? `make demo` fills one; or `AFFECTWATCH_DATA_DIR=/tmp/aw affectwatch sql-fixture`
builds the test fixture there (real FluSight/ILINet symptom data, SIMULATED affect, forecasts,
alerts) and `AFFECTWATCH_DATA_DIR=/tmp/aw affectwatch sql` opens it; the examples below were
written against it.

The session is an *analyst* session: the warehouse is attached `READ_ONLY`, only `select`-type
statements run (`describe`, `summarize`, `show` included), and only the views below are
readable - the raw tables (`wh.*`) and the device-level staging models are refused, as are file
readers (`read_parquet`, `read_csv`, ...). Pipeline engineers can pass `--raw` to read the raw
tables (still read-only). From Python, `affectwatch.views.install_views(con)` installs the same
views into any connection from `affectwatch.warehouse.connect(...)`; they are then
`analyst.<view>`.

## Privacy: small-cell suppression

Affect marts never show device-level rows. A region-period cell with fewer than `k_min`
(setting `privacy.k_min`, default 11) *scored* observations - the observations behind the
means - or fewer than `privacy.min_devices` (default 3) devices keeps its counts but gets
`suppression` 1 or 2 and NULL affect values. Code 3 marks periods without any window, so a
missing value is never silent. The thresholds come from the settings and reach the SQL through
the table `analyst.staging.privacy_params` (bound parameters), not string formatting.

## Time travel: "what did we know on date X?"

Two kinds of as-of questions:

1. *Which value had been reported by time T?* Symptom reports keep every revision:
   `symptoms_as_reported` lists them, and the table macro `symptoms_known_at(T)` returns the
   latest revision reported by `T` (example 05).
2. *What did the whole warehouse look like at snapshot N / time T?* Every committed write is a
   DuckLake snapshot. `affectwatch sql --snapshot N` or `--as-of "2023-07-01 00:00:00+00"`
   attaches the warehouse as of then (read-only) and installs the same views on top, so every
   view and example answers as of that moment; list snapshots with `.snapshots` or example 14.
   From Python: `connect(settings, snapshot=N)` or `connect(settings, as_of="...")`, then
   `install_views(con, settings)`. A single raw table can also be read with
   `select ... from wh.symptom_reports at (version => N)` in a `--raw` session.

Snapshots disappear when `affectwatch warehouse compact --expire-older-than ...` expires them.
"""


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_catalog(path: Path = CATALOG_FILE) -> dict:
    """The parsed catalogue (cached until the file changes)."""
    return _load(str(path), path.stat().st_mtime)


def example_headers(examples_dir: Path = EXAMPLES_DIR) -> list[dict]:
    """Question and how-to-read text from the header comment of every example file."""
    out = []
    for path in sorted(examples_dir.glob("*.sql")):
        header = []
        for line in path.read_text().splitlines():
            if not line.startswith("--"):
                break
            header.append(line[2:].strip())
        text = " ".join(header)
        m = re.match(r"Question:\s*(.*?)\s*How to read:\s*(.*)", text)
        if not m:
            raise ValueError(f"{path.name}: header must have 'Question:' and 'How to read:' comment lines")
        out.append({"file": path.name, "question": m.group(1), "how_to_read": m.group(2)})
    return out


def _cell(text) -> str:
    return " ".join(str(text if text is not None else "").split()).replace("|", "\\|")


def render_markdown(catalog: dict | None = None) -> str:
    """The Markdown page: guide, view index, per-view column tables and the example questions."""
    cat = catalog or load_catalog()
    views = cat["views"]
    marts = [v for v in views if v["layer"] in ("marts", "macros")]
    internal = [v for v in views if v["layer"] not in ("marts", "macros")]
    lines = [
        f"# {cat['title']}",
        "",
        "<!-- Generated from sql/catalog.yaml and sql/examples by `affectwatch sql-docs`; do not edit. -->",
        "",
        cat["intro"].strip(),
        "",
        GUIDE.rstrip(),
        "",
        "## Analyst views",
        "",
        "| view | grain | description |",
        "|---|---|---|",
    ]
    lines += [f"| [`{v['name']}`](#{v['name']}) | {_cell(v['grain'])} | {_cell(v['description'])} |" for v in marts]
    for v in marts:
        lines += _view_section(v)
    lines += ["", "## Internal models (pipeline only)", "",
              "Staging views only rename and cast the raw tables; `int_*` models pre-aggregate. They hold "
              "device-level rows and are not readable from an analyst session."]
    for v in internal:
        lines += _view_section(v)
    lines += ["", "## Example questions (`sql/examples`)", "",
              "Run one with `affectwatch sql --file sql/examples/<file>`.", ""]
    for ex in example_headers():
        lines += [f"- **{ex['file']}** - {ex['question']}  ", f"  *How to read:* {ex['how_to_read']}"]
    return "\n".join(lines) + "\n"


def _view_section(v: dict) -> list[str]:
    lines = ["", f"### {v['name']}", "", _cell(v["description"]), "", f"*Grain:* {_cell(v['grain'])}  ",
             f"*Layer:* {v['layer']}  ", f"*SQL:* `sql/views/{v['layer']}/{v['name']}.sql`", "",
             "| column | unit | description |", "|---|---|---|"]
    return lines + [f"| `{c['name']}` | {_cell(c['unit'])} | {_cell(c['description'])} |" for c in v["columns"]]


def write_docs(path: Path = DOCS_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown())
    return path


def docs_up_to_date(path: Path = DOCS_FILE) -> bool:
    return path.exists() and path.read_text() == render_markdown()


def undocumented_columns(con, catalog: dict | None = None) -> dict[str, list[str]]:
    """Per view: columns DuckDB reports but the catalogue lacks, or the catalogue lists but the view lacks.

    Missing entries are reported as ``name``, stale ones as ``-name``; a view missing from the
    catalogue is reported with all its columns.
    """
    from affectwatch.views import CATALOG, view_files

    cat = catalog or load_catalog()
    documented = {v["name"]: [c["name"] for c in v["columns"]] for v in cat["views"]}
    problems: dict[str, list[str]] = {}
    for view in view_files():
        if view.layer == "macros":
            actual = [d[0] for d in con.execute(
                f"select * from {CATALOG}.main.{view.name}(" + ", ".join("null" for _ in view.macro_params) + ") limit 0"
            ).description]
        else:
            actual = [r[0] for r in con.execute(
                "select column_name from duckdb_columns() where database_name = ? and schema_name = ? "
                "and table_name = ? order by column_index", [CATALOG, view.schema, view.name]).fetchall()]
        doc = documented.get(view.name, [])
        diff = [c for c in actual if c not in doc] + [f"-{c}" for c in doc if c not in actual]
        if diff:
            problems[view.name] = diff
    return problems
