"""Decode and validate raw Kafka payloads into AffectWindow / SymptomReport records.

Structural rules (types, ranges, unknown fields) come from the msgspec declarations in
``ingest.contracts``; the rules that need context (k_min, clock skew, window length, region
format) are checked here. Every failure maps to one named ``Reason`` plus a human-readable
detail naming the field and value, so that the dead-letter table can be queried by reason.
"""
from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

import msgspec

from affectwatch.settings import Settings, get_settings
from ingest.contracts import REGION_RE, AffectWindow, SymptomReport

UTC = timezone.utc
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_H3_RESOLUTION = 7
NATIONAL_REGION = "US"  # symptom series may be national (FluSight 'US')


class Reason(StrEnum):
    """Machine-readable rejection reasons (the `reason` column of `dead_letters`)."""

    EMPTY_PAYLOAD = "empty_payload"
    OVERSIZED_PAYLOAD = "oversized_payload"
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    NON_UTC_TIMESTAMP = "non_utc_timestamp"
    BAD_REGION_ID = "bad_region_id"
    BELOW_K_ANONYMITY = "below_k_anonymity"
    WINDOW_END_BEFORE_START = "window_end_before_start"
    WINDOW_TOO_SHORT = "window_too_short"
    WINDOW_TOO_LONG = "window_too_long"
    FUTURE_WINDOW = "future_window"
    PERIOD_END_BEFORE_START = "period_end_before_start"
    PERIOD_TOO_LONG = "period_too_long"
    FUTURE_PERIOD = "future_period"
    FUTURE_REPORT = "future_report"
    COUNT_EXCEEDS_DENOMINATOR = "count_exceeds_denominator"
    INVALID_UTF8 = "invalid_utf8"
    TOO_DEEPLY_NESTED = "too_deeply_nested"
    DUPLICATE_FIELD = "duplicate_field"
    UNCLASSIFIED = "unclassified"  # a record-level failure nobody foresaw: the detail holds the exception


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
MAX_PERIOD_DAYS = 7  # a day or an MMWR week


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str


_PATH_RE = re.compile(r" - at `\$\.?([^`]*)`$")


def classify_msgspec_error(message: str) -> Reason:
    """Map a msgspec error message to a named reason."""
    m = _PATH_RE.search(message)
    path = m.group(1) if m else ""
    if message.startswith("Object contains unknown field"):
        return Reason.UNKNOWN_FIELD
    if message.startswith("Object missing required field"):
        return Reason.MISSING_FIELD
    if "timezone component" in message:
        return Reason.NON_UTC_TIMESTAMP
    if message.startswith("Expected `object`") and path == "":
        return Reason.NOT_AN_OBJECT
    if path == "schema_version":
        return Reason.UNSUPPORTED_SCHEMA_VERSION if message.startswith("Invalid enum value") else Reason.WRONG_TYPE
    if message.startswith("Expected `") and ", got `" in message:
        return Reason.WRONG_TYPE
    if message.startswith(("Invalid RFC3339", "Invalid date", "Invalid datetime")):
        return Reason.WRONG_TYPE
    if path == "region_id":
        return Reason.BAD_REGION_ID
    if message.startswith(("Invalid enum value", "Expected `", "Number out of range", "Integer value out of range")):
        return Reason.VALUE_OUT_OF_RANGE
    return Reason.WRONG_TYPE


def unclassified(exc: BaseException) -> Rejection:
    """A record-level failure with no named reason: keep the exception text for the operator."""
    return Rejection(Reason.UNCLASSIFIED, f"{type(exc).__name__}: {exc}"[:300])


def _decode_failure(raw: bytes, exc: Exception) -> Rejection:
    """Name the reason a payload did not decode (the slow path: only rejected payloads get here)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Rejection(Reason.INVALID_UTF8, f"not UTF-8: {bad.reason} at byte {bad.start}")
    if isinstance(exc, RecursionError):
        return Rejection(Reason.TOO_DEEPLY_NESTED, f"nesting deeper than the decoder allows ({len(raw)} bytes)")
    if not isinstance(exc, msgspec.ValidationError):  # (ValidationError subclasses DecodeError)
        return Rejection(Reason.BAD_JSON, str(exc)[:300])
    msg = str(exc)
    # msgspec validates while it parses: a truncated or malformed document can fail on a
    # field type before the syntax error is reached. Only well-formed JSON gets a field reason.
    try:
        msgspec.json.decode(raw)
    except RecursionError:  # e.g. {"quality": [[[[...]]]]}: the struct failed first, the document is too deep
        return Rejection(Reason.TOO_DEEPLY_NESTED, f"nesting deeper than the decoder allows ({len(raw)} bytes)")
    except msgspec.DecodeError as syntax:
        if not str(syntax).startswith("Number out of range"):  # 1e999 is well-formed but out of range
            return Rejection(Reason.BAD_JSON, str(syntax)[:300])
    return Rejection(classify_msgspec_error(msg), msg[:300])


class _Duplicate(Exception):
    pass


def _reject_duplicates(pairs: list) -> dict:
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise _Duplicate(k)
        seen.add(k)
    return dict(pairs)


def _duplicate_key_slow(raw: bytes) -> str | None:
    """Exact: re-parse with the stdlib, naming the first key that occurs twice in one object."""
    try:
        json.loads(raw, object_pairs_hook=_reject_duplicates)
    except _Duplicate as dup:
        return f"key {str(dup.args[0])[:64]!r} occurs twice in one object; the record is ambiguous"
    except (ValueError, RecursionError):  # msgspec accepted it; nothing more to learn here
        return None
    return None


class _Shape:
    """Token counts every well-formed record of one contract has, for the fast duplicate-key check.

    msgspec (like most JSON parsers) silently keeps the last of duplicate keys. Without escapes, a
    document's '"' characters are exactly 2 x (keys + string values), and a record that decoded into
    the contract has a fixed number of string values (its required str/date/enum-of-str fields; no
    optional field is a string) and all its required keys: so the quote count gives the number of
    optional keys including repeats. Without repeats that equals the number of optional key names
    that occur quoted in the bytes (exact: without escapes no string value holds a quote, and a
    free-text value spelling an optional key's name takes the slow path). Otherwise, and for escaped
    documents, the stdlib re-parse names the repeated key.
    """

    def __init__(self, struct_type) -> None:
        from msgspec import inspect as mi

        self.required = 0
        strings = 0
        self.optional: list[tuple[bytes, str, str | None]] = []  # (quoted name, attribute, parent attribute)
        free_text: list[str] = []
        for f in mi.type_info(struct_type).fields:
            t = f.type
            if isinstance(t, mi.UnionType):
                (t,) = [x for x in t.types if not isinstance(x, mi.NoneType)]
            base = t.type if isinstance(t, mi.Metadata) else t
            is_str = isinstance(base, (mi.StrType, mi.DateTimeType, mi.DateType)) or (
                isinstance(base, mi.LiteralType) and all(isinstance(v, str) for v in base.values))
            if f.required:
                self.required += 1
                strings += is_str
                if isinstance(base, mi.StrType):  # a value that could spell an optional key's name
                    free_text.append(f.name)
                continue
            assert not is_str, f"{f.name}: an optional string field needs another duplicate check"
            self.optional.append((f'"{f.name}"'.encode(), f.name, None))
            if isinstance(base, mi.StructType):  # nested object: all its keys are optional here
                for sub in base.fields:
                    assert not sub.required, f"{f.name}.{sub.name}: nested required fields are not counted"
                    self.optional.append((f'"{sub.name}"'.encode(), sub.name, f.name))
        self.optional_quoted = tuple(quoted for quoted, _, _ in self.optional)
        self.optional_names = frozenset(name for _, name, _ in self.optional)
        self.free_text = operator.attrgetter(*free_text)  # -> tuple of the values (>= 2 fields per contract)
        self.quotes_base = 2 * strings

    def duplicate_key(self, raw: bytes, obj) -> str | None:
        if b"\\" not in raw:  # the hot path: a handful of C calls, no Python loop per key
            extra = (raw.count(b'"') - self.quotes_base) // 2 - self.required  # optional keys, repeats included
            if extra == 0:
                return None
            if (0 < extra <= len(self.optional_quoted)
                    and sum(map(raw.__contains__, self.optional_quoted)) == extra
                    and self.optional_names.isdisjoint(self.free_text(obj))):
                return None
        return _duplicate_key_slow(raw)


def _region_ok(region: str) -> bool:
    if not REGION_RE.match(region):
        return False
    if len(region) == 15:  # H3 cell: valid index of resolution <= 7
        import h3

        return h3.is_valid_cell(region) and h3.get_resolution(region) <= MAX_H3_RESOLUTION
    return True


def _utc(dt: datetime) -> bool:
    return dt.tzinfo is UTC or dt.utcoffset() == timedelta(0)


_AFFECT_SHAPE = _Shape(AffectWindow)
_SYMPTOM_SHAPE = _Shape(SymptomReport)


class Validator:
    """Validates payloads for one batch; ``now`` is fixed per batch (call ``refresh()`` per batch)."""

    def __init__(self, settings: Settings | None = None, now: datetime | None = None) -> None:
        s = settings or get_settings()
        self.k_min = s.privacy.k_min
        self.max_bytes = s.kafka.max_message_bytes
        self.min_window = timedelta(seconds=s.privacy.min_window_seconds)
        self.max_window = timedelta(seconds=s.privacy.max_window_seconds)
        self.skew = timedelta(seconds=s.privacy.clock_skew_seconds)
        self._affect = msgspec.json.Decoder(AffectWindow)
        self._symptom = msgspec.json.Decoder(SymptomReport)
        self._shapes = {self._affect: _AFFECT_SHAPE, self._symptom: _SYMPTOM_SHAPE}
        self._fixed_now = now
        self.refresh()

    def refresh(self, now: datetime | None = None) -> None:
        self.now = now or self._fixed_now or datetime.now(UTC)
        self.latest_end = self.now + self.skew
        self.today = self.now.date()

    # -- shared ------------------------------------------------------------------------------
    def _decode(self, decoder: msgspec.json.Decoder, raw: bytes | None):
        if not raw:
            return Rejection(Reason.EMPTY_PAYLOAD, "message value is empty or null")
        if len(raw) > self.max_bytes:
            return Rejection(Reason.OVERSIZED_PAYLOAD, f"{len(raw)} bytes > max_message_bytes={self.max_bytes}")
        try:
            obj = decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            return _decode_failure(raw, exc)
        dup = self._shapes[decoder].duplicate_key(raw, obj)
        return obj if dup is None else Rejection(Reason.DUPLICATE_FIELD, dup)

    def _validate(self, decoder: msgspec.json.Decoder, kind: type, check, raw: bytes | None):
        try:
            obj = self._decode(decoder, raw)
            if type(obj) is not kind:
                return obj
            problem = check(obj)
            return obj if problem is None else problem
        except Exception as exc:
            return unclassified(exc)

    # -- AffectWindow -----------------------------------------------------------------------
    def affect(self, raw: bytes | None) -> AffectWindow | Rejection:
        """The window, or a Rejection; never raises (an unforeseen failure is ``unclassified``)."""
        return self._validate(self._affect, AffectWindow, self.check_affect, raw)

    def check_affect(self, w: AffectWindow) -> Rejection | None:
        if not _region_ok(w.region_id):
            return Rejection(Reason.BAD_REGION_ID, f"region_id={w.region_id!r}: want 2-digit state FIPS, "
                             "5-digit county FIPS or H3 cell of resolution <= 7")
        start, end = w.window_start, w.window_end
        if not _utc(start) or not _utc(end):
            return Rejection(Reason.NON_UTC_TIMESTAMP, f"window_start={start.isoformat()} window_end={end.isoformat()}: "
                             "timestamps must be UTC ('Z')")
        if w.n_observations > INT32_MAX or w.n_abstained > INT32_MAX:
            return Rejection(Reason.VALUE_OUT_OF_RANGE, f"n_observations={w.n_observations} "
                             f"n_abstained={w.n_abstained}: must be <= {INT32_MAX}")
        if w.n_observations < self.k_min:
            return Rejection(Reason.BELOW_K_ANONYMITY, f"n_observations={w.n_observations} < k_min={self.k_min}")
        length = end - start
        if length < timedelta(0):
            return Rejection(Reason.WINDOW_END_BEFORE_START, f"window_end={end.isoformat()} < window_start={start.isoformat()}")
        if length < self.min_window:
            return Rejection(Reason.WINDOW_TOO_SHORT, f"window length {length} < {self.min_window}")
        if length > self.max_window:
            return Rejection(Reason.WINDOW_TOO_LONG, f"window length {length} > {self.max_window}")
        if end > self.latest_end:  # (non-finite numbers never get here: msgspec rejects 1e999 as out of range)
            return Rejection(Reason.FUTURE_WINDOW, f"window_end={end.isoformat()} is after now+skew={self.latest_end.isoformat()}")
        return None

    # -- SymptomReport ----------------------------------------------------------------------
    def symptom(self, raw: bytes | None) -> SymptomReport | Rejection:
        return self._validate(self._symptom, SymptomReport, self.check_symptom, raw)

    def check_symptom(self, r: SymptomReport) -> Rejection | None:
        if r.region_id != NATIONAL_REGION and not _region_ok(r.region_id):
            return Rejection(Reason.BAD_REGION_ID, f"region_id={r.region_id!r}: want 'US', state/county FIPS or H3 cell")
        if not _utc(r.reported_at):
            return Rejection(Reason.NON_UTC_TIMESTAMP, f"reported_at={r.reported_at.isoformat()}: must be UTC ('Z')")
        if r.count > INT64_MAX or (r.denominator is not None and r.denominator > INT64_MAX):
            return Rejection(Reason.VALUE_OUT_OF_RANGE, f"count={r.count} denominator={r.denominator}: too large")
        if r.period_end < r.period_start:
            return Rejection(Reason.PERIOD_END_BEFORE_START, f"period_end={r.period_end} < period_start={r.period_start}")
        if (r.period_end - r.period_start).days >= MAX_PERIOD_DAYS:
            return Rejection(Reason.PERIOD_TOO_LONG, f"period {r.period_start}..{r.period_end} longer than {MAX_PERIOD_DAYS} days")
        if r.period_start > self.today + timedelta(days=1):
            return Rejection(Reason.FUTURE_PERIOD, f"period_start={r.period_start} is in the future")
        if r.reported_at > self.latest_end:
            return Rejection(Reason.FUTURE_REPORT, f"reported_at={r.reported_at.isoformat()} is in the future")
        if r.denominator is not None and r.count > r.denominator:
            return Rejection(Reason.COUNT_EXCEEDS_DENOMINATOR, f"count={r.count} > denominator={r.denominator}")
        return None


def validate_affect(raw: bytes | None, settings: Settings | None = None, now: datetime | None = None):
    """One-off convenience: an AffectWindow or a Rejection."""
    return Validator(settings, now).affect(raw)


def validate_symptom(raw: bytes | None, settings: Settings | None = None, now: datetime | None = None):
    return Validator(settings, now).symptom(raw)


__all__ = ["Reason", "REASONS", "Rejection", "Validator", "validate_affect", "validate_symptom",
           "classify_msgspec_error"]
