"""Explicit missingness / suppression codes (after Delphi's nancodes) and their labels.

Only the codes and labels live here. The rule that assigns them to a region-period affect cell
is defined once, in SQL: ``sql/views/intermediate/int_affect_cells.sql`` (read through
``analyst.affect_cells``). A cell that fails the rules carries a code and a NULL value, never
a silent zero or NaN; the same integers are used in SQL views, the dashboard, alerts and emails.
"""
from __future__ import annotations

from enum import IntEnum

from affectwatch.settings import PrivacySettings, get_settings

# Codes a consumer must treat as "a small cell could be revealed": never show its value.
PRIVACY_CODES = frozenset({1, 2, 5, 6})


class Suppression(IntEnum):
    NOT_SUPPRESSED = 0
    TOO_FEW_OBSERVATIONS = 1  # fewer than k_min scored observations in the cell
    TOO_FEW_DEVICES = 2  # fewer than min_devices distinct devices in the cell
    NO_DATA = 3  # no windows at all for the cell
    LOW_QUALITY = 4  # data present but capture quality below min_quality
    COMPLEMENTARY = 5  # meets the minimums, but publishing it would reveal a suppressed finer cell
    TOO_SMALL_SAMPLE = 6  # survey estimate whose sample size is missing or below min_survey_sample_size

    def label_for(self, privacy: PrivacySettings) -> str:
        """Human-readable label, with the configured minimums (never hard-coded numbers)."""
        return labels(privacy)[int(self)]

    @property
    def label(self) -> str:
        """Label with the minimums of the current settings."""
        return self.label_for(get_settings().privacy)


def labels(privacy: PrivacySettings) -> dict[int, str]:
    """{code: label} built from the privacy settings (installed as ``analyst.staging.privacy_labels``)."""
    return {
        0: "ok",
        1: f"suppressed: fewer than {privacy.k_min} scored observations",
        2: f"suppressed: fewer than {privacy.min_devices} devices",
        3: "no data",
        4: f"insufficient quality (below {privacy.min_quality:g})",
        5: "suppressed: would reveal a smaller cell by differencing",
        6: f"suppressed: survey sample size below {privacy.min_survey_sample_size}",
    }
