"""What every alert's evidence shares: the sparkline length and JSON-safe numbers.

Kept apart from ``alerts.engine`` so that the signal modules (``alerts.affect_signal``) and the
engine that dispatches to them import it, instead of each other.
"""
from __future__ import annotations

import numpy as np

SPARK_POINTS = 26  # periods of history carried in the evidence (sparkline)


def json_float(x) -> float | None:
    """A JSON/SQL-safe float (None for NaN/inf/None)."""
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None
