"""The record contracts are declared once (ingest/contracts.py); the committed JSON Schemas and the
warehouse DDL must agree with that declaration."""
from __future__ import annotations

import importlib.util
import json
from datetime import date, datetime, timezone

import jsonschema
import msgspec
import pytest

from affectwatch.settings import REPO_ROOT
from ingest import contracts

AFFECT_METADATA = {"simulated", "kafka_topic", "kafka_partition", "kafka_offset", "produced_at", "ingested_at"}
SYMPTOM_METADATA = {"origin", "kafka_partition", "kafka_offset", "ingested_at"}


def _gen_schemas_module():
    spec = importlib.util.spec_from_file_location("gen_schemas", REPO_ROOT / "scripts" / "gen_schemas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _schema(name: str) -> dict:
    return json.loads((REPO_ROOT / "schemas" / f"{name}.schema.json").read_text())


def _describe(con, table: str) -> dict[str, tuple[str, bool]]:
    rows = con.execute(f"describe {table}").fetchall()
    return {r[0]: (r[1], r[2] == "YES") for r in rows}


def _valid_window() -> dict:
    return {
        "schema_version": 1, "device_id": "a1b2c3d4e5f60718", "region_id": "06", "site_type": "ed",
        "window_start": "2023-01-07T10:00:00Z", "window_end": "2023-01-07T11:00:00Z",
        "n_observations": 25, "n_abstained": 3, "valence_mean": -0.1, "arousal_mean": 0.2,
        "valence_sd": 0.3, "arousal_sd": 0.25, "distress_share": 0.2, "confidence_mean": 0.8,
        "quality": {"lighting": 0.9, "pose_stability": 0.7}, "modality": "face",
        "model_version": "v1.3", "dp_epsilon": None,
    }


def test_committed_schemas_equal_generated():
    mod = _gen_schemas_module()
    assert mod.stale() == [], "schemas/ is out of date: run .venv/bin/python scripts/gen_schemas.py"
    assert {p.name for p in mod.rendered()} == {"affect_window.v1.schema.json", "symptom_report.v1.schema.json"}


def test_json_schema_accepts_valid_and_rejects_unknown_fields():
    schema = _schema("affect_window.v1")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(_valid_window(), schema)
    bad = _valid_window() | {"face_embedding": [0.1, 0.2]}
    with pytest.raises(jsonschema.ValidationError, match="face_embedding"):
        jsonschema.validate(bad, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_valid_window() | {"valence_mean": 1.5}, schema)
    report = {"schema_version": 1, "region_id": "06", "syndrome": "ili", "period_start": "2023-01-01",
              "period_end": "2023-01-07", "count": 12, "source": "essence", "reported_at": "2023-01-10T00:00:00Z"}
    jsonschema.validate(report, _schema("symptom_report.v1"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report | {"count": -1}, _schema("symptom_report.v1"))


def test_msgspec_contract_matches_design_rules():
    w = msgspec.json.decode(msgspec.json.encode(_valid_window()), type=contracts.AffectWindow)
    assert w.window_start == datetime(2023, 1, 7, 10, tzinfo=timezone.utc)
    with pytest.raises(msgspec.ValidationError, match="timezone"):  # RFC 3339 needs an offset
        msgspec.convert(_valid_window() | {"window_start": "2023-01-07T10:00:00"}, contracts.AffectWindow)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert(_valid_window() | {"name": "x"}, contracts.AffectWindow)
    with pytest.raises(msgspec.ValidationError, match="device_id"):
        msgspec.convert(_valid_window() | {"device_id": "short"}, contracts.AffectWindow)


def _column_names(struct_type) -> dict[str, object]:
    """Contract field -> its type info, with nested quality.* flattened to quality_<name>."""
    out = {}
    for f in msgspec.inspect.type_info(struct_type).fields:
        if isinstance(f.type, msgspec.inspect.StructType):
            for sub in f.type.fields:
                out[f"{f.name}_{sub.name}"] = (sub.type, True)
        else:
            out[f.name] = (f.type, not f.required)
    return out


def _sql_type_for(t) -> set[str]:
    if isinstance(t, msgspec.inspect.UnionType):
        (t,) = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
    if isinstance(t, msgspec.inspect.Metadata):
        t = t.type
    if isinstance(t, msgspec.inspect.LiteralType):
        return {"INTEGER"} if all(isinstance(v, int) for v in t.values) else {"VARCHAR"}
    return {
        msgspec.inspect.IntType: {"INTEGER", "BIGINT"},
        msgspec.inspect.FloatType: {"DOUBLE"},
        msgspec.inspect.StrType: {"VARCHAR"},
        msgspec.inspect.DateTimeType: {"TIMESTAMP WITH TIME ZONE"},
        msgspec.inspect.DateType: {"DATE"},
    }[type(t)]


@pytest.mark.parametrize(
    "table,struct,columns,metadata",
    [
        ("affect_windows", contracts.AffectWindow, contracts.AFFECT_COLUMNS, AFFECT_METADATA),
        ("symptom_reports", contracts.SymptomReport, contracts.SYMPTOM_COLUMNS, SYMPTOM_METADATA),
    ],
)
def test_ddl_matches_contract(warehouse, table, struct, columns, metadata):
    ddl = _describe(warehouse, table)
    # 1. every contract column exists in the DDL with the declared type
    mismatched = {c: (t, ddl.get(c, ("<missing>",))[0]) for c, t in columns.items() if ddl.get(c, (None,))[0] != t}
    assert not mismatched, f"{table}: contract type vs DDL type differ: {mismatched}"
    # 2. the DDL holds nothing but contract columns and known ingest metadata
    assert set(ddl) - set(columns) == metadata
    # 3. every field of the msgspec declaration maps to a column of the same kind, and back
    fields = _column_names(struct)
    assert set(fields) == set(columns), f"fields without column: {set(fields) - set(columns)}; columns without field: {set(columns) - set(fields)}"
    for name, (ftype, optional) in fields.items():
        assert columns[name] in _sql_type_for(ftype), f"{table}.{name}: {columns[name]} cannot hold {ftype}"
        assert ddl[name][1] == optional, f"{table}.{name}: nullable={ddl[name][1]} but contract optional={optional}"


def test_contract_round_trips_into_warehouse_columns(warehouse):
    """A decoded record flattens into exactly the contract columns and inserts into the raw table."""
    w = msgspec.convert(_valid_window(), contracts.AffectWindow)
    row = {k: v for k, v in msgspec.structs.asdict(w).items() if k != "quality"}
    row |= {f"quality_{k}": getattr(w.quality, k) for k in msgspec.structs.asdict(w.quality)}
    assert set(row) == set(contracts.AFFECT_COLUMNS)
    cols = list(contracts.AFFECT_COLUMNS) + ["simulated", "ingested_at"]
    warehouse.execute(
        f"insert into affect_windows ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
        [row[c] for c in contracts.AFFECT_COLUMNS] + [True, datetime.now(timezone.utc)],
    )
    got = warehouse.execute("select region_id, quality_lighting, quality_snr_db, window_start from affect_windows").fetchone()
    assert got[:3] == ("06", 0.9, None)
    assert got[3].astimezone(timezone.utc) == datetime(2023, 1, 7, 10, tzinfo=timezone.utc)
    assert date(2023, 1, 7) == got[3].astimezone(timezone.utc).date()


@pytest.mark.parametrize("field,value", [
    ("region_id", "06\n"), ("region_id", "٠٦"), ("region_id", "06 "), ("region_id", "US"),
    ("device_id", "a1b2c3d4e5f60718\n"), ("device_id", "a1b2c3d4e5f6071é"),
])
def test_json_schema_identifiers_are_exact_and_ascii(field, value):
    """The committed schemas reject what the worker rejects, in Python's re.search-based validators too."""
    schema = _schema("affect_window.v1")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_valid_window() | {field: value}, schema)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(_valid_window() | {field: value}, contracts.AffectWindow)


def test_symptom_schema_allows_national_region_only_there():
    report = {"schema_version": 1, "region_id": "US", "syndrome": "ili", "period_start": "2023-01-01",
              "period_end": "2023-01-07", "count": 12, "source": "essence", "reported_at": "2023-01-10T00:00:00Z"}
    jsonschema.validate(report, _schema("symptom_report.v1"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report | {"region_id": "US\n"}, _schema("symptom_report.v1"))


def test_schema_documents_that_abstentions_are_not_observations():
    props = _schema("affect_window.v1")["$defs"]["AffectWindow"]["properties"]
    assert "abstentions are excluded" in props["n_observations"]["description"]
    assert "not part of n_observations" in props["n_abstained"]["description"]
