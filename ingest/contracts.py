"""Record contracts, declared once: AffectWindow v1 and SymptomReport v1 (see DESIGN.md).

The JSON Schema for device makers (``schemas/*.schema.json``), the warehouse DDL
(``sql/migrations/001_core.sql``) and the simulator all follow from, or are checked against,
these declarations. Structural rules (types, ranges, unknown fields) live in the type
annotations; rules that need context (k_min, clock skew, window length) live in
``ingest/validate.py``.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

SiteType = Literal["ed", "clinic", "school", "transit", "other"]
Modality = Literal["face", "voice", "multimodal"]

UnitInterval = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
SignedUnit = Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0.0)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
# Identifier patterns are ASCII-only ([0-9], never \d: "٠٦" is not a FIPS code) and exact: msgspec and
# Python's jsonschema use re.search, where "$" also matches before a trailing newline, so every pattern
# ends with "$(?!\n)" (the lookahead is a no-op for ECMA-262 validators, where "$" is the end already).
_END = r"$(?!\n)"
_REGION_FORMS = "[0-9]{2}|[0-9]{5}|8[0-9a-f]{14}"  # state FIPS, county FIPS, H3 cell
REGION_PATTERN = rf"^(?:{_REGION_FORMS}){_END}"
SYMPTOM_REGION_PATTERN = rf"^(?:US|{_REGION_FORMS}){_END}"  # symptom series may also be national
DeviceId = Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=rf"^[A-Za-z0-9_-]+{_END}")]
RegionId = Annotated[str, msgspec.Meta(min_length=2, max_length=15, pattern=REGION_PATTERN,
                                       description="2-digit state FIPS, 5-digit county FIPS or H3 cell (res <= 7)")]
SymptomRegionId = Annotated[str, msgspec.Meta(min_length=2, max_length=15, pattern=SYMPTOM_REGION_PATTERN,
                                              description="'US', state/county FIPS or H3 cell (res <= 7)")]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# RFC 3339 requires an offset: naive timestamps are rejected (DESIGN.md: "RFC 3339 UTC").
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]

REGION_RE = re.compile(REGION_PATTERN)


class Quality(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Optional capture-quality indicators reported by the device."""

    pose_stability: UnitInterval | None = None
    lighting: UnitInterval | None = None
    snr_db: float | None = None


class AffectWindow(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One device, one time window of anonymized affect aggregates."""

    schema_version: Literal[1]
    device_id: DeviceId
    region_id: RegionId
    site_type: SiteType
    window_start: Timestamp
    window_end: Timestamp
    n_observations: Annotated[int, msgspec.Meta(ge=0, description=(
        "Observations the on-device model scored; abstentions are excluded (they are counted in n_abstained). "
        "Must be >= k_min (default 11)."))]
    n_abstained: Annotated[int, msgspec.Meta(ge=0, description=(
        "Further observations the on-device model refused to score (low confidence); not part of n_observations."))]
    valence_mean: SignedUnit
    arousal_mean: SignedUnit
    valence_sd: NonNegFloat
    arousal_sd: NonNegFloat
    distress_share: UnitInterval
    confidence_mean: UnitInterval
    modality: Modality
    model_version: ShortText
    quality: Quality = msgspec.field(default_factory=Quality)
    dp_epsilon: Annotated[float, msgspec.Meta(gt=0.0)] | None = None


class SymptomReport(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Syndromic count for one region, syndrome and period (a day or an MMWR week)."""

    schema_version: Literal[1]
    region_id: SymptomRegionId
    syndrome: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=rf"^[a-z0-9_]+{_END}")]
    period_start: date
    period_end: date
    count: NonNegInt
    source: ShortText
    reported_at: Timestamp
    denominator: NonNegInt | None = None


# Columns of the raw tables that come from the contract (the rest is ingest metadata).
AFFECT_COLUMNS: dict[str, str] = {
    "device_id": "VARCHAR",
    "region_id": "VARCHAR",
    "site_type": "VARCHAR",
    "window_start": "TIMESTAMP WITH TIME ZONE",
    "window_end": "TIMESTAMP WITH TIME ZONE",
    "n_observations": "INTEGER",
    "n_abstained": "INTEGER",
    "valence_mean": "DOUBLE",
    "arousal_mean": "DOUBLE",
    "valence_sd": "DOUBLE",
    "arousal_sd": "DOUBLE",
    "distress_share": "DOUBLE",
    "confidence_mean": "DOUBLE",
    "quality_pose_stability": "DOUBLE",
    "quality_lighting": "DOUBLE",
    "quality_snr_db": "DOUBLE",
    "modality": "VARCHAR",
    "model_version": "VARCHAR",
    "dp_epsilon": "DOUBLE",
    "schema_version": "INTEGER",
}
SYMPTOM_COLUMNS: dict[str, str] = {
    "region_id": "VARCHAR",
    "syndrome": "VARCHAR",
    "period_start": "DATE",
    "period_end": "DATE",
    "count": "BIGINT",
    "denominator": "BIGINT",
    "source": "VARCHAR",
    "reported_at": "TIMESTAMP WITH TIME ZONE",
    "schema_version": "INTEGER",
}


def json_schemas() -> dict[str, dict]:
    """JSON Schemas generated from the declarations (committed under ``schemas/``)."""
    return {
        "affect_window.v1": msgspec.json.schema(AffectWindow),
        "symptom_report.v1": msgspec.json.schema(SymptomReport),
    }
