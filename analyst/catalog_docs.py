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
affectwatch sql                                   # interactive shell on the analyst store (latest publication)
affectwatch sql --query "select * from alerts_open" --format csv    # one query, for scripts (csv|json|table)
affectwatch sql --file sql/examples/02_forecast_coverage_by_state.sql
affectwatch analyst refresh                       # publish the marts now (the scheduler does it hourly)
```

In the shell, statements end with `;`; `.views` lists the views with a one-line description,
`.describe affect_region_week` shows columns with units, `.snapshots` lists the publications,
`.mode csv` switches the output, `.help` and `.quit`. History is kept in `<data_dir>/sql_history`.
No warehouse yet? `make demo` fills one and publishes its analyst store; or
`AFFECTWATCH_DATA_DIR=/tmp/aw affectwatch sql-fixture` builds the test fixture there (real
FluSight/ILINet symptom data, SIMULATED affect, forecasts, alerts) and publishes it, and
`AFFECTWATCH_DATA_DIR=/tmp/aw affectwatch sql` opens it; the examples below were written against it.

## The analyst store: what a session can and cannot do

`affectwatch sql` never opens the warehouse. `affectwatch analyst refresh` (run by the
scheduler job `analyst-refresh`, setting `analyst.refresh_cron`, hourly by default, and by the
demo) materialises the marts and macros below into a new DuckDB file, a *publication*, under
`<data_dir>/analyst/` (setting `analyst.store_dir`). Staging models, the privacy parameters and
raw tables are not in it. A session opens one publication as its only database, read-only, with
`enable_external_access = false` and `lock_configuration = true` from start-up: no statement can
read or write a file or URL (`read_parquet`, `'x.parquet'`, `COPY`, `EXPORT`), attach a database,
install or load an extension, or change a setting. A statement guard also refuses anything but
reads of the views, with a message saying why. Pipeline engineers with access to the warehouse
files can still pass `--raw` for a read-only session on the raw tables.

## Privacy: small-cell suppression

Affect marts never show device-level rows. A region-period cell with fewer than `k_min`
(setting `privacy.k_min`, default 11) *scored* observations - the observations behind the
means - or fewer than `privacy.min_devices` (default 3) devices keeps its counts but gets
`suppression` 1 or 2 and NULL affect values. Code 3 marks periods without any window, so a
missing value is never silent. The thresholds come from the settings and reach the SQL through
the table `analyst.staging.privacy_params` (bound parameters), not string formatting.

Freshness and differencing: an affect cell is published only once its period is closed - period
end plus `analyst.grace_hours` (default 72 h, for late windows) before the refresh - so the
current day and week are not in the store yet. Once published, a visible cell changes only when
the change is itself above the minimums (at least `k_min` scored observations and `min_devices`
devices more); smaller late changes are held, so two publications never differ by a small cell.
Other marts (symptoms, forecasts, alerts, feed health) are published as they are at each refresh.

## Time travel: "what did we know on date X?"

Two kinds of as-of questions:

1. *Which value had been reported by time T?* Symptom reports keep every revision:
   `symptoms_as_reported` lists them, and the table macro `symptoms_known_at(T)` returns the
   latest revision reported by `T` (example 05).
2. *What did analysts see at publication N / time T?* Every refresh that changed something is a
   publication; the table `publications` lists them (id, time, warehouse snapshot, cells held,
   cells not yet published). `affectwatch sql --snapshot N` opens publication N and
   `--as-of "2023-07-01 00:00:00+00"` the publication in force then, so every view and example
   answers as of that moment (example 14). `affectwatch analyst refresh --warehouse-snapshot N`
   publishes the warehouse as of DuckLake snapshot N (e.g. to rebuild history).

Old publications are deleted beyond `analyst.keep_publications` (default 200).
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
    lines += ["", "### publications", "",
              "One row per analyst-store publication, up to the one open (see *Time travel*).", "",
              "*Grain:* one row per publication  ", "*SQL:* written by `affectwatch analyst refresh`", "",
              "| column | unit | description |", "|---|---|---|",
              "| `publication_id` | id | Publication number (`--snapshot`). |",
              "| `published_at` | timestamptz | When the refresh ran (`--as-of` picks the latest at or before). |",
              "| `warehouse_snapshot` | id | DuckLake snapshot of the warehouse it was published from. |",
              "| `periods_closed_before` | timestamptz | Affect cells whose period ended (plus grace) before this are published. |",
              "| `cells_held` | count | Published cells kept unchanged because the change was below the minimums. |",
              "| `cells_not_yet_published` | count | Affect cells of periods still open or in the grace period. |"]
    lines += ["", "## Internal models (pipeline only)", "",
              "Staging views only rename and cast the raw tables; `int_*` models pre-aggregate. They hold "
              "device-level rows and are never published to the analyst store."]
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
    from analyst.views import CATALOG, view_files

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
