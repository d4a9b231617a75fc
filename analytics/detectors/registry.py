"""The one list of outbreak detectors: name, function, which data frequencies it suits, default settings.

Everything that names a detector reads it from here: ``analytics/detect.py`` (the entry point),
``alerts/rules.py`` (which methods a rule may use on a daily or weekly signal), the alert engine
(per-frequency default parameters), the CLI (``affectwatch detect --method``, ``affectwatch detect
methods``) and the benchmarks.

Frequency applicability - why:
* EARS C1-C3, ESSENCE EWMA / regression / switch and CUSUM compare the current value with a short
  rolling baseline (7-28 periods, day-of-week terms). That suits daily syndromic counts. On weekly
  seasonal data a 28-period baseline is half a year: every seasonal rise is "unusual", and these
  detectors flagged 27-30 % of all weekly ILINet values 2010-2023 (issue #14). They are daily-only.
* Farrington flexible and Noufaily compare the current value with the same time of year in past
  years (seasonal baseline, past outbreaks down-weighted) - the designs used for weekly
  notifiable-disease and ILI surveillance. Weekly (period 52); daily with period 365 is allowed.
* Serfling-type seasonal regression (harmonic terms fitted on the non-epidemic weeks of past
  years) with an alarm only while the series grows: weekly ILI percentages.
* ``affect-anomaly`` (hour-of-week baseline) is daily; ``forecast-exceedance`` reads the weekly
  hub forecasts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from analytics.detectors import cusum as _cusum
from analytics.detectors import ears, essence, farrington, serfling
from analytics.detectors.base import Result

FREQUENCIES = ("daily", "weekly")


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    summary: str
    frequencies: tuple[str, ...]
    func: Callable[..., Result] | None = None  # None: run by the alert engine itself (special methods)
    seasonal: bool = False  # needs the seasonal period (52 weekly / 365 daily)
    uses_dow: bool = False  # day-of-week terms on daily data
    has_p_value: bool = True
    defaults: dict[str, dict] = field(default_factory=dict)  # frequency -> default parameters

    def params(self, frequency: str, overrides: dict | None = None) -> dict:
        """Default parameters for this data frequency, overridden by a rule's ``params``."""
        return {**self.defaults.get(frequency, {}), **(overrides or {})}


_DAILY = ("daily",)
_WEEKLY = ("weekly",)
_BOTH = ("daily", "weekly")

REGISTRY: dict[str, DetectorInfo] = {d.name: d for d in (
    DetectorInfo("ears-c1", "CDC EARS C1: 7-day baseline, no guard band", _DAILY, ears.c1, has_p_value=False),
    DetectorInfo("ears-c2", "CDC EARS C2: 7-day baseline after a 2-day guard band", _DAILY, ears.c2, has_p_value=False),
    DetectorInfo("ears-c3", "CDC EARS C3: sum of the last three C2 statistics", _DAILY, ears.c3, has_p_value=False),
    DetectorInfo("ewma", "ESSENCE EWMA over a 28-day baseline, Student-t p-value", _DAILY, essence.ewma),
    DetectorInfo("regression", "ESSENCE linear regression with day-of-week terms", _DAILY, essence.regression,
                 uses_dow=True),
    DetectorInfo("switch", "ESSENCE regression/EWMA switch (adjusted R^2 >= 0.60)", _DAILY, essence.switch,
                 uses_dow=True),
    DetectorInfo("cusum", "upper CUSUM on a 28-day rolling baseline", _DAILY, _cusum.cusum, has_p_value=False),
    DetectorInfo("farrington", "Farrington flexible: quasi-Poisson GLM on the same weeks of past years", _BOTH,
                 farrington.farrington, seasonal=True),
    DetectorInfo("noufaily", "Noufaily: Farrington with a 10-level seasonal factor, negative-binomial threshold",
                 _BOTH, farrington.noufaily, seasonal=True),
    DetectorInfo("serfling", "seasonal regression on non-epidemic weeks + growth alarm (weekly ILI %)", _WEEKLY,
                 serfling.serfling, seasonal=True),
    DetectorInfo("affect-anomaly", "robust hour-of-week baseline of the affect distress share", _DAILY),
    DetectorInfo("forecast-exceedance", "P(next period > region threshold) from the newest quantile forecast",
                 _WEEKLY, has_p_value=False),
)}

# methods ``analytics.detect.detect`` runs on any count series; the others are run by the alert engine
METHODS: tuple[str, ...] = tuple(n for n, d in REGISTRY.items() if d.func is not None)
SPECIAL_METHODS: tuple[str, ...] = tuple(n for n, d in REGISTRY.items() if d.func is None)
ALL_METHODS: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> DetectorInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(ALL_METHODS)}") from None


def for_frequency(frequency: str) -> tuple[str, ...]:
    """Detectors applicable to data of this frequency ('daily' or 'weekly')."""
    return tuple(n for n, d in REGISTRY.items() if frequency in d.frequencies)


def table() -> list[dict]:
    """The registry as rows (for ``affectwatch detect methods`` and the README)."""
    return [{"method": d.name, "frequencies": ",".join(d.frequencies), "p_value": d.has_p_value,
             "seasonal": d.seasonal, "summary": d.summary} for d in REGISTRY.values()]
