#!/usr/bin/env python
"""Regenerate the committed JSON Schemas in ``schemas/`` from the record contracts.

The contracts are declared once in ``ingest/contracts.py``; device makers validate against the
files written here. ``--check`` exits 1 (and names the stale files) instead of writing.

    .venv/bin/python scripts/gen_schemas.py          # rewrite schemas/*.schema.json
    .venv/bin/python scripts/gen_schemas.py --check  # fail if they are out of date
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = REPO_ROOT / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def rendered() -> dict[Path, str]:
    """File path -> exact text of every schema file, generated from ``contracts.json_schemas()``."""
    sys.path.insert(0, str(REPO_ROOT))
    from ingest import contracts

    out = {}
    for name, schema in contracts.json_schemas().items():
        doc = {"$schema": DIALECT, "$id": f"https://affectwatch.local/schemas/{name}.schema.json", **schema}
        out[SCHEMA_DIR / f"{name}.schema.json"] = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return out


def stale() -> list[Path]:
    """Schema files whose committed text differs from the generated text (or that are missing)."""
    return [p for p, text in rendered().items() if not p.exists() or p.read_text() != text]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = stale()
        for p in bad:
            print(f"out of date: {p.relative_to(REPO_ROOT)} (run scripts/gen_schemas.py)")
        return 1 if bad else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for p, text in rendered().items():
        p.write_text(text)
        print(f"wrote {p.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
