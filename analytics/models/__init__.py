"""Forecasting models with one interface (fit on a panel's history, predict quantiles).

Names: ``baseline``, ``glm`` / ``glm_affect``, ``qr`` / ``qr_affect``, ``ets`` / ``ets_affect``,
``gbq`` / ``gbq_affect`` and ``qar`` / ``qar_affect`` (pooled over locations and ILINet seasons);
ensembles are built in :mod:`analytics.models.ensemble`.
"""
from __future__ import annotations

from analytics.models.base import Model, Panel, SeriesFailure
from analytics.models.baseline import Baseline
from analytics.models.glm import GLMModel
from analytics.models.quantreg import QuantRegModel

from analytics.models.ensemble import CHOSEN

# Members of the ensembles: the validated choice (weekly data); the pooled models are weekly only,
# so daily panels keep the per-series ensemble (median of glm, qr, ets; not validated on daily data).
PER_SERIES_COMPONENTS = ("glm", "qr", "ets")
COMPONENTS = tuple(CHOSEN["members"]) if CHOSEN else PER_SERIES_COMPONENTS
FUSABLE = ("glm", "qr", "gbq", "qar")


def make_model(name: str, *, affect_features: tuple[str, ...] | None = None, seed: int = 0) -> Model:
    """Build a model by name; ``<name>_affect`` is the affect-fused variant."""
    base, _, suffix = name.partition("_")
    fused = suffix == "affect"
    if suffix and not fused:
        raise ValueError(f"unknown model {name!r}: the only suffix is '_affect'")
    if base == "baseline" and not fused:
        return Baseline(seed=seed)
    if base == "glm":
        return GLMModel(affect=fused, affect_features=affect_features, seed=seed)
    if base == "qr":
        return QuantRegModel(affect=fused, affect_features=affect_features)
    if base in ("gbq", "qar"):
        from analytics.models.pooled import PooledModel

        return PooledModel(kind=base, affect=fused, affect_features=affect_features, seed=seed)
    if base == "ets":
        from analytics.models.ets import ETSModel

        return ETSModel(affect=fused, affect_features=affect_features, seed=seed)
    raise ValueError(f"unknown model {name!r}; known: baseline, glm, qr, ets, gbq, qar (each with _affect), ensemble, ensemble_affect")


def components_for(freq: str, components: tuple[str, ...] | list[str] = COMPONENTS) -> tuple[str, ...]:
    """Ensemble members usable on a panel of frequency ``freq``: ``components`` unless one of them
    needs weekly data and the panel is not weekly (then the per-series members)."""
    if freq != "W" and any(getattr(make_model(c), "weekly_only", False) for c in components):
        return PER_SERIES_COMPONENTS
    return tuple(components)


__all__ = ["Model", "Panel", "SeriesFailure", "Baseline", "GLMModel", "QuantRegModel", "make_model", "COMPONENTS", "components_for"]
