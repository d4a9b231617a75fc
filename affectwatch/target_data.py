"""FluSight target-data columns, the one place the backtest's reader (:mod:`analytics.hubverse`) and
``symptoms load`` (:mod:`ingest.load_symptoms`) read them from.

Two layouts of the same data are in use:

* the FluSight hub's ``target-hospital-admissions.csv`` (2023-24 and before; also this repository's
  ``data/flusight/``): ``date, location, value`` [, ``location_name``, ``weekly_rate``];
* the hubverse time series (``target-data/time-series.csv`` from 2024-25, also partitioned into
  ``time-series/as_of=YYYY-MM-DD/`` folders): ``as_of, target, target_end_date, location,
  location_name, observation, weekly_rate``.

``as_of`` is the date a vintage was published (the hub uses the reference date it applies to);
``target`` names what is counted, and a file may hold several (e.g. admissions and ED-visit shares).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from affectwatch.syndromes import FLUSIGHT_ADMISSIONS

DATE = ("date", "target_end_date")
VALUE = ("value", "observation")
LOCATION = ("location", "region_id")
VINTAGE = "as_of"
TARGET = "target"
HOSP_TARGET = f"wk inc {FLUSIGHT_ADMISSIONS}"  # FluSight's weekly influenza admissions: chosen when a file holds several
HELP = ("Target data: a CSV (date, location, value [, as_of]; or the FluSight hub's time series: as_of, target, "
        "target_end_date, location, observation) or a folder of as_of=YYYY-MM-DD partitions.")  # CLI options
PARTITION_RE = re.compile(r"(?:^|[\\/])as_of=(\d{4}-\d{2}-\d{2})(?:[\\/]|$)")


def first_present(columns: Iterable[str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that is a column (exact names, as the hub writes them)."""
    cols = set(columns)
    return next((n for n in names if n in cols), None)


def choose_target(targets: Iterable[str], wanted: str | None = None) -> str:
    """Which ``target`` of a file to read: ``wanted`` if given, else the file's only target, else
    FluSight's admissions target. Raises ValueError naming the targets when that is ambiguous."""
    found = sorted({str(t) for t in targets})
    if wanted is not None:
        if wanted not in found:
            raise ValueError(f"target {wanted!r} is not in the file; its targets: {found}")
        return wanted
    if len(found) == 1:
        return found[0]
    if HOSP_TARGET in found:
        return HOSP_TARGET
    raise ValueError(f"the file holds several targets {found}: choose one (--target)")


def partition_as_of(path: str) -> str | None:
    """``as_of`` from a hive-style folder name (``.../as_of=2025-01-11/time-series.csv``)."""
    m = PARTITION_RE.search(str(path))
    return m.group(1) if m else None
