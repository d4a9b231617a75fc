"""Unit tests for ingest/validate.py: every rejection reason, fast (no broker)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from affectwatch.settings import Settings
from ingest.contracts import AffectWindow, SymptomReport
from ingest.validate import REASONS, Reason, Rejection, Validator, classify_msgspec_error

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def good_window(**over) -> dict:
    w = {
        "schema_version": 1, "device_id": "dev-0001abcd", "region_id": "06", "site_type": "ed",
        "window_start": "2026-11-20T10:00:00Z", "window_end": "2026-11-20T10:15:00Z",
        "n_observations": 40, "n_abstained": 3, "valence_mean": -0.2, "arousal_mean": 0.4,
        "valence_sd": 0.3, "arousal_sd": 0.2, "distress_share": 0.15, "confidence_mean": 0.8,
        "quality": {"pose_stability": 0.9, "lighting": 0.6}, "modality": "face",
        "model_version": "affnet-1.2", "dp_epsilon": None,
    }
    w.update(over)
    return w


def good_report(**over) -> dict:
    r = {"schema_version": 1, "region_id": "06", "syndrome": "ili", "period_start": "2026-11-08",
         "period_end": "2026-11-14", "count": 120, "denominator": 4000, "source": "nssp",
         "reported_at": "2026-11-18T16:00:00Z"}
    r.update(over)
    return r


def enc(obj) -> bytes:
    return json.dumps(obj).encode()


def without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


@pytest.fixture(scope="module")
def v() -> Validator:
    return Validator(Settings(data_dir="/nonexistent-not-used"), now=NOW)


def test_valid_window_and_report_pass(v):
    w = v.affect(enc(good_window()))
    assert isinstance(w, AffectWindow)
    assert w.window_start == datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    assert w.quality.lighting == 0.6
    r = v.symptom(enc(good_report()))
    assert isinstance(r, SymptomReport) and r.count == 120
    # national symptom series and H3 cells of resolution <= 7 are valid regions
    assert isinstance(v.symptom(enc(good_report(region_id="US"))), SymptomReport)
    assert isinstance(v.affect(enc(good_window(region_id="8728341aeffffff"))), AffectWindow)
    # exactly k_min observations is enough; a 24 h window is allowed
    assert isinstance(v.affect(enc(good_window(n_observations=11))), AffectWindow)
    assert isinstance(v.affect(enc(good_window(window_start="2026-11-19T10:00:00Z",
                                               window_end="2026-11-20T10:00:00Z"))), AffectWindow)


AFFECT_CASES = [
    ("empty", b"", Reason.EMPTY_PAYLOAD),
    ("oversized", enc(good_window(model_version="x" * 64, extra="y" * 20_000)), Reason.OVERSIZED_PAYLOAD),
    ("truncated json", b'{"schema_version": 1, "device_id": ', Reason.BAD_JSON),
    ("not utf-8", b"\xff\xfe\x00garbage", Reason.INVALID_UTF8),
    ("latin-1 inside a string", enc(good_window(model_version="m")).replace(b'"m"', b'"caf\xe9"'), Reason.INVALID_UTF8),
    ("2,000 bytes of nested arrays", b"[" * 1000 + b"]" * 1000, Reason.TOO_DEEPLY_NESTED),
    ("unclosed nested arrays", b"[" * 5000, Reason.TOO_DEEPLY_NESTED),
    ("nested arrays in a field", enc(good_window()).replace(b'"quality": {', b'"extra": ' + b"[" * 3000 + b"]" * 3000
                                                             + b', "quality": {'), Reason.TOO_DEEPLY_NESTED),
    ("nested objects", b'{"a":' * 2000 + b"1" + b"}" * 2000, Reason.TOO_DEEPLY_NESTED),
    ("array", b"[1, 2, 3]", Reason.NOT_AN_OBJECT),
    ("number", b"42", Reason.NOT_AN_OBJECT),
    ("null", b"null", Reason.NOT_AN_OBJECT),
    ("unknown field", enc(good_window(face_embedding=[0.1, 0.2])), Reason.UNKNOWN_FIELD),
    ("unknown nested field", enc(good_window(quality={"lighting": 0.5, "iso": 800})), Reason.UNKNOWN_FIELD),
    ("missing field", enc(without(good_window(), "valence_mean")), Reason.MISSING_FIELD),
    ("string for int", enc(good_window(n_observations="40")), Reason.WRONG_TYPE),
    ("float for int", enc(good_window(n_observations=40.5)), Reason.WRONG_TYPE),
    ("null for required", enc(good_window(modality=None)), Reason.WRONG_TYPE),
    ("bad timestamp", enc(good_window(window_start="yesterday")), Reason.WRONG_TYPE),
    ("valence > 1", enc(good_window(valence_mean=1.5)), Reason.VALUE_OUT_OF_RANGE),
    ("negative sd", enc(good_window(valence_sd=-0.1)), Reason.VALUE_OUT_OF_RANGE),
    ("share > 1", enc(good_window(distress_share=1.01)), Reason.VALUE_OUT_OF_RANGE),
    ("unknown site type", enc(good_window(site_type="stadium")), Reason.VALUE_OUT_OF_RANGE),
    ("short device id", enc(good_window(device_id="abc")), Reason.VALUE_OUT_OF_RANGE),
    ("negative abstained", enc(good_window(n_abstained=-1)), Reason.VALUE_OUT_OF_RANGE),
    ("infinite sd", b'{"schema_version":1,"device_id":"dev-0001abcd","region_id":"06","site_type":"ed",'
     b'"window_start":"2026-11-20T10:00:00Z","window_end":"2026-11-20T10:15:00Z","n_observations":40,'
     b'"n_abstained":3,"valence_mean":0.1,"arousal_mean":0.1,"valence_sd":1e999,"arousal_sd":0.2,'
     b'"distress_share":0.1,"confidence_mean":0.8,"modality":"face","model_version":"m"}', Reason.VALUE_OUT_OF_RANGE),
    ("huge count", enc(good_window(n_observations=2**40)), Reason.VALUE_OUT_OF_RANGE),
    ("schema v2", enc(good_window(schema_version=2)), Reason.UNSUPPORTED_SCHEMA_VERSION),
    ("naive timestamp", enc(good_window(window_start="2026-11-20T10:00:00")), Reason.NON_UTC_TIMESTAMP),
    ("offset timestamp", enc(good_window(window_start="2026-11-20T12:00:00+02:00",
                                         window_end="2026-11-20T12:15:00+02:00")), Reason.NON_UTC_TIMESTAMP),
    ("region name", enc(good_window(region_id="California")), Reason.BAD_REGION_ID),
    ("3-digit region", enc(good_window(region_id="061")), Reason.BAD_REGION_ID),
    ("fine H3 cell", enc(good_window(region_id="8928341aec3ffff")), Reason.BAD_REGION_ID),
    ("too long region", enc(good_window(region_id="06" * 10)), Reason.BAD_REGION_ID),
    # the hostile messages that used to be accepted (issue 11): exact, ASCII-only identifiers
    ("region + newline", enc(good_window(region_id="06\n")), Reason.BAD_REGION_ID),
    ("county + newline", enc(good_window(region_id="06037\n")), Reason.BAD_REGION_ID),
    ("H3 cell + newline", enc(good_window(region_id="8728341aeffffff\n")), Reason.BAD_REGION_ID),
    ("arabic-indic digits", enc(good_window(region_id="\u0660\u0666")), Reason.BAD_REGION_ID),
    ("fullwidth digits", enc(good_window(region_id="\uff10\uff16")), Reason.BAD_REGION_ID),
    ("region + space", enc(good_window(region_id="06 ")), Reason.BAD_REGION_ID),
    ("national region for a window", enc(good_window(region_id="US")), Reason.BAD_REGION_ID),
    ("device id + newline", enc(good_window(device_id="dev-0001abcd\n")), Reason.VALUE_OUT_OF_RANGE),
    ("device id non-ASCII", enc(good_window(device_id="dev-0001abcd\u00e9")), Reason.VALUE_OUT_OF_RANGE),
    ("device id arabic digits", enc(good_window(device_id="dev-\u0660\u0661\u0662\u0663\u0664")),
     Reason.VALUE_OUT_OF_RANGE),
    ("duplicate key", enc(good_window(n_observations=3))[:-1] + b', "n_observations": 40}', Reason.DUPLICATE_FIELD),
    ("duplicate key, spaced colon", enc(good_window(n_observations=3))[:-1] + b', "n_observations" : 40}',
     Reason.DUPLICATE_FIELD),
    ("duplicate nested key", enc(good_window()).replace(b'"lighting": 0.6', b'"lighting": 0.6, "lighting": 0.1'),
     Reason.DUPLICATE_FIELD),
    ("duplicate key, escaped", enc(good_window(model_version="a\"b"))[:-1] + b', "region_id": "36"}',
     Reason.DUPLICATE_FIELD),
    ("duplicate key, escaped name", enc(good_window())[:-1] + b', "\\u0072egion_id": "36"}', Reason.DUPLICATE_FIELD),
    ("duplicate key, value spells an optional key", enc(without(good_window(model_version="dp_epsilon"), "dp_epsilon"))[:-1]
     + b', "n_abstained": 3}', Reason.DUPLICATE_FIELD),
    ("duplicate null key", enc(good_window())[:-1] + b', "dp_epsilon": null}', Reason.DUPLICATE_FIELD),
    ("duplicate empty quality", enc(good_window(quality={}))[:-1] + b', "quality": {}}', Reason.DUPLICATE_FIELD),
    ("lone surrogate", enc(good_window()).replace(b'"affnet-1.2"', b'"\\ud800"'), Reason.BAD_JSON),
    ("below k", enc(good_window(n_observations=10)), Reason.BELOW_K_ANONYMITY),
    ("end before start", enc(good_window(window_end="2026-11-20T09:00:00Z")), Reason.WINDOW_END_BEFORE_START),
    ("zero length", enc(good_window(window_end="2026-11-20T10:00:00Z")), Reason.WINDOW_TOO_SHORT),
    ("4 minutes", enc(good_window(window_end="2026-11-20T10:04:00Z")), Reason.WINDOW_TOO_SHORT),
    ("25 hours", enc(good_window(window_start="2026-11-19T09:00:00Z", window_end="2026-11-20T10:00:00Z")),
     Reason.WINDOW_TOO_LONG),
    ("future", enc(good_window(window_start="2026-11-20T12:00:00Z", window_end="2026-11-20T12:15:00Z")),
     Reason.FUTURE_WINDOW),
]


@pytest.mark.parametrize("payload,reason", [c[1:] for c in AFFECT_CASES], ids=[c[0] for c in AFFECT_CASES])
def test_affect_rejections_are_named(v, payload, reason):
    out = v.affect(payload)
    assert isinstance(out, Rejection), f"accepted: {out}"
    assert out.reason is reason, out.detail
    assert out.detail


def test_future_window_within_clock_skew_is_accepted(v):
    w = good_window(window_start="2026-11-20T11:50:00Z", window_end="2026-11-20T12:04:00Z")  # 4 min ahead < 5 min skew
    assert isinstance(v.affect(enc(w)), AffectWindow)


SYMPTOM_CASES = [
    ("bad json", b"{", Reason.BAD_JSON),
    ("unknown field", enc(good_report(patient_name="x")), Reason.UNKNOWN_FIELD),
    ("missing count", enc(without(good_report(), "count")), Reason.MISSING_FIELD),
    ("negative count", enc(good_report(count=-1)), Reason.VALUE_OUT_OF_RANGE),
    ("bad date", enc(good_report(period_start="2026-13-01")), Reason.WRONG_TYPE),
    ("bad region", enc(good_report(region_id="XX")), Reason.BAD_REGION_ID),
    ("region + newline", enc(good_report(region_id="06\n")), Reason.BAD_REGION_ID),
    ("US + newline", enc(good_report(region_id="US\n")), Reason.BAD_REGION_ID),
    ("arabic-indic digits", enc(good_report(region_id="\u0660\u0666")), Reason.BAD_REGION_ID),
    ("syndrome + newline", enc(good_report(syndrome="ili\n")), Reason.VALUE_OUT_OF_RANGE),
    ("duplicate count", enc(good_report(count=1))[:-1] + b', "count": 3}', Reason.DUPLICATE_FIELD),
    ("end before start", enc(good_report(period_end="2026-11-01")), Reason.PERIOD_END_BEFORE_START),
    ("period too long", enc(good_report(period_start="2026-10-01")), Reason.PERIOD_TOO_LONG),
    ("future period", enc(good_report(period_start="2026-11-25", period_end="2026-11-25")), Reason.FUTURE_PERIOD),
    ("future report", enc(good_report(reported_at="2026-11-21T00:00:00Z")), Reason.FUTURE_REPORT),
    ("count > denominator", enc(good_report(count=5000)), Reason.COUNT_EXCEEDS_DENOMINATOR),
    ("schema v3", enc(good_report(schema_version=3)), Reason.UNSUPPORTED_SCHEMA_VERSION),
    ("naive reported_at", enc(good_report(reported_at="2026-11-18T16:00:00")), Reason.NON_UTC_TIMESTAMP),
]


@pytest.mark.parametrize("payload,reason", [c[1:] for c in SYMPTOM_CASES], ids=[c[0] for c in SYMPTOM_CASES])
def test_symptom_rejections_are_named(v, payload, reason):
    out = v.symptom(payload)
    assert isinstance(out, Rejection), f"accepted: {out}"
    assert out.reason is reason, out.detail


def test_reason_names_are_unique_snake_case():
    assert len(REASONS) == len(set(REASONS))
    assert all(r.islower() and " " not in r for r in REASONS)
    for required in ("bad_json", "not_an_object", "unknown_field", "missing_field", "wrong_type",
                     "value_out_of_range", "unsupported_schema_version", "below_k_anonymity", "future_window",
                     "window_too_long", "window_too_short", "window_end_before_start", "bad_region_id",
                     "oversized_payload", "period_end_before_start"):
        assert required in REASONS


def test_k_min_follows_settings():
    strict = Validator(Settings(data_dir="/x", privacy={"k_min": 50}), now=NOW)
    out = strict.affect(enc(good_window(n_observations=40)))
    assert isinstance(out, Rejection) and out.reason is Reason.BELOW_K_ANONYMITY and "k_min=50" in out.detail


def test_detail_names_the_field(v):
    out = v.affect(enc(good_window(arousal_mean=7)))
    assert "arousal_mean" in out.detail
    out = v.affect(enc(without(good_window(), "device_id")))
    assert "device_id" in out.detail


def test_classify_unknown_message_defaults_to_wrong_type():
    assert classify_msgspec_error("Something new - at `$.x`") is Reason.WRONG_TYPE


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(raw):
    v = Validator(Settings(data_dir="/x"), now=NOW)
    out = v.affect(raw)
    assert isinstance(out, Rejection)  # (b'{"schema_version":""' is wrong_type before it is bad_json)
    assert out.reason.value in REASONS and out.detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from(list(AffectWindow.__struct_fields__) + ["extra", "quality"])


@hsettings(max_examples=300, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=20), st.dictionaries(field_names, json_values, max_size=3))
def test_json_objects_get_a_reason_or_a_valid_window(obj, mutation):
    """Hypothesis JSON objects (random and mutated valid windows) never crash the validator."""
    v = Validator(Settings(data_dir="/x"), now=NOW)
    for candidate in (obj, {**good_window(), **mutation}):
        raw = msgspec.json.encode(candidate)
        out = v.affect(raw)
        if isinstance(out, Rejection):
            assert out.reason.value in REASONS and out.detail
        else:
            assert isinstance(out, AffectWindow)
            assert out.n_observations >= 11 and out.window_end > out.window_start


def test_truncated_json_is_bad_json_not_a_field_error():
    """msgspec reports the wrong type of schema_version before the missing '}' — the reason must be bad_json."""
    v = Validator(Settings(data_dir="/x"), now=NOW)
    out = v.affect(b'{"schema_version":""')
    assert isinstance(out, Rejection) and out.reason is Reason.BAD_JSON


def test_raw_utf8_non_ascii_digits_are_rejected(v):
    raw = json.dumps(good_window(region_id="٠٦"), ensure_ascii=False).encode()
    out = v.affect(raw)
    assert isinstance(out, Rejection) and out.reason is Reason.BAD_REGION_ID, out


def test_colons_and_escapes_in_values_are_not_duplicates(v):
    """The fast duplicate-key check counts ':' — colons and escapes inside strings must not trip it."""
    for over in ({"model_version": "dp_epsilon"}, {"device_id": "snr_db_12"}, {"quality": {}},
                 {"quality": {"lighting": None}}, {"model_version": "a:b::c"}, {"model_version": 'q"x'}, {"model_version": "caf\u00e9"},
                 {"window_start": "2026-11-20T10:00:00.000+00:00"}):
        raw = enc(good_window(**over))
        assert isinstance(v.affect(raw), AffectWindow), (over, v.affect(raw))
    spaced = b'{ "schema_version" : 1 , ' + enc(without(good_window(), "schema_version"))[1:]
    assert isinstance(v.affect(spaced), AffectWindow)


def test_unforeseen_failure_is_unclassified_with_the_exception(monkeypatch):
    v = Validator(Settings(data_dir="/x"), now=NOW)

    def boom(_w):
        raise KeyError("a case nobody foresaw")

    monkeypatch.setattr(v, "check_affect", boom)
    out = v.affect(enc(good_window()))
    assert isinstance(out, Rejection) and out.reason is Reason.UNCLASSIFIED
    assert "KeyError" in out.detail and "nobody foresaw" in out.detail


@hsettings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=400),
                 st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"a":', b",", b"1", b'"\\ud800"', b"\xff",
                                           b'"region_id":"06\\n"', b'"n_observations":40']), max_size=300).map(b"".join),
                 st.sampled_from([b"[", b'{"a":']).flatmap(lambda open_: st.integers(1, 5000).map(lambda n: open_ * n))))
def test_any_bytes_become_exactly_one_row_or_one_dead_letter(raw):
    """Property: the validator never raises; an accepted record re-encodes for the warehouse, a rejected
    one has a named reason (the worker stores the first as a row, the second as a dead letter)."""
    from ingest.sink import PendingBatch, prepare_batch

    v = Validator(Settings(data_dir="/x"), now=NOW)
    for check, kind in ((v.affect, AffectWindow), (v.symptom, SymptomReport)):
        out = check(raw)
        if isinstance(out, Rejection):
            assert out.reason.value in REASONS and out.detail
        else:
            assert isinstance(out, kind)
            b = PendingBatch()
            if kind is AffectWindow:
                for lst, val in ((b.affect, out), (b.a_topic, "t"), (b.a_partition, 0), (b.a_offset, 0), (b.a_ts, 0),
                                 (b.a_sim, False)):
                    lst.append(val)
            else:
                for lst, val in ((b.symptoms, out), (b.s_topic, "t"), (b.s_partition, 0), (b.s_offset, 0)):
                    lst.append(val)
            prepare_batch(b, "g")  # the Arrow tables the warehouse write reads
