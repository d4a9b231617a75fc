"""Build an affect-features CSV (``location, date, <features>, n_devices, n_observations,
suppression``) from the device-fleet simulator, driven by a FluSight target-data CSV, so that a
user can reproduce the lift demonstration without Kafka or the warehouse. All values are SIMULATED.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.settings import Settings

log = get_logger(__name__)


def simulate_affect(target_csv: str | Path, scenario: str = "lead", *, regions: list[str] | None = None,
                    start=None, end=None, devices_per_region: int = 10, window_minutes: int = 1440,
                    lead_days: int = 14, seed: int = 0, freq: str = "W",
                    settings: Settings | None = None) -> pd.DataFrame:
    """Simulated affect windows for the target series' regions, aggregated to region-periods."""
    from analytics.panels import affect_features
    from ingest.simulate import affect_frame, load_series

    series = load_series(target_csv)
    windows = affect_frame(series, scenario, start=start, end=end, regions=regions,
                           devices_per_region=devices_per_region, window_minutes=window_minutes,
                           lead_days=lead_days, seed=seed, settings=settings)
    feats = affect_features(windows=windows, freq=freq, settings=settings)
    log.info("simulated affect features", scenario=scenario, windows=len(windows), cells=len(feats),
             regions=feats["location"].nunique())
    return feats


def write_affect_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False)
    return path
