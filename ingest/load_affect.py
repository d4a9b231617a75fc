"""Load region-level survey affect indicators into ``survey_affect`` (modality ``survey``, REAL).

Survey affect (e.g. the COVID-19 Trends and Impact Survey's share of people feeling depressed) is
kept apart from device windows (``affect_windows``): it is an estimate with a standard error and an
effective sample size, and a day's value is known only from its ``issue`` date on.

Formats (``.csv`` or ``.csv.gz``):

* ``covidcast`` — a Delphi COVIDcast export: ``geo_value, signal, time_value, issue, value, stderr,
  sample_size`` [, ``lag, geo_type, data_source``]. ``geo_value`` is a lower-case state abbreviation
  (``geo_type`` state), a 5-digit county FIPS (``county``); ``nation`` rows are skipped. The indicator
  is the signal without its ``smoothed_`` prefix (``smoothed_wdepressed_7d`` -> ``wdepressed_7d``);
  the source is ``delphi-covidcast:<data_source>``.
* ``csv`` — plain: ``region_id, date, indicator, value, stderr, sample_size, issue, source``
  (region_id: state/county FIPS, H3 cell or US state name; stderr and sample_size may be empty).

Bad rows go to ``dead_letters`` (topic ``file:<name>``) with a named reason: ``bad_date``,
``not_a_number``, ``bad_region_id``, ``value_out_of_range`` (value outside [0, 100] percent, negative
stderr or sample size), ``issue_before_date`` (published before the day it describes),
``missing_field``, ``bad_indicator``, ``duplicate_issue`` (the same key and issue twice in a file) and
``conflicting_revision`` (a stored issue re-sent with another value). A file whose columns do not fit
raises ``AffectFileError``.

Revisions: the key is (region, date, indicator, source, issue). A later issue of the same day is a
revision stored next to the earlier one; re-loading an identical file adds nothing. ``as of D``
readers (``analytics.survey_affect.as_of``, the ``survey_affect_known_at`` view) use the latest issue
on or before D.
"""
from __future__ import annotations

import gzip
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.settings import Settings
from ingest.load_symptoms import (LOCATIONS_CSV, MISSING, _Bad, _date, _get, _norm, _number, _parse_csv, _region,
                                  _RowError, county_fips)

log = get_logger(__name__)

FORMATS = ("covidcast", "csv")
MODALITY = "survey"
COVIDCAST_COLUMNS = ("geo_value", "signal", "time_value", "issue", "value", "stderr", "sample_size")
PLAIN_COLUMNS = ("region_id", "date", "indicator", "value", "stderr", "sample_size", "issue", "source")
INDICATOR_RE = re.compile(r"^[a-z0-9_]{1,48}$")
EXTRA_ABBREVIATIONS = {"vi": "78", "gu": "66", "as": "60", "mp": "69"}
COLUMNS = ["region_id", "date", "indicator", "source", "value", "stderr", "sample_size", "issue"]


class AffectFileError(ValueError):
    """The file as a whole cannot be read (wrong format, missing columns, empty)."""


@dataclass
class AffectLoadResult:
    rows: int = 0  # rows written (new days and revisions)
    revisions: int = 0  # of those, later issues of a day already stored
    unchanged: int = 0  # rows already stored with the same issue and value
    skipped: int = 0  # national rows, declared-missing values
    dead_letters: int = 0
    fmt: str = ""
    reason_counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.fmt}: {self.rows} row(s) written ({self.revisions} revision(s)), {self.unchanged} unchanged, "
                f"{self.skipped} skipped, {self.dead_letters} dead letter(s); modality survey (REAL)")


@lru_cache(maxsize=1)
def state_abbreviations() -> dict[str, str]:
    """Lower-case US state abbreviation -> 2-digit FIPS (data/flusight/locations.csv + territories)."""
    loc = pd.read_csv(LOCATIONS_CSV, dtype=str)
    out = {a.lower(): f for a, f in zip(loc["abbreviation"], loc["location"]) if f != "US"}
    return EXTRA_ABBREVIATIONS | out


def _read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise AffectFileError(f"{path.name}: damaged gzip file ({exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AffectFileError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise AffectFileError(f"{path.name}: the file is empty")
    return lines


def _optional(v: str, col: str) -> float | None:
    if v.strip().lower() in MISSING:
        return None
    x = _number(v, col)
    if x < 0:
        raise _RowError("value_out_of_range", f"{col} {v!r} is negative")
    return x


def _row(region: str, day: str, indicator: str, value: str, stderr: str, n: str, issue: str, source: str) -> tuple:
    if value.strip().lower() in MISSING:
        raise _RowError("missing_field", "value is empty")
    d, iss = _date(day, "date"), _date(issue, "issue")
    if iss < d:
        raise _RowError("issue_before_date", f"issue {iss} is before the day {d} it describes")
    if not INDICATOR_RE.match(indicator):
        raise _RowError("bad_indicator", f"indicator {indicator!r} must be 1-48 characters of a-z, 0-9 and _")
    x = _number(value, "value")
    if not 0 <= x <= 100:
        raise _RowError("value_out_of_range", f"value {value!r} is not a percentage in [0, 100]")
    if not 1 <= len(source) <= 64:
        raise _RowError("missing_field", "source is empty or longer than 64 characters")
    return (region, d, indicator, source, x, _optional(stderr, "stderr"), _optional(n, "sample_size"), iss)


def _columns(header: list[str], needed: tuple[str, ...], name: str, fmt: str) -> dict[str, int]:
    norm = [_norm(h) for h in header]
    missing = [c for c in needed if _norm(c) not in norm]
    if missing:
        raise AffectFileError(f"{name}: {fmt} columns missing {missing}; needed {list(needed)}; found {header}")
    return {c: norm.index(_norm(c)) for c in needed}


def _covidcast_region(geo: str, geo_type: str) -> str | None:
    g, t = geo.strip().lower(), geo_type.strip().lower()
    if t == "nation" or g == "us":
        return None
    if t in ("", "state") and g in state_abbreviations():
        return state_abbreviations()[g]
    if t in ("", "county") and g.isdigit() and len(g) == 5 and g in county_fips():
        return g
    raise _RowError("bad_region_id", f"geo_value {geo!r} (geo_type {geo_type or 'state'!r}) is not a US state abbreviation or county FIPS")


def parse_file(path: str | Path, fmt: str = "covidcast") -> tuple[pd.DataFrame, list[_Bad], int]:
    """Validate a file without writing: (good rows as a frame of COLUMNS, bad rows, skipped count)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise AffectFileError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    parsed = _parse_csv(_read_lines(path), 0)
    if not parsed.rows:
        raise AffectFileError(f"{path.name}: no data rows after the header {parsed.header}")
    good, bad, skipped = [], [], 0
    if fmt == "covidcast":
        c = _columns(parsed.header, COVIDCAST_COLUMNS, path.name, "COVIDcast")
        norm = [_norm(h) for h in parsed.header]
        gt = norm.index("geotype") if "geotype" in norm else None
        ds = norm.index("datasource") if "datasource" in norm else None
    else:
        c = _columns(parsed.header, PLAIN_COLUMNS, path.name, "plain CSV")
    for rownum, line, vals, raw in parsed.rows:
        key = _get(vals, c["geo_value" if fmt == "covidcast" else "region_id"])
        try:
            if fmt == "covidcast":
                region = _covidcast_region(key, _get(vals, gt))
                if region is None:
                    skipped += 1
                    continue
                signal = _get(vals, c["signal"]).lower()
                indicator = signal.removeprefix("smoothed_")
                source = f"delphi-covidcast:{_get(vals, ds) or 'unknown'}"
                good.append(_row(region, _get(vals, c["time_value"]), indicator, _get(vals, c["value"]),
                                 _get(vals, c["stderr"]), _get(vals, c["sample_size"]), _get(vals, c["issue"]), source)
                            + (line, raw))
            else:
                region = _region(key, "region_id")
                good.append(_row(region, _get(vals, c["date"]), _get(vals, c["indicator"]).lower(), _get(vals, c["value"]),
                                 _get(vals, c["stderr"]), _get(vals, c["sample_size"]), _get(vals, c["issue"]),
                                 _get(vals, c["source"])) + (line, raw))
        except _RowError as err:
            bad.append(_Bad(line, raw, err.reason, f"row {rownum} (line {line}): {err}", key or None))
    df = pd.DataFrame(good, columns=[*COLUMNS, "_line", "_raw"])
    dup = df.duplicated(["region_id", "date", "indicator", "source", "issue"], keep="first")
    for line, raw, reg in df.loc[dup, ["_line", "_raw", "region_id"]].itertuples(index=False):
        bad.append(_Bad(line, raw, "duplicate_issue", f"line {line}: repeats region, date, indicator and issue of an earlier line", reg))
    df = df[~dup].drop(columns=["_raw"]).reset_index(drop=True)
    return df, bad, skipped


_NEW_ROWS_SQL = """
select c.*, s.value as stored_value,
       exists (select 1 from survey_affect p where p.region_id = c.region_id and p.date = c.date
               and p.indicator = c.indicator and p.source = c.source and p.issue < c.issue) as has_prior
from _sa_candidates c
left join survey_affect s
  on s.region_id = c.region_id and s.date = c.date and s.indicator = c.indicator
 and s.source = c.source and s.issue = c.issue
"""


def _write(con, df: pd.DataFrame, bad: list[_Bad], origin: str, loaded_at: datetime) -> tuple[int, int, int]:
    """Write one load inside the caller's transaction (``affectwatch.warehouse.transaction``)."""
    con.register("_sa_candidates", df.drop(columns=["_line"]))
    try:
        cand = con.execute(_NEW_ROWS_SQL).df() if len(df) else df.assign(stored_value=[], has_prior=[])
        stored = cand["stored_value"].notna()
        conflict = stored & ((cand["stored_value"] - cand["value"]).abs() > 1e-9)
        lines = dict(zip(zip(df["region_id"], df["date"], df["indicator"], df["issue"]), df["_line"]))
        for r in cand[conflict].itertuples(index=False):
            line = lines.get((r.region_id, r.date, r.indicator, r.issue), 0)
            bad.append(_Bad(line, f"{r.region_id},{r.date},{r.indicator},{r.value},{r.issue}".encode(), "conflicting_revision",
                            f"line {line}: issue {r.issue} of {r.region_id} {r.date} {r.indicator} is stored as "
                            f"{r.stored_value}, the file says {r.value}", r.region_id))
        new = cand[~stored].drop(columns=["stored_value"])
        if len(new):
            con.register("_sa_new", new)
            con.execute(
                """insert into survey_affect (region_id, date, indicator, source, modality, value, stderr, sample_size,
                       issue, origin, loaded_at)
                   select region_id, date, indicator, source, ?, value, stderr, sample_size, issue, ?, ? from _sa_new""",
                [MODALITY, origin, loaded_at])
        if bad:
            dead = pd.DataFrame({"message_key": [b.key.encode() if b.key else None for b in bad],
                                 "raw": [b.raw for b in bad], "reason": [b.reason for b in bad],
                                 "detail": [b.detail for b in bad]})
            con.register("_sa_dead", dead)
            con.execute(
                """insert into dead_letters (topic, kafka_partition, kafka_offset, message_key, raw, reason, detail,
                       produced_at, received_at)
                   select ?, null, null, message_key, raw, reason, detail, null, ? from _sa_dead""",
                [origin, loaded_at])
    finally:
        for name in ("_sa_candidates", "_sa_new", "_sa_dead"):
            try:
                con.unregister(name)
            except Exception:
                pass
    return len(new), int(new["has_prior"].sum()) if len(new) else 0, int((stored & ~conflict).sum())


def load_file(path: str | Path, settings: Settings | None = None, fmt: str = "covidcast", *, con=None) -> AffectLoadResult:
    """Load one survey-affect file into ``survey_affect``; invalid rows go to ``dead_letters``. One transaction."""
    from affectwatch.warehouse import migrate, session, transaction

    path = Path(path)
    df, bad, skipped = parse_file(path, fmt)
    origin, loaded_at = f"file:{path.name}", datetime.now(timezone.utc)
    own = con is None
    with session(settings, con=con) as con:
        if own:
            migrate(con)

        def attempt():
            errs = list(bad)  # a retried transaction must not count conflicts twice
            return (*_write(con, df, errs, origin, loaded_at), errs)

        written, revisions, unchanged, errs = transaction(con, attempt, what="survey affect load")
    res = AffectLoadResult(written, revisions, unchanged, skipped, len(errs), fmt, dict(Counter(b.reason for b in errs)))
    log.info("survey affect file loaded", file=path.name, fmt=fmt, rows=written, revisions=revisions,
             unchanged=unchanged, skipped=skipped, dead_letters=len(errs))
    return res


def fixture_frame(path: str | Path, states: tuple[str, ...] = ("06", "36", "48"), start: str = "2022-01-01",
                  end: str = "2022-01-31") -> pd.DataFrame:
    """``survey_affect`` rows for the fixture warehouse: real rows of ``path`` for a few states and days,
    plus one later revision and one cell below the minimum sample size (so every view has rows of each kind)."""
    df, _, _ = parse_file(path)
    df = df[df["region_id"].isin(states) & (df["date"] >= date.fromisoformat(start)) & (df["date"] <= date.fromisoformat(end))]
    df = df.drop(columns=["_line"]).reset_index(drop=True)
    rev = df.iloc[[0]].assign(value=df["value"].iloc[0] + 0.5, issue=df["issue"].iloc[0] + pd.Timedelta(days=30))
    small = df.iloc[[1]].assign(sample_size=50.0)
    df = pd.concat([df.drop(index=1), rev, small], ignore_index=True)
    loaded = datetime(2022, 3, 1, tzinfo=timezone.utc)
    return df.assign(modality=MODALITY, origin=f"file:{Path(path).name}", loaded_at=loaded)
