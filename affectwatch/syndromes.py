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


def is_ili(syndrome: str) -> bool:
    """The syndrome counts influenza-like illness (any cause), not laboratory-confirmed influenza."""
    return syndrome.strip().lower() == ILI
