"""Load syndromic CSV files into ``symptom_reports`` as SymptomReport v1 rows.

Formats (``fmt="auto"`` tells them apart by their header):

* ``flusight`` — FluSight target data: ``date`` (Saturday ending the MMWR week), ``location``
  (state FIPS or ``US``), ``value`` [, ``location_name``, ``weekly_rate``], or the hub's time series
  (:mod:`affectwatch.target_data`: ``target_end_date``, ``observation``, ``as_of``, ``target``). An
  ``as_of`` column is each row's ``reported_at`` (every vintage is kept as a revision); with a
  ``target`` column, one target's rows are read and the others skipped. National ``US`` rows are
  skipped (region ids are state/county FIPS or H3 cells). If every value lies in [0, 1] and some are
  fractional, the file holds *shares* (e.g. ``target-ed-visits-prop.csv``: share of ED visits that
  are influenza): a share is never turned into a count of people; it is stored as a count per
  1,000,000 visits with ``denominator = 1000000`` (a nominal denominator, so ``count/denominator``
  gives the share back), and ``source`` says ``(share x1e6)``.
* ``essence`` — ESSENCE/NSSP-style exports. Column names are matched case-insensitively, ignoring
  spaces, ``_`` and ``-``. Accepted aliases:

  - period end (required): ``date``, ``week_end``, ``week_ending``, ``week_end_date``, ``period_end``, ``end_date``, ``day``
  - period start (optional): ``period_start``, ``week_start``, ``start_date``
  - region (required): ``region_id``, ``fips``, ``county_fips``, ``state_fips``, ``geoid``, ``location``,
    ``region``, ``county``, ``state``, ``geography`` — FIPS codes (zeros stripped by spreadsheets are
    restored), H3 cells, or US state names
  - count (required): ``count``, ``data_count``, ``numerator``, ``visits``, ``n``
  - denominator (optional): ``all_count``, ``total``, ``total_visits``, ``all_visits``, ``denominator``
  - reported time (optional): ``reported_at``, ``report_date``, ``as_of``, ``issue_date``
  - syndrome (optional, else ``--syndrome``): ``syndrome``, ``ccdd_category``, ``category``

  Without a period-start column, a file whose dates are all Saturdays is read as MMWR weeks
  (period_start = date - 6 days); otherwise each row is one day.
* ``ilinet`` — CDC FluView ILINet state export (banner line, then ``REGION, YEAR, WEEK, ...``):
  ``ILITOTAL`` is the count, ``TOTAL PATIENTS`` the denominator, state names map to FIPS via
  ``data/flusight/locations.csv`` (plus the Virgin Islands and Northern Mariana Islands); New York
  City has no state FIPS code and is skipped; ``YEAR``/``WEEK`` become the MMWR week ending Saturday.

Values the source declares missing (``NA``, ``X``, empty) are skipped and counted. Rows with wrong
values go to ``dead_letters`` (topic ``file:<name>``) with a named reason and a detail such as
``row 17 (line 18): value 'abc' is not a number``. A file whose columns do not fit raises
``SymptomFileError`` naming the columns needed and found.

Revisions: every row gets ``reported_at`` from its column if present, else the load time. A row whose
(region, syndrome, period, count, denominator) equals the latest stored revision is skipped, so an
identical re-load adds nothing; a changed value is stored as a new revision next to the old one.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.settings import REPO_ROOT, Settings
from affectwatch import mmwr, syndromes
from affectwatch import target_data as TD
from ingest.contracts import REGION_RE

log = get_logger(__name__)

FORMATS = ("flusight", "essence", "ilinet")
SHARE_SCALE = 1_000_000
MISSING = {"", "na", "n/a", "nan", "x", "null", "none", "."}
LOCATIONS_CSV = REPO_ROOT / "data" / "flusight" / "locations.csv"
COUNTIES_GEOJSON = REPO_ROOT / "data" / "geo" / "us_counties_census2017_10m.geojson"
EXTRA_STATES = {"Virgin Islands": "78", "Commonwealth of the Northern Mariana Islands": "69", "Guam": "66",
                "American Samoa": "60"}
NOT_STATES = {"New York City"}  # ILINet reports NYC apart from New York state; it has no state FIPS

ALIASES = {  # readable names; matched after _norm() (case, spaces, '_' and '-' ignored)
    "date": ("date", "week_end", "week_ending", "week_end_date", "period_end", "end_date", "day"),
    "period_start": ("period_start", "week_start", "start_date"),
    "region": ("region_id", "fips", "county_fips", "state_fips", "geoid", "location", "region", "county", "state", "geography"),
    "count": ("count", "data_count", "numerator", "visits", "n"),
    "denominator": ("all_count", "total", "total_visits", "all_visits", "denominator"),
    "reported_at": ("reported_at", "report_date", "as_of", "issue_date"),
    "syndrome": ("syndrome", "ccdd_category", "category"),
}
ILINET_NEEDED = ("REGION", "YEAR", "WEEK", "ILITOTAL", "TOTAL PATIENTS")
SYNDROME_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class SymptomFileError(ValueError):
    """The file as a whole cannot be read (wrong format, missing columns, empty)."""


@dataclass
class LoadResult:
    rows: int = 0  # rows written (new periods and revisions)
    revisions: int = 0  # of those, rows that revise a period already stored
    dead_letters: int = 0  # rows rejected to dead_letters
    unchanged: int = 0  # rows equal to the latest stored revision (skipped)
    skipped: int = 0  # rows skipped on purpose: national totals, non-state regions, declared-missing values
    fmt: str = ""
    reason_counts: dict[str, int] = field(default_factory=dict)
    skip_counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        skipped = f" ({', '.join(f'{k}: {v}' for k, v in self.skip_counts.items())})" if self.skipped else ""
        return (f"{self.fmt}: {self.rows} row(s) written ({self.revisions} revision(s)), {self.unchanged} unchanged, "
                f"{self.skipped} skipped{skipped}, {self.dead_letters} dead letter(s)")


@dataclass
class _Bad:
    line: int
    raw: bytes
    reason: str
    detail: str
    key: str | None = None


@dataclass
class _Parsed:
    header: list[str]
    rows: list[tuple[int, int, list[str], bytes]]  # (row number, line number, values, raw bytes)


# -- reading -------------------------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _read(path: Path) -> tuple[str, list[str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SymptomFileError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise SymptomFileError(f"{path.name}: the file is empty")
    return text, lines


def _parse_csv(lines: list[str], skip: int) -> _Parsed:
    body = lines[skip:]
    reader = csv.reader(body)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise SymptomFileError("no header line") from None
    rows = []
    prev = reader.line_num
    for values in reader:
        raw = "".join(body[prev:reader.line_num]).rstrip("\r\n").encode()
        line = skip + prev + 1
        prev = reader.line_num
        if not any(v.strip() for v in values):
            continue
        rows.append((len(rows) + 1, line, [v.strip() for v in values], raw))
    return _Parsed(header, rows)


def detect_format(header: list[str], first_line: str) -> str | None:
    norm = {_norm(h) for h in header}
    if first_line.upper().startswith("PERCENTAGE OF VISITS") or {"ilitotal", "regiontype"} <= norm:
        return "ilinet"
    if all(any(_norm(a) in norm for a in names) for names in (TD.DATE, TD.LOCATION[:1], TD.VALUE)):
        return "flusight"
    if any(_norm(a) in norm for a in ALIASES["date"]) and any(_norm(a) in norm for a in ALIASES["count"]):
        return "essence"
    return None


def _format_help() -> str:
    return ("FluSight needs [date, location, value] (or the hub's time series: target_end_date, location, observation); ESSENCE/NSSP needs a date column (one of "
            f"{list(ALIASES['date'])}), a region column (one of {list(ALIASES['region'])}) and a count column "
            f"(one of {list(ALIASES['count'])}); ILINet needs a banner line then {list(ILINET_NEEDED)}")


# -- values --------------------------------------------------------------------------------------
class _RowError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _is_missing(v: str) -> bool:
    return v.strip().lower() in MISSING


def _date(v: str, col: str) -> date:
    s = v.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d"):
        try:
            return datetime.strptime(s[:10] if fmt == "%Y-%m-%d" else s, fmt).date()
        except ValueError:
            continue
    raise _RowError("bad_date", f"{col} {v!r} is not a date (YYYY-MM-DD or MM/DD/YYYY)")


def _timestamp(v: str, col: str) -> datetime:
    s = v.strip()
    try:
        ts = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        ts = datetime.combine(_date(s, col), datetime.min.time())
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _number(v: str, col: str) -> float:
    try:
        x = float(v.replace(",", "")) if re.fullmatch(r"[0-9.,eE+\-]+", v.strip()) else float("nan")
    except ValueError:
        x = float("nan")
    if math.isnan(x) or math.isinf(x):
        raise _RowError("not_a_number", f"{col} {v!r} is not a number")
    return x


def _count(v: str, col: str) -> int:
    x = _number(v, col)
    if x < 0:
        raise _RowError("value_out_of_range", f"{col} {v!r} is negative")
    if x != int(x):
        raise _RowError("not_integer", f"{col} {v!r} is not a whole number")
    return int(x)


@lru_cache(maxsize=1)
def state_fips() -> dict[str, str]:
    """US state/territory name -> 2-digit FIPS (data/flusight/locations.csv + territories)."""
    loc = pd.read_csv(LOCATIONS_CSV, dtype=str)
    out = {n: f for n, f in zip(loc["location_name"], loc["location"]) if f != "US"}
    return out | EXTRA_STATES


def _region(v: str, col: str) -> str:
    s = v.strip()
    states = state_fips()
    if s.isdigit() and len(s) in (1, 4):
        s = s.zfill(len(s) + 1)  # leading zero stripped by a spreadsheet
    if s in states:
        return states[s]
    s = s.lower() if not s.isdigit() else s
    if not REGION_RE.match(s):
        raise _RowError("bad_region_id", f"{col} {v!r} is not a state/county FIPS code, H3 cell or US state name")
    if s.isdigit() and s[:2] not in set(states.values()):
        raise _RowError("bad_region_id", f"{col} {v!r} is not a known state FIPS code")
    if s.isdigit() and len(s) == 5 and s not in county_fips():
        raise _RowError("bad_region_id", f"{col} {v!r} is not a county FIPS code (Census 2017 boundaries)")
    if not s.isdigit():
        import h3

        if not h3.is_valid_cell(s) or h3.get_resolution(s) > 7:
            raise _RowError("bad_region_id", f"{col} {v!r} is not a valid H3 cell of resolution <= 7")
    return s


@lru_cache(maxsize=1)
def county_fips() -> frozenset[str]:
    """5-digit county FIPS codes of data/geo (Census 2017 cartographic boundaries)."""
    import json

    geo = json.loads(COUNTIES_GEOJSON.read_text())
    return frozenset(str(f["id"]) for f in geo["features"])


# -- formats -------------------------------------------------------------------------------------
@dataclass
class _Candidate:
    line: int
    raw: bytes
    region_id: str
    syndrome: str
    period_start: date
    period_end: date
    count: int
    denominator: int | None
    source: str
    reported_at: datetime | None


class _Collector:
    def __init__(self, name: str):
        self.name = name
        self.good: list[_Candidate] = []
        self.bad: list[_Bad] = []
        self.skips: Counter = Counter()

    def reject(self, rownum: int, line: int, raw: bytes, err: _RowError, key: str | None = None) -> None:
        self.bad.append(_Bad(line, raw, err.reason, f"row {rownum} (line {line}): {err}", key))


def _columns(header: list[str], needed: dict[str, tuple[str, ...]], optional: tuple[str, ...], name: str, fmt: str) -> dict[str, int]:
    norm = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for role, aliases in needed.items():
        for a in aliases:
            if _norm(a) in norm:
                found[role] = norm.index(_norm(a))
                break
    missing = [r for r in needed if r not in found and r not in optional]
    if missing:
        need = "; ".join(f"{r}: one of {list(needed[r])}" for r in missing)
        raise SymptomFileError(f"{name}: {fmt} columns missing — needed {need}; found {header}")
    return found


def _get(values: list[str], idx: int | None) -> str:
    return values[idx] if idx is not None and idx < len(values) else ""


def _reported_at(vals: list[str], c: dict[str, int], header: list[str]) -> datetime | None:
    """The row's reported time from its ``reported_at`` column (if the file has one and it is filled)."""
    if "reported_at" not in c or _is_missing(_get(vals, c["reported_at"])):
        return None
    return _timestamp(_get(vals, c["reported_at"]), header[c["reported_at"]])


def _flusight(parsed: _Parsed, col: _Collector, syndrome: str | None, source: str | None) -> None:
    c = _columns(parsed.header, {"date": TD.DATE, "location": TD.LOCATION[:1], "value": TD.VALUE,
                                 "reported_at": (TD.VINTAGE,), "target": (TD.TARGET,)}, ("reported_at", "target"),
                 col.name, "FluSight")
    if "target" in c:  # the hub's time series may hold several targets: read one (affectwatch.target_data)
        try:
            chosen = TD.choose_target({_get(vals, c["target"]) for _, _, vals, _ in parsed.rows})
        except ValueError as exc:
            raise SymptomFileError(f"{col.name}: {exc}") from None
        rows = [r for r in parsed.rows if _get(r[2], c["target"]) == chosen]
        col.skips["other_target"] += len(parsed.rows) - len(rows)
        parsed = _Parsed(parsed.header, rows)
    values = []
    for rownum, line, vals, raw in parsed.rows:
        v = _get(vals, c["value"])
        try:
            values.append(None if _is_missing(v) else _number(v, "value"))
        except _RowError:
            values.append(None)
    nums = [x for x in values if x is not None]
    share = bool(nums) and max(nums) <= 1.0 and min(nums) >= 0 and any(x != int(x) for x in nums)
    syndrome = syndrome or (syndromes.FLU_ED_VISITS if share else syndromes.FLU_ADMISSIONS)
    base_source = source or ("flusight-nssp" if share else "flusight-nhsn")
    src = f"{base_source} (share x1e6)" if share else base_source
    for (rownum, line, vals, raw), _ in zip(parsed.rows, values):
        loc = _get(vals, c["location"])
        try:
            if loc.upper() == "US":
                col.skips["national_total"] += 1
                continue
            v = _get(vals, c["value"])
            if _is_missing(v):
                col.skips["missing_value"] += 1
                continue
            end = _date(_get(vals, c["date"]), parsed.header[c["date"]])
            if not mmwr.is_week_end(end):
                raise _RowError("bad_period", f"{parsed.header[c['date']]} {end} is a {end:%A}, not the Saturday ending an MMWR week")
            region = _region(loc, "location")
            x = _number(v, "value")
            if share:
                if not 0 <= x <= 1:
                    raise _RowError("value_out_of_range", f"value {v!r} is not a share in [0, 1]")
                count, denom = int(round(x * SHARE_SCALE)), SHARE_SCALE
            else:
                count, denom = _count(v, "value"), None
            rep = _reported_at(vals, c, parsed.header)  # a vintage's as_of: each vintage is kept as a revision
            col.good.append(_Candidate(line, raw, region, syndrome, end - timedelta(days=6), end, count, denom, src, rep))
        except _RowError as err:
            col.reject(rownum, line, raw, err, loc)


def _essence(parsed: _Parsed, col: _Collector, syndrome: str | None, source: str | None) -> None:
    optional = ("period_start", "denominator", "reported_at", "syndrome")
    c = _columns(parsed.header, ALIASES, optional, col.name, "ESSENCE/NSSP")
    if syndrome is None and "syndrome" not in c:
        raise SymptomFileError(f"{col.name}: no syndrome — pass --syndrome NAME or add a column (one of {list(ALIASES['syndrome'])}); found {parsed.header}")
    src = source or "essence"
    # MMWR weeks when there is no start column and every parseable date is a Saturday
    weekly = False
    if "period_start" not in c:
        days = []
        for _, _, vals, _ in parsed.rows:
            try:
                days.append(_date(_get(vals, c["date"]), "date"))
            except _RowError:
                pass
        weekly = bool(days) and all(mmwr.is_week_end(d) for d in days)
    for rownum, line, vals, raw in parsed.rows:
        reg = _get(vals, c["region"])
        try:
            cnt = _get(vals, c["count"])
            if _is_missing(cnt):
                col.skips["missing_value"] += 1
                continue
            end = _date(_get(vals, c["date"]), parsed.header[c["date"]])
            if "period_start" in c:
                start = _date(_get(vals, c["period_start"]), parsed.header[c["period_start"]])
                if start > end:
                    raise _RowError("bad_period", f"period start {start} is after period end {end}")
            else:
                start = end - timedelta(days=6) if weekly else end
            region = _region(reg, parsed.header[c["region"]])
            count = _count(cnt, parsed.header[c["count"]])
            denom = None
            if "denominator" in c and not _is_missing(_get(vals, c["denominator"])):
                denom = _count(_get(vals, c["denominator"]), parsed.header[c["denominator"]])
                if denom < count:
                    raise _RowError("value_out_of_range", f"{parsed.header[c['denominator']]} {denom} is below {parsed.header[c['count']]} {count}")
            syn = syndrome or _get(vals, c["syndrome"]).strip().lower()
            if not SYNDROME_RE.match(syn):
                raise _RowError("bad_syndrome", f"syndrome {syn!r} must be 1-32 characters of a-z, 0-9 and _")
            col.good.append(_Candidate(line, raw, region, syn, start, end, count, denom, src,
                                       _reported_at(vals, c, parsed.header)))
        except _RowError as err:
            col.reject(rownum, line, raw, err, reg)


def _ilinet(parsed: _Parsed, col: _Collector, syndrome: str | None, source: str | None) -> None:
    norm = [_norm(h) for h in parsed.header]
    missing = [h for h in ILINET_NEEDED if _norm(h) not in norm]
    if missing:
        raise SymptomFileError(f"{col.name}: ILINet columns missing — needed {list(ILINET_NEEDED)}; missing {missing}; found {parsed.header}")
    idx = {h: norm.index(_norm(h)) for h in ILINET_NEEDED}
    syndrome, src = syndrome or syndromes.ILI, source or "ilinet"
    states = state_fips()
    for rownum, line, vals, raw in parsed.rows:
        name = _get(vals, idx["REGION"])
        try:
            if name in NOT_STATES:
                col.skips["not_a_state"] += 1
                continue
            cnt = _get(vals, idx["ILITOTAL"])
            if _is_missing(cnt):
                col.skips["missing_value"] += 1
                continue
            if name not in states:
                raise _RowError("bad_region_id", f"REGION {name!r} is not a US state or territory name")
            year, week = _get(vals, idx["YEAR"]), _get(vals, idx["WEEK"])
            if not (year.isdigit() and week.isdigit()):
                raise _RowError("bad_period", f"YEAR {year!r} / WEEK {week!r} is not an MMWR year and week")
            try:
                end = mmwr.week_end(int(year), int(week))
            except ValueError as exc:
                raise _RowError("bad_period", str(exc)) from None
            count = _count(cnt, "ILITOTAL")
            tot = _get(vals, idx["TOTAL PATIENTS"])
            denom = None if _is_missing(tot) else _count(tot, "TOTAL PATIENTS")
            if denom is not None and denom < count:
                raise _RowError("value_out_of_range", f"TOTAL PATIENTS {denom} is below ILITOTAL {count}")
            col.good.append(_Candidate(line, raw, states[name], syndrome, end - timedelta(days=6), end, count, denom, src, None))
        except _RowError as err:
            col.reject(rownum, line, raw, err, name)


PARSERS = {"flusight": _flusight, "essence": _essence, "ilinet": _ilinet}


# -- writing -------------------------------------------------------------------------------------
def _dedupe_in_file(col: _Collector) -> None:
    seen: dict[tuple, int] = {}
    keep = []
    for cand in col.good:
        key = (cand.region_id, cand.syndrome, cand.period_start, cand.period_end, cand.reported_at)
        if key in seen:
            col.bad.append(_Bad(cand.line, cand.raw, "duplicate_period",
                                f"line {cand.line}: repeats region {cand.region_id}, syndrome {cand.syndrome}, "
                                f"period {cand.period_start}..{cand.period_end} of line {seen[key]}", cand.region_id))
            continue
        seen[key] = cand.line
        keep.append(cand)
    col.good = keep


_NEW_ROWS_SQL = """
with latest as (
    select region_id, syndrome, period_start, period_end, count, denominator
    from symptom_reports
    where syndrome in (select distinct syndrome from _sr_candidates)
      and period_end between (select min(period_end) from _sr_candidates) and (select max(period_end) from _sr_candidates)
    qualify row_number() over (
        partition by region_id, syndrome, period_start, period_end order by reported_at desc, ingested_at desc) = 1
)
select c.*, l.region_id is not null as has_prior
from _sr_candidates c
left join latest l
  on l.region_id = c.region_id and l.syndrome = c.syndrome
 and l.period_start = c.period_start and l.period_end = c.period_end
where l.region_id is null or l.count <> c.count or l.denominator is distinct from c.denominator
"""


def _write(con, col: _Collector, origin: str, loaded_at: datetime) -> tuple[int, int, int]:
    cands = pd.DataFrame({
        "region_id": [c.region_id for c in col.good],
        "syndrome": [c.syndrome for c in col.good],
        "period_start": pd.to_datetime([c.period_start for c in col.good]).date if col.good else [],
        "period_end": pd.to_datetime([c.period_end for c in col.good]).date if col.good else [],
        "count": pd.array([c.count for c in col.good], dtype="Int64"),
        "denominator": pd.array([c.denominator for c in col.good], dtype="Int64"),
        "source": [c.source for c in col.good],
        "reported_at": pd.to_datetime([c.reported_at or loaded_at for c in col.good], utc=True),
    })
    dead = pd.DataFrame({
        "topic": origin,
        "message_key": [b.key.encode() if b.key else None for b in col.bad],
        "raw": [b.raw for b in col.bad],
        "reason": [b.reason for b in col.bad],
        "detail": [b.detail for b in col.bad],
    })
    from affectwatch.warehouse import transaction

    def work() -> tuple[int, int]:
        written = revisions = 0
        if len(cands):
            new = con.execute(_NEW_ROWS_SQL).df()
            written, revisions = len(new), int(new["has_prior"].sum()) if len(new) else 0
            if written:
                con.register("_sr_new", new)
                con.execute(
                    """insert into symptom_reports (region_id, syndrome, period_start, period_end, count, denominator,
                           source, reported_at, schema_version, origin, kafka_partition, kafka_offset, ingested_at)
                       select region_id, syndrome, period_start, period_end, count, denominator, source, reported_at,
                              1, ?, null, null, ? from _sr_new""",
                    [origin, loaded_at],
                )
        if len(dead):
            con.execute(
                """insert into dead_letters (topic, kafka_partition, kafka_offset, message_key, raw, reason, detail,
                       produced_at, received_at)
                   select topic, null, null, message_key, raw, reason, detail, null, ? from _sr_dead""",
                [loaded_at],
            )
        return written, revisions

    con.register("_sr_candidates", cands)
    con.register("_sr_dead", dead)
    try:
        written, revisions = transaction(con, work, what="symptom file load")
    finally:
        con.unregister("_sr_candidates")
        con.unregister("_sr_dead")
        try:
            con.unregister("_sr_new")
        except Exception:
            pass
    return written, revisions, len(cands) - written


def parse_file(path: str | Path, syndrome: str | None = None, source: str | None = None, fmt: str = "auto") -> tuple[str, _Collector]:
    """Parse and validate a file without writing: (format, collector of good rows / bad rows / skips)."""
    path = Path(path)
    if fmt not in ("auto", *FORMATS):
        raise SymptomFileError(f"format {fmt!r} is not one of auto, {', '.join(FORMATS)}")
    if syndrome is not None and not SYNDROME_RE.match(syndrome):
        raise SymptomFileError(f"syndrome {syndrome!r} must be 1-32 characters of a-z, 0-9 and _")
    if source is not None and not 1 <= len(source) <= 52:
        raise SymptomFileError(f"source {source!r} must be 1-52 characters")
    _, lines = _read(path)
    banner = lines[0].upper().startswith("PERCENTAGE OF VISITS")
    try:
        parsed = _parse_csv(lines, 1 if banner else 0)
    except csv.Error as exc:
        raise SymptomFileError(f"{path.name}: not a readable CSV file ({exc})") from None
    detected = detect_format(parsed.header, lines[0])
    if fmt == "auto":
        if detected is None:
            raise SymptomFileError(f"{path.name}: cannot tell the format from the columns {parsed.header}. {_format_help()}")
        fmt = detected
    if not parsed.rows:
        raise SymptomFileError(f"{path.name}: no data rows after the header {parsed.header}")
    col = _Collector(path.name)
    PARSERS[fmt](parsed, col, syndrome, source)
    _dedupe_in_file(col)
    return fmt, col


def load_file(
    path: str | Path,
    settings: Settings | None = None,
    syndrome: str | None = None,
    source: str | None = None,
    fmt: str = "auto",
    *,
    con=None,
    reported_lag_days: int | None = None,
) -> LoadResult:
    """Load one CSV file into ``symptom_reports``; invalid rows go to ``dead_letters``. One transaction.

    Rows without a report time get the load time as ``reported_at`` — or, for a historical backfill
    with ``reported_lag_days``, ``period_end + reported_lag_days`` at 16:00 UTC, so that as-of queries
    ("what did we know then") see the file's values when they would have been published.
    """
    from affectwatch.warehouse import migrate, session

    path = Path(path)
    fmt, col = parse_file(path, syndrome, source, fmt)
    origin = f"file:{path.name}"
    loaded_at = datetime.now(timezone.utc)
    own = con is None
    with session(settings, con=con) as con:
        if own:
            migrate(con)
        if reported_lag_days is not None:
            if reported_lag_days < 0:
                raise SymptomFileError(f"reported_lag_days must be >= 0, got {reported_lag_days}")
            lag = timedelta(days=reported_lag_days, hours=16)
            for c in col.good:
                if c.reported_at is None:
                    c.reported_at = datetime.combine(c.period_end, datetime.min.time(), timezone.utc) + lag
        written, revisions, unchanged = _write(con, col, origin, loaded_at)
    reasons = dict(Counter(b.reason for b in col.bad))
    res = LoadResult(written, revisions, len(col.bad), unchanged, sum(col.skips.values()), fmt, reasons, dict(col.skips))
    log.info("symptom file loaded", file=path.name, fmt=fmt, rows=written, revisions=revisions, unchanged=unchanged,
             skipped=res.skipped, dead_letters=res.dead_letters)
    return res
