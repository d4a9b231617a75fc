"""Explicit missingness / suppression codes (after Delphi's nancodes).

A region-period cell that fails the privacy rules carries a code and a NULL value, never a
silent zero or NaN. The same integers are used in SQL views, the dashboard and emails.
"""
from __future__ import annotations

from enum import IntEnum


class Suppression(IntEnum):
    NOT_SUPPRESSED = 0
    TOO_FEW_OBSERVATIONS = 1  # fewer than k_min observations in the cell
    TOO_FEW_DEVICES = 2  # fewer than min_devices distinct devices in the cell
    NO_DATA = 3  # no windows at all for the cell
    LOW_QUALITY = 4  # data present but below quality minimums (affect detectors abstain)
    TOO_SMALL_SAMPLE = 5  # survey estimate whose sample size is missing or below min_survey_sample_size

    @property
    def label(self) -> str:
        return {
            0: "ok",
            1: "suppressed: fewer than k_min observations",
            2: "suppressed: fewer than 3 devices",
            3: "no data",
            4: "insufficient quality",
            5: "suppressed: survey sample size below the minimum",
        }[int(self)]


def suppression_code(n_observations: int | None, n_devices: int | None, k_min: int = 11, min_devices: int = 3) -> Suppression:
    if not n_observations:
        return Suppression.NO_DATA
    if n_observations < k_min:
        return Suppression.TOO_FEW_OBSERVATIONS
    if (n_devices or 0) < min_devices:
        return Suppression.TOO_FEW_DEVICES
    return Suppression.NOT_SUPPRESSED
