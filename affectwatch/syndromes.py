"""Default syndrome names, the one place loaders and forecasters read them from.

``load-symptoms`` names a file's syndrome by its kind unless the user passes ``--syndrome``: ILINet
exports are ``ili``, FluSight admissions counts ``flu_admissions``, FluSight ED-visit shares
``flu_ed_visits``. The pooled forecasting models treat an ILI target differently from a
laboratory-confirmed one (they keep ILINet's non-influenza floor in their extra training data).
"""
from __future__ import annotations

ILI = "ili"
FLU_ADMISSIONS = "flu_admissions"
FLU_ED_VISITS = "flu_ed_visits"
FLUSIGHT_ADMISSIONS = "flu hosp"  # FluSight's name for the same counts (its target "wk inc flu hosp")


def is_ili(syndrome: str) -> bool:
    """The syndrome counts influenza-like illness (any cause), not laboratory-confirmed influenza."""
    return syndrome.strip().lower() == ILI


def is_flu_admissions(syndrome: str) -> bool:
    """The syndrome counts laboratory-confirmed influenza admissions (NHSN), by our name or FluSight's."""
    return syndrome.strip().lower() in (FLU_ADMISSIONS, FLUSIGHT_ADMISSIONS)
