"""Edge aggregator: what runs on the device, between the affect model and the network.

A device maker feeds per-observation scores from the on-device model (valence and arousal in
[-1, 1], confidence in [0, 1], optional capture-quality numbers) and gets AffectWindow v1 records
(``ingest.contracts``) that are safe to publish:

* observations whose confidence is below ``confidence_threshold`` are not scored; they are only
  counted, in ``n_abstained``;
* a window with fewer than ``k_min`` scored observations is **suppressed**: nothing is emitted and
  the result carries the reason (``below_k_anonymity``, or ``no_observations``);
* ``distress_share`` is the share of scored observations with valence < 0 and arousal >
  ``DISTRESS_AROUSAL_CUT`` (0.3: clearly activated, not merely awake);
* optional Laplace noise with a stated total ε (``dp_epsilon`` records it; see ``laplace_scales``);
* the device id is pseudonymous: HMAC-SHA256 of the hardware id keyed with a salt that rotates
  every calendar month (UTC), derived from a device-maker secret and ``'YYYY-MM'``; truncated to
  32 hex characters. Ids of different months cannot be linked without the secret, and the hardware
  id cannot be recovered from the id;
* windows are aligned to multiples of the window length since the Unix epoch (UTC), so devices'
  windows line up across a region.

Two entry points share one implementation: ``aggregate_segments`` (vectorized, many windows at
once; the fleet simulator uses it) and ``EdgeAggregator`` (streaming, one device, observation by
observation — the shape of a device's main loop).
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Mapping

import msgspec
import numpy as np

from affectwatch.settings import Settings, get_settings
from ingest.contracts import AffectWindow

DISTRESS_AROUSAL_CUT = 0.3  # arousal above this (with valence < 0) counts as distress
DEFAULT_CONFIDENCE_THRESHOLD = 0.5  # below: the model abstains
DEVICE_ID_HEX_CHARS = 32
QUALITY_KEYS = ("pose_stability", "lighting", "snr_db")
# Statistics that receive Laplace noise; the total epsilon is split equally between them
# (sequential composition), so the whole window is epsilon-DP for one observation's values.
NOISED_STATISTICS = ("valence_mean", "arousal_mean", "valence_sd", "arousal_sd", "distress_share", "confidence_mean")

REASON_BELOW_K = "below_k_anonymity"
REASON_NO_OBSERVATIONS = "no_observations"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# -- pseudonymous device ids ---------------------------------------------------------------------
def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def salt_period(when: date | datetime) -> str:
    """The salt period ('YYYY-MM', UTC) that ``when`` falls in."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError(f"timestamp {when.isoformat()} has no timezone; pass an aware UTC datetime")
        when = when.astimezone(timezone.utc)
    return f"{when.year:04d}-{when.month:02d}"


def period_salt(secret: str | bytes, period: str) -> bytes:
    """Per-month salt = HMAC-SHA256(secret, 'affectwatch/device-salt/YYYY-MM')."""
    if not secret:
        raise ValueError("the device-id secret must not be empty")
    return hmac.new(_as_bytes(secret), b"affectwatch/device-salt/" + period.encode(), hashlib.sha256).digest()


def pseudonymous_device_id(hardware_id: str | bytes, when: date | datetime, secret: str | bytes) -> str:
    """HMAC-SHA256(salt of ``when``'s month, hardware id), first 32 hex characters.

    Same hardware id and month -> same id; another month -> an unlinkable id.
    """
    if not hardware_id:
        raise ValueError("hardware_id must not be empty")
    salt = period_salt(secret, salt_period(when))
    return hmac.new(salt, _as_bytes(hardware_id), hashlib.sha256).hexdigest()[:DEVICE_ID_HEX_CHARS]


# -- windows -------------------------------------------------------------------------------------
def align_window(ts: datetime, window_minutes: int) -> tuple[datetime, datetime]:
    """The window [start, end) containing ``ts``, aligned to multiples of the length since the epoch."""
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone; pass an aware UTC datetime")
    if not 5 <= window_minutes <= 24 * 60:
        raise ValueError(f"window_minutes={window_minutes} is outside 5..1440 (DESIGN.md window length)")
    length = window_minutes * 60
    secs = int((ts.astimezone(timezone.utc) - _EPOCH).total_seconds() // length) * length
    start = _EPOCH + timedelta(seconds=secs)
    return start, start + timedelta(seconds=length)


def laplace_scales(n: np.ndarray | int, epsilon: float) -> dict[str, np.ndarray]:
    """Laplace scale b = sensitivity / (epsilon / 6) for each noised statistic of a window of n scored observations.

    Sensitivities for replacing one observation (n is public; the counts are released exactly
    because downstream k-anonymity checks need them):
    mean of values in [-1, 1]: 2/n; share or mean of values in [0, 1]: 1/n; population SD of values
    in [-1, 1]: 2/sqrt(n) (the SD is ||x - mean||/sqrt(n), and the distance of x to the constant
    vectors moves by at most the change of x, i.e. 2).
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    n = np.asarray(n, dtype=float)
    eps = epsilon / len(NOISED_STATISTICS)
    return {
        "valence_mean": 2.0 / n / eps,
        "arousal_mean": 2.0 / n / eps,
        "valence_sd": 2.0 / np.sqrt(n) / eps,
        "arousal_sd": 2.0 / np.sqrt(n) / eps,
        "distress_share": 1.0 / n / eps,
        "confidence_mean": 1.0 / n / eps,
    }


_RANGES = {
    "valence_mean": (-1.0, 1.0),
    "arousal_mean": (-1.0, 1.0),
    "valence_sd": (0.0, 1.0),
    "arousal_sd": (0.0, 1.0),
    "distress_share": (0.0, 1.0),
    "confidence_mean": (0.0, 1.0),
}


def _check_range(name: str, values: np.ndarray, lo: float, hi: float) -> None:
    bad = ~((values >= lo) & (values <= hi))  # also catches NaN
    if bad.any():
        idx = np.flatnonzero(bad)
        shown = ", ".join(f"{name}[{i}]={float(values[i])!r}" for i in idx[:5])
        more = f" (and {len(idx) - 5} more)" if len(idx) > 5 else ""
        raise ValueError(f"{name} must be in [{lo}, {hi}]: {shown}{more}")


def _segment_mean(seg: np.ndarray, values: np.ndarray, n_segments: int) -> np.ndarray:
    ok = ~np.isnan(values)
    cnt = np.bincount(seg[ok], minlength=n_segments)
    tot = np.bincount(seg[ok], weights=values[ok], minlength=n_segments)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def aggregate_segments(
    segment: np.ndarray,
    n_segments: int,
    valence: np.ndarray,
    arousal: np.ndarray,
    confidence: np.ndarray,
    *,
    k_min: int,
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    epsilon: float | None = None,
    quality: Mapping[str, np.ndarray] | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Aggregate observations into windows, vectorized.

    ``segment[i]`` is the window (0..n_segments-1) of observation i. Returns one array per output
    column, each of length ``n_segments``: the AffectWindow statistics, ``quality_<key>`` (mean over
    all observations of the window, NaN if none reported), ``dp_epsilon`` and ``reason`` (None for
    an emitted window, else why it is suppressed). Statistics of suppressed windows are NaN.
    """
    seg = np.asarray(segment, dtype=np.int64)
    v, a, c = (np.asarray(x, dtype=float) for x in (valence, arousal, confidence))
    if not (len(seg) == len(v) == len(a) == len(c)):
        raise ValueError(f"segment, valence, arousal, confidence differ in length: {len(seg)}, {len(v)}, {len(a)}, {len(c)}")
    if len(seg) and (seg.min() < 0 or seg.max() >= n_segments):
        raise ValueError(f"segment ids must be in 0..{n_segments - 1}, got {seg.min()}..{seg.max()}")
    _check_range("valence", v, -1.0, 1.0)
    _check_range("arousal", a, -1.0, 1.0)
    _check_range("confidence", c, 0.0, 1.0)
    if k_min < 1:
        raise ValueError(f"k_min must be >= 1, got {k_min}")

    scored = c >= confidence_threshold
    s_seg, s_v, s_a, s_c = seg[scored], v[scored], a[scored], c[scored]
    n = np.bincount(s_seg, minlength=n_segments)
    n_all = np.bincount(seg, minlength=n_segments)
    nf = np.maximum(n, 1).astype(float)
    distress = (s_v < 0) & (s_a > DISTRESS_AROUSAL_CUT)
    out: dict[str, np.ndarray] = {"n_observations": n, "n_abstained": n_all - n}
    for name, x in (("valence", s_v), ("arousal", s_a)):
        mean = np.bincount(s_seg, weights=x, minlength=n_segments) / nf
        sq = np.bincount(s_seg, weights=x * x, minlength=n_segments) / nf
        out[f"{name}_mean"] = mean
        out[f"{name}_sd"] = np.sqrt(np.clip(sq - mean * mean, 0.0, None))  # population SD
    out["distress_share"] = np.bincount(s_seg, weights=distress.astype(float), minlength=n_segments) / nf
    out["confidence_mean"] = np.bincount(s_seg, weights=s_c, minlength=n_segments) / nf

    emitted = n >= k_min
    reason = np.full(n_segments, None, dtype=object)
    reason[(n < k_min) & (n_all > 0)] = REASON_BELOW_K
    reason[n_all == 0] = REASON_NO_OBSERVATIONS
    out["reason"] = reason

    if epsilon is not None:
        rng = rng or np.random.default_rng()
        scales = laplace_scales(np.where(emitted, n, 1), epsilon)
        for name in NOISED_STATISTICS:
            noisy = out[name] + rng.laplace(0.0, scales[name])
            out[name] = np.where(emitted, np.clip(noisy, *_RANGES[name]), out[name])
    out["dp_epsilon"] = np.full(n_segments, np.nan if epsilon is None else float(epsilon))
    for name in NOISED_STATISTICS:
        out[name] = np.where(emitted, out[name], np.nan)

    quality = quality or {}
    unknown = set(quality) - set(QUALITY_KEYS)
    if unknown:
        raise ValueError(f"unknown quality keys {sorted(unknown)}; allowed: {list(QUALITY_KEYS)}")
    for key in QUALITY_KEYS:
        if key in quality:
            q = np.asarray(quality[key], dtype=float)
            if len(q) != len(seg):
                raise ValueError(f"quality[{key!r}] has {len(q)} values for {len(seg)} observations")
            if key != "snr_db":
                _check_range(f"quality.{key}", q[~np.isnan(q)], 0.0, 1.0)
            out[f"quality_{key}"] = _segment_mean(seg, q, n_segments)
        else:
            out[f"quality_{key}"] = np.full(n_segments, np.nan)
    return out


def _nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def window_record(
    stats: Mapping[str, np.ndarray],
    i: int,
    *,
    device_id: str,
    region_id: str,
    site_type: str,
    modality: str,
    model_version: str,
    window_start: datetime,
    window_end: datetime,
) -> dict:
    """The AffectWindow v1 dict (datetimes as aware UTC ``datetime``) for emitted window ``i``."""
    if stats["reason"][i] is not None:
        raise ValueError(f"window {i} is suppressed ({stats['reason'][i]}) and must not be emitted")
    quality = {k: float(stats[f"quality_{k}"][i]) for k in QUALITY_KEYS if not math.isnan(stats[f"quality_{k}"][i])}
    return {
        "schema_version": 1,
        "device_id": device_id,
        "region_id": region_id,
        "site_type": site_type,
        "window_start": window_start,
        "window_end": window_end,
        "n_observations": int(stats["n_observations"][i]),
        "n_abstained": int(stats["n_abstained"][i]),
        "valence_mean": float(stats["valence_mean"][i]),
        "arousal_mean": float(stats["arousal_mean"][i]),
        "valence_sd": float(stats["valence_sd"][i]),
        "arousal_sd": float(stats["arousal_sd"][i]),
        "distress_share": float(stats["distress_share"][i]),
        "confidence_mean": float(stats["confidence_mean"][i]),
        "quality": quality,
        "modality": modality,
        "model_version": model_version,
        "dp_epsilon": _nan_to_none(float(stats["dp_epsilon"][i])),
    }


# -- one device ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowResult:
    """Outcome of closing one window: an AffectWindow to publish, or the reason it is suppressed."""

    window_start: datetime
    window_end: datetime
    n_scored: int
    n_abstained: int
    window: dict | None = None
    reason: str | None = None

    @property
    def emitted(self) -> bool:
        return self.window is not None

    def struct(self) -> AffectWindow:
        """The window as a validated ``AffectWindow`` (raises if it was suppressed)."""
        if self.window is None:
            raise ValueError(f"window {self.window_start.isoformat()} was suppressed: {self.reason}")
        return msgspec.convert(self.window, AffectWindow)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.struct())


@dataclass
class _Buffer:
    valence: list[float] = field(default_factory=list)
    arousal: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    quality: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in QUALITY_KEYS})


class EdgeAggregator:
    """Streaming aggregator for one device.

    >>> agg = EdgeAggregator("cam-serial-0042", "06", secret=b"maker-secret", model_version="v1.3")
    >>> agg.add(ts, valence=-0.2, arousal=0.5, confidence=0.9, quality={"lighting": 0.8})
    >>> for result in agg.flush(now):          # windows that ended before ``now``
    ...     if result.emitted: publish(result.to_json())

    Raw observations stay in memory only until their window closes.
    """

    def __init__(
        self,
        hardware_id: str,
        region_id: str,
        *,
        secret: str | bytes,
        model_version: str,
        site_type: str = "ed",
        modality: str = "face",
        window_minutes: int = 60,
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        epsilon: float | None = None,
        k_min: int | None = None,
        settings: Settings | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        s = settings or get_settings()
        self.hardware_id = hardware_id
        self.region_id = region_id
        self.secret = secret
        self.model_version = model_version
        self.site_type = site_type
        self.modality = modality
        self.window_minutes = window_minutes
        self.confidence_threshold = confidence_threshold
        self.epsilon = epsilon
        self.k_min = k_min if k_min is not None else s.privacy.k_min
        self.rng = rng or np.random.default_rng()
        align_window(datetime.now(timezone.utc), window_minutes)  # validates the length
        self._open: dict[datetime, _Buffer] = {}

    def add(
        self,
        ts: datetime,
        valence: float,
        arousal: float,
        confidence: float,
        quality: Mapping[str, float] | None = None,
    ) -> None:
        """Buffer one observation of the on-device model."""
        for name, value, lo, hi in (("valence", valence, -1, 1), ("arousal", arousal, -1, 1), ("confidence", confidence, 0, 1)):
            if not (lo <= value <= hi):  # also rejects NaN
                raise ValueError(f"{name}={float(value)!r} is outside [{lo}, {hi}]")
        quality = dict(quality or {})
        unknown = set(quality) - set(QUALITY_KEYS)
        if unknown:
            raise ValueError(f"unknown quality keys {sorted(unknown)}; allowed: {list(QUALITY_KEYS)}")
        start, _ = align_window(ts, self.window_minutes)
        buf = self._open.setdefault(start, _Buffer())
        buf.valence.append(float(valence))
        buf.arousal.append(float(arousal))
        buf.confidence.append(float(confidence))
        for key in QUALITY_KEYS:
            value = quality.get(key)
            buf.quality[key].append(math.nan if value is None else float(value))

    def flush(self, now: datetime | None = None) -> list[WindowResult]:
        """Close and aggregate every window that ended at or before ``now`` (all windows if None)."""
        length = timedelta(minutes=self.window_minutes)
        due = sorted(s for s in self._open if now is None or s + length <= now)
        return [self._close(start, start + length, self._open.pop(start)) for start in due]

    def _close(self, start: datetime, end: datetime, buf: _Buffer) -> WindowResult:
        seg = np.zeros(len(buf.valence), dtype=np.int64)
        stats = aggregate_segments(
            seg, 1, np.array(buf.valence), np.array(buf.arousal), np.array(buf.confidence),
            k_min=self.k_min, confidence_threshold=self.confidence_threshold, epsilon=self.epsilon,
            quality={k: np.array(v) for k, v in buf.quality.items()}, rng=self.rng,
        )
        n, ab = int(stats["n_observations"][0]), int(stats["n_abstained"][0])
        if stats["reason"][0] is not None:
            return WindowResult(start, end, n, ab, reason=stats["reason"][0])
        record = window_record(
            stats, 0, device_id=pseudonymous_device_id(self.hardware_id, start, self.secret),
            region_id=self.region_id, site_type=self.site_type, modality=self.modality,
            model_version=self.model_version, window_start=start, window_end=end,
        )
        return WindowResult(start, end, n, ab, window=record)


def aggregate_window(
    observations: Iterable[tuple[float, float, float]] | np.ndarray,
    *,
    hardware_id: str,
    region_id: str,
    window_start: datetime,
    secret: str | bytes,
    model_version: str,
    window_minutes: int = 60,
    site_type: str = "ed",
    modality: str = "face",
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    epsilon: float | None = None,
    quality: Mapping[str, Iterable[float]] | None = None,
    k_min: int | None = None,
    settings: Settings | None = None,
    rng: np.random.Generator | None = None,
) -> WindowResult:
    """Aggregate one window's (valence, arousal, confidence) observations (batch form of ``EdgeAggregator``)."""
    obs = np.asarray(list(observations) if not isinstance(observations, np.ndarray) else observations, dtype=float)
    obs = obs.reshape(-1, 3)
    _check_range("valence", obs[:, 0], -1.0, 1.0)
    _check_range("arousal", obs[:, 1], -1.0, 1.0)
    _check_range("confidence", obs[:, 2], 0.0, 1.0)
    start, end = align_window(window_start, window_minutes)
    if start != window_start.astimezone(timezone.utc):
        raise ValueError(f"window_start {window_start.isoformat()} is not aligned to {window_minutes}-minute windows (nearest start {start.isoformat()})")
    agg = EdgeAggregator(
        hardware_id, region_id, secret=secret, model_version=model_version, site_type=site_type,
        modality=modality, window_minutes=window_minutes, confidence_threshold=confidence_threshold,
        epsilon=epsilon, k_min=k_min, settings=settings, rng=rng,
    )
    q = {k: list(v) for k, v in (quality or {}).items()}
    for key, values in q.items():
        if len(values) != len(obs):
            raise ValueError(f"quality[{key!r}] has {len(values)} values for {len(obs)} observations")
    for i, (v, a, c) in enumerate(obs):
        agg.add(start, v, a, c, {k: vals[i] for k, vals in q.items()})
    results = agg.flush()
    return results[0] if results else WindowResult(start, end, 0, 0, reason=REASON_NO_OBSERVATIONS)
