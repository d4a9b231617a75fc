"""MMWR (CDC epidemiological) weeks, the one week definition of the product: Sunday..Saturday; week 1 is the first week of the year with
at least four days in that calendar year, i.e. the week containing 4 January."""
from __future__ import annotations

from datetime import date, timedelta


def year_start(year: int) -> date:
    """Sunday that starts MMWR week 1 of ``year``."""
    jan4 = date(year, 1, 4)
    return jan4 - timedelta(days=(jan4.weekday() + 1) % 7)  # back to Sunday


def weeks_in_year(year: int) -> int:
    return (year_start(year + 1) - year_start(year)).days // 7


def week_end(year: int, week: int) -> date:
    """Saturday ending MMWR week ``week`` of ``year`` (raises for a week the year does not have)."""
    if not 1 <= week <= weeks_in_year(year):
        raise ValueError(f"MMWR year {year} has weeks 1..{weeks_in_year(year)}, not {week}")
    return year_start(year) + timedelta(days=7 * week - 1)


def week_start(year: int, week: int) -> date:
    return week_end(year, week) - timedelta(days=6)


def sunday_of(day: date) -> date:
    """The Sunday that starts the MMWR week containing ``day``."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def mmwr_week(day: date) -> tuple[int, int]:
    """(MMWR year, week) that ``day`` falls in."""
    year = day.year + 1
    while year_start(year) > day:
        year -= 1
    return year, (day - year_start(year)).days // 7 + 1


def is_week_end(day: date) -> bool:
    return day.weekday() == 5  # Saturday
