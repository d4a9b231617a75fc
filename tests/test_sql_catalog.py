"""The catalogue documents every view column with a unit, and the committed docs are current."""
from __future__ import annotations

import pytest

from analyst.catalog_docs import DOCS_FILE, example_headers, load_catalog, render_markdown, undocumented_columns
from analyst.views import VIEWS_DIR, install_views, view_files


@pytest.fixture(scope="module")
def views_con(populated_settings):
    from affectwatch.warehouse import connect

    con = connect(populated_settings, read_only=True)
    install_views(con, populated_settings)
    yield con
    con.close()


def test_every_view_column_is_documented(views_con):
    assert undocumented_columns(views_con) == {}


def test_catalogue_entries_match_sql_files():
    documented = [v["name"] for v in load_catalog()["views"]]
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(v.name for v in view_files())
    for v in load_catalog()["views"]:
        assert v["description"] and v["grain"] and v["layer"] in ("staging", "intermediate", "marts", "macros"), v["name"]
        for c in v["columns"]:
            assert set(c) == {"name", "unit", "description"} and c["unit"] and c["description"], (v["name"], c)


def test_committed_docs_are_up_to_date():
    assert DOCS_FILE.read_text() == render_markdown(), "run `affectwatch sql-docs` and commit docs/sql_catalog.md"


def test_sql_style_lower_case_keywords_and_final_cte():
    import re

    upper = re.compile(r"\b(SELECT|FROM|WHERE|GROUP BY|JOIN|WITH|AS|CASE|WHEN|ORDER BY)\b")
    for v in view_files():
        code = "\n".join(line.split("--")[0] for line in v.sql.splitlines())
        assert not upper.search(code), f"{v.path.name}: keywords are lower case"
        assert v.sql.lstrip().startswith("--"), f"{v.path.name}: starts with a comment saying what it is"
        if v.layer in ("marts", "intermediate", "macros"):
            assert re.search(r"\bfinal as \(", v.sql) and v.sql.rstrip().endswith("select * from final"), v.path.name
        if v.layer == "staging":
            assert " group by " not in code and " join " not in code, f"{v.path.name}: staging only renames and casts"


def test_every_example_has_a_question_and_reading_guide():
    headers = example_headers()
    assert len(headers) >= 12
    assert all(h["question"].endswith("?") or h["question"].endswith(".") for h in headers)
    assert all(len(h["how_to_read"]) > 40 for h in headers)


def test_views_dir_layout():
    assert {p.name for p in VIEWS_DIR.iterdir() if p.is_dir()} == {"staging", "intermediate", "marts", "macros"}
