"""Bad input through the real worker: every malformed message lands in dead_letters with the right reason,
raw bytes and key; the worker keeps going and the valid records after them still land."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from ingest.validate import REASONS, Validator
from tests.test_validate import good_report, good_window, without

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _affect_cases(now: datetime) -> list[tuple[str, bytes, str]]:
    t0 = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)

    def w(**over) -> bytes:
        base = {"window_start": _iso(t0), "window_end": _iso(t0 + timedelta(minutes=15))}
        return json.dumps(good_window(**{**base, **over})).encode()

    return [
        ("bad_json", b'{"schema_version": 1, "device_id": ', "truncated"),
        ("invalid_utf8", b"\x00\x9f\x92\x96 not json", "binary"),
        ("too_deeply_nested", b"[" * 1000 + b"]" * 1000, "2,000 bytes of nested arrays (was a poison message)"),
        ("too_deeply_nested", b'{"quality": ' + b"[" * 3000, "unclosed nesting inside an object"),
        ("bad_region_id", w(region_id="06\n"), "region + trailing newline"),
        ("bad_region_id", json.dumps(good_window(region_id="٠٦"), ensure_ascii=False).encode(), "arabic-indic digits"),
        ("value_out_of_range", w(device_id="dev-0001abcd\n"), "device id + trailing newline"),
        ("duplicate_field", w(n_observations=3)[:-1] + b', "n_observations": 40}', "duplicate key"),
        ("empty_payload", b"", "empty"),
        ("not_an_object", b'["an", "array"]', "array"),
        ("unknown_field", w(face_embedding=[0.1, 0.2]), "unknown field"),
        ("missing_field", json.dumps(without(json.loads(w()), "arousal_mean")).encode(), "missing"),
        ("wrong_type", w(n_observations="40"), "string for int"),
        ("value_out_of_range", w(valence_mean=3.0), "valence 3"),
        ("unsupported_schema_version", w(schema_version=2), "v2"),
        ("below_k_anonymity", w(n_observations=5), "k"),
        ("future_window", w(window_start=_iso(now + timedelta(hours=1)),
                            window_end=_iso(now + timedelta(hours=1, minutes=15))), "future"),
        ("window_too_long", w(window_end=_iso(t0 + timedelta(hours=25))), "25 h"),
        ("window_too_short", w(window_end=_iso(t0 + timedelta(minutes=2))), "2 min"),
        ("window_end_before_start", w(window_end=_iso(t0 - timedelta(minutes=15))), "end < start"),
        ("bad_region_id", w(region_id="Texas"), "region"),
        ("oversized_payload", w(model_version="m", notes="x" * 20_000), "20 kB"),
        ("non_utc_timestamp", w(window_start=(t0 + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
                                window_end=(t0 + timedelta(hours=2, minutes=15)).strftime("%Y-%m-%dT%H:%M:%S+02:00")),
         "offset"),
    ]


def _symptom_cases() -> list[tuple[str, bytes, str]]:
    def r(**over) -> bytes:
        return json.dumps(good_report(**over)).encode()

    return [
        ("period_end_before_start", r(period_end="2026-11-01"), "end < start"),
        ("count_exceeds_denominator", r(count=9000), "count > denominator"),
        ("unknown_field", r(patient_id="123"), "identifying field"),
        ("bad_json", b"{{", "bad json"),
    ]


def _hypothesis_payloads(n: int = 40) -> list[bytes]:
    """Random bytes and hypothesis-generated JSON objects (some close to a valid window)."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
    names = st.sampled_from(["device_id", "region_id", "n_observations", "valence_mean", "window_end", "quality", "x"])
    objects = st.dictionaries(st.text(max_size=12) | names, json_values, max_size=8)
    near_valid = st.dictionaries(names, json_values, min_size=1, max_size=2).map(lambda m: {**good_window(), **m})
    payload = st.binary(max_size=120) | (objects | near_valid).map(msgspec.json.encode)
    out: list[bytes] = []

    @hsettings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload)
    def collect(p):
        out.append(p)

    collect()
    return out


def _send(producer, topic: str, payload: bytes, key: bytes):
    return producer.send(topic, key=key, value=payload).get(timeout=30)


def test_malformed_messages_are_dead_lettered_with_reasons(ingest_env, kafka_producer, topic_factory):
    now = datetime.now(timezone.utc)
    dlq = topic_factory("dlq")
    ingest_env.extra_env = {"AFFECTWATCH_KAFKA__DLQ_TOPIC": dlq}
    t0 = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    expected: dict[tuple[str, int, int], tuple[str, bytes, bytes]] = {}
    valid_keys: set[tuple[str, datetime]] = set()
    sent = 0

    def sentinel(i: int) -> None:
        """A valid window right after each bad message (same key -> same partition)."""
        nonlocal sent
        dev = f"sentinel-{i:05d}"
        _send(kafka_producer, ingest_env.affect_topic, json.dumps(good_window(
            device_id=dev, window_start=_iso(t0), window_end=_iso(t0 + timedelta(minutes=15)))).encode(), b"06")
        valid_keys.add((dev, t0))
        sent += 1

    for i, (reason, payload, _label) in enumerate(_affect_cases(now)):
        md = _send(kafka_producer, ingest_env.affect_topic, payload, b"06")
        expected[(md.topic, md.partition, md.offset)] = (reason, payload, b"06")
        sent += 1
        sentinel(i)
    for reason, payload, _label in _symptom_cases():
        md = _send(kafka_producer, ingest_env.symptom_topic, payload, b"36")
        expected[(md.topic, md.partition, md.offset)] = (reason, payload, b"36")
        sent += 1
    valid_report = json.dumps(good_report(reported_at=_iso(now - timedelta(days=1)))).encode()
    _send(kafka_producer, ingest_env.symptom_topic, valid_report, b"36")
    sent += 1

    validator = Validator(ingest_env.settings)
    fuzz: dict[tuple[str, int, int], bytes] = {}
    for j, payload in enumerate(_hypothesis_payloads()):
        md = _send(kafka_producer, ingest_env.affect_topic, payload, b"48")
        sent += 1
        out = validator.affect(payload)
        if hasattr(out, "reason"):
            fuzz[(md.topic, md.partition, md.offset)] = payload
        else:  # hypothesis produced a valid window: it must land like any other
            valid_keys.add((out.device_id, out.window_start))
        sentinel(1000 + j)

    stats = ingest_env.run()
    assert stats["messages"] == sent

    dead = {(t, p, o): (reason, raw, key, detail) for t, p, o, reason, raw, key, detail in ingest_env.query(
        "select topic, kafka_partition, kafka_offset, reason, raw, message_key, detail from dead_letters")}
    for pos, (reason, payload, key) in expected.items():
        assert pos in dead, f"{reason} message at {pos} not dead-lettered"
        got_reason, raw, got_key, detail = dead[pos]
        assert (got_reason, raw, got_key) == (reason, payload, key), detail
        assert detail
    for pos, payload in fuzz.items():
        assert dead[pos][0] in REASONS and dead[pos][1] == payload
    assert len(dead) == len(expected) + len(fuzz)

    rows = set(ingest_env.query("select device_id, window_start from affect_windows"))
    assert rows == valid_keys
    assert ingest_env.query("select count(*) from symptom_reports")[0][0] == 1
    assert stats["dead_letters"] == len(dead)

    # the optional DLQ topic received a copy of every dead letter, with its reason as a header
    from kafka import KafkaConsumer

    c = KafkaConsumer(dlq, bootstrap_servers=ingest_env.broker.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=5000)
    copies = list(c)
    c.close()
    assert len(copies) == len(dead)
    assert {dict(m.headers)["aw-reason"].decode() for m in copies} == {d[0] for d in dead.values()}
