"""Edge aggregator guarantees (ingest/edge.py), mostly as hypothesis properties."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from affectwatch.settings import Settings
from ingest import edge
from ingest.contracts import AffectWindow, DeviceId

K_MIN = Settings().privacy.k_min
T0 = datetime(2023, 1, 7, 10, 0, tzinfo=timezone.utc)
SECRET = b"test-maker-secret"

unit = st.floats(-1.0, 1.0, allow_nan=False)
conf = st.floats(0.0, 1.0, allow_nan=False)
observation = st.tuples(unit, unit, conf)
observations = st.lists(observation, min_size=0, max_size=60)
epsilons = st.one_of(st.none(), st.floats(0.05, 20.0))


def _aggregate(obs, epsilon=None, seed=0, **kw):
    return edge.aggregate_window(
        obs, hardware_id="hw-0001", region_id="06", window_start=T0, secret=SECRET,
        model_version="v1.3", epsilon=epsilon, rng=np.random.default_rng(seed), **kw,
    )


@hsettings(max_examples=150, deadline=None)
@given(observations, st.floats(0.0, 1.0), epsilons)
def test_never_emits_below_k_min_and_counts_abstentions(obs, threshold, epsilon):
    r = _aggregate(obs, epsilon, confidence_threshold=threshold)
    n_scored = sum(1 for _, _, c in obs if c >= threshold)
    assert r.n_scored == n_scored
    assert r.n_abstained == len(obs) - n_scored
    if n_scored < K_MIN:
        assert not r.emitted and r.window is None
        assert r.reason == (edge.REASON_NO_OBSERVATIONS if not obs else edge.REASON_BELOW_K)
    else:
        assert r.emitted and r.reason is None
        assert r.window["n_observations"] == n_scored >= K_MIN
        assert r.window["n_abstained"] == len(obs) - n_scored


@hsettings(max_examples=150, deadline=None)
@given(st.lists(observation, min_size=K_MIN, max_size=80), epsilons, st.integers(0, 2**32 - 1))
def test_outputs_validate_against_contract_and_ranges_hold_after_noise(obs, epsilon, seed):
    obs = [(v, a, max(c, 0.5)) for v, a, c in obs]  # all scored
    r = _aggregate(obs, epsilon, seed, quality={"lighting": [0.5] * len(obs)})
    assert r.emitted
    decoded = msgspec.json.decode(r.to_json(), type=AffectWindow)  # round trip through the contract
    assert decoded.window_start == T0 and decoded.window_end == T0 + timedelta(hours=1)
    assert decoded.dp_epsilon == epsilon
    assert decoded.quality.lighting == pytest.approx(0.5)
    assert -1 <= decoded.valence_mean <= 1 and -1 <= decoded.arousal_mean <= 1
    assert 0 <= decoded.valence_sd <= 1 and 0 <= decoded.arousal_sd <= 1
    assert 0 <= decoded.distress_share <= 1 and 0 <= decoded.confidence_mean <= 1


def test_exact_statistics_without_noise():
    obs = [(-0.5, 0.6, 0.9)] * 5 + [(0.5, 0.6, 0.9)] * 5 + [(-0.5, 0.1, 0.7)] * 2 + [(0.9, 0.9, 0.2)] * 3
    r = _aggregate(obs)
    w = r.window
    assert (w["n_observations"], w["n_abstained"]) == (12, 3)
    assert w["distress_share"] == pytest.approx(5 / 12)  # valence < 0 and arousal > 0.3
    v = np.array([-0.5] * 5 + [0.5] * 5 + [-0.5] * 2)
    assert w["valence_mean"] == pytest.approx(v.mean())
    assert w["valence_sd"] == pytest.approx(v.std())
    assert w["confidence_mean"] == pytest.approx((10 * 0.9 + 2 * 0.7) / 12)
    assert w["dp_epsilon"] is None and w["model_version"] == "v1.3"


def test_distress_cut_is_strict():
    at_cut = [(-0.5, edge.DISTRESS_AROUSAL_CUT, 1.0)] * K_MIN
    above = [(-0.5, edge.DISTRESS_AROUSAL_CUT + 1e-9, 1.0)] * K_MIN
    zero_valence = [(0.0, 0.9, 1.0)] * K_MIN
    assert _aggregate(at_cut).window["distress_share"] == 0
    assert _aggregate(above).window["distress_share"] == 1
    assert _aggregate(zero_valence).window["distress_share"] == 0


@hsettings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(timezone.utc)))
def test_device_id_stable_within_month_and_rotates(hw, when):
    did = edge.pseudonymous_device_id(hw, when, SECRET)
    month_start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(microseconds=1)
    next_month = month_end + timedelta(microseconds=1)
    assert edge.pseudonymous_device_id(hw, month_start, SECRET) == did
    assert edge.pseudonymous_device_id(hw, month_end, SECRET) == did
    assert edge.pseudonymous_device_id(hw, next_month, SECRET) != did
    assert edge.pseudonymous_device_id(hw, when, b"another-secret") != did
    assert len(did) == edge.DEVICE_ID_HEX_CHARS and all(ch in "0123456789abcdef" for ch in did)
    if len(hw) >= 8:
        assert hw not in did and hw.lower() not in did  # never contains the hardware id
    # valid under the contract's device_id rule
    msgspec.convert(did, DeviceId)


def test_device_id_is_not_a_plain_hash_of_the_hardware_id():
    import hashlib

    did = edge.pseudonymous_device_id("hw-0001", T0, SECRET)
    assert did not in hashlib.sha256(b"hw-0001").hexdigest()
    assert did != edge.pseudonymous_device_id("hw-0002", T0, SECRET)


def test_noise_is_unbiased_on_average():
    rng = np.random.default_rng(12345)
    v = np.linspace(-0.6, 0.6, 40)  # true mean 0: clipping to [-1, 1] is symmetric
    a = np.linspace(-0.2, 0.4, 40)
    c = np.full(40, 0.9)
    reps = 4000
    seg = np.repeat(np.arange(reps), 40)
    stats = edge.aggregate_segments(
        seg, reps, np.tile(v, reps), np.tile(a, reps), np.tile(c, reps), k_min=K_MIN, epsilon=2.0, rng=rng,
    )
    scale = edge.laplace_scales(40, 2.0)["valence_mean"]
    assert stats["valence_mean"].std() > 0.5 * scale * np.sqrt(2)  # noise really applied
    # mean of reps Laplace(0, b) has SD b*sqrt(2/reps); allow 4 SD
    assert abs(stats["valence_mean"].mean() - v.mean()) < 4 * scale * np.sqrt(2 / reps)
    assert abs(stats["arousal_mean"].mean() - a.mean()) < 4 * scale * np.sqrt(2 / reps) + 0.01


def test_laplace_scale_follows_sensitivity_and_epsilon():
    s = edge.laplace_scales(np.array([20, 80]), 3.0)
    assert s["valence_mean"][0] == pytest.approx(2 / 20 / (3.0 / 6))
    assert s["distress_share"][1] == pytest.approx(1 / 80 / 0.5)
    assert s["valence_sd"][1] == pytest.approx(2 / np.sqrt(80) / 0.5)
    with pytest.raises(ValueError, match="epsilon"):
        edge.laplace_scales(20, 0)


def test_streaming_aggregator_aligns_and_flushes_only_closed_windows():
    agg = edge.EdgeAggregator("hw-9", "36", secret=SECRET, model_version="v2.0", window_minutes=15, k_min=K_MIN,
                              modality="voice", site_type="transit")
    for i in range(30):
        agg.add(T0 + timedelta(minutes=1, seconds=20 * i), -0.4, 0.7, 0.95, {"snr_db": 18.0})  # 10:01..10:10:40
    agg.add(T0 + timedelta(minutes=16), 0.1, 0.1, 0.95)
    assert agg.flush(T0 + timedelta(minutes=14)) == []
    (first,) = agg.flush(T0 + timedelta(minutes=15))
    assert first.window_start == T0 and first.window_end == T0 + timedelta(minutes=15)
    w = first.struct()
    assert (w.n_observations, w.distress_share, w.quality.snr_db, w.modality) == (30, 1.0, 18.0, "voice")
    (second,) = agg.flush()
    assert not second.emitted and second.reason == edge.REASON_BELOW_K and second.n_scored == 1


def test_window_alignment():
    s, e = edge.align_window(datetime(2023, 3, 5, 13, 47, 12, tzinfo=timezone.utc), 60)
    assert (s, e) == (datetime(2023, 3, 5, 13, tzinfo=timezone.utc), datetime(2023, 3, 5, 14, tzinfo=timezone.utc))
    s, _ = edge.align_window(datetime(2023, 3, 5, 13, 47, tzinfo=timezone(timedelta(hours=-5))), 30)
    assert s == datetime(2023, 3, 5, 18, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: _aggregate([(1.5, 0.0, 0.9)] * 12), r"valence must be in \[-1.0, 1.0\]: valence\[0\]=1.5"),
        (lambda: _aggregate([(0.0, float("nan"), 0.9)] * 12), r"arousal\[0\]=nan"),
        (lambda: _aggregate([(0.0, 0.0, 1.2)] * 12), r"confidence"),
        (lambda: _aggregate([(0.0, 0.0, 0.9)] * 12, quality={"brightness": [1] * 12}), r"unknown quality keys \['brightness'\]"),
        (lambda: _aggregate([(0.0, 0.0, 0.9)] * 12, epsilon=-1), r"epsilon must be > 0"),
        (lambda: edge.align_window(datetime(2023, 1, 1), 60), r"no timezone"),
        (lambda: edge.align_window(T0, 2), r"window_minutes=2"),
        (lambda: edge.aggregate_window([], hardware_id="h", region_id="06", window_start=T0 + timedelta(minutes=7),
                                       secret=SECRET, model_version="v"), r"not aligned"),
        (lambda: edge.pseudonymous_device_id("hw", T0, b""), r"secret must not be empty"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@hsettings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), observation), max_size=150), epsilons, st.integers(0, 2**32 - 1))
def test_vectorized_segments_match_per_window_rules(obs, epsilon, seed):
    """``aggregate_segments`` (used by the simulator) applies the same rules window by window."""
    seg = np.array([s for s, _ in obs], dtype=np.int64)
    v, a, c = (np.array([o[i] for _, o in obs], dtype=float) for i in range(3))
    out = edge.aggregate_segments(seg, 6, v, a, c, k_min=K_MIN, epsilon=epsilon, rng=np.random.default_rng(seed))
    for k in range(6):
        mine = [o for s, o in obs if s == k]
        scored = [o for o in mine if o[2] >= edge.DEFAULT_CONFIDENCE_THRESHOLD]
        assert out["n_observations"][k] == len(scored) and out["n_abstained"][k] == len(mine) - len(scored)
        emitted = out["reason"][k] is None
        assert emitted == (len(scored) >= K_MIN)
        if emitted:
            assert -1 <= out["valence_mean"][k] <= 1 and 0 <= out["distress_share"][k] <= 1
            if epsilon is None:
                assert out["valence_mean"][k] == pytest.approx(np.mean([o[0] for o in scored]))
        else:
            assert np.isnan(out["valence_mean"][k])  # nothing about a suppressed window leaves the device
