"""Map building: every pydeck layer of the dashboard is made by ``build_deck``.

- Choropleth of states or counties (GeoJsonLayer) from the vendored us-atlas boundaries in
  data/geo, simplified with geopandas once per deployment (disk cache, built at server start) to
  keep the browser payload small.
- H3HexagonLayer for H3-cell regions.
- Colour-blind-safe palettes: viridis for continuous signals, Okabe-Ito for alert levels.
- Suppressed cells are drawn in neutral grey with a diagonal hatch (PathLayer) and labelled in
  the tooltip, never as zero; cells without data are drawn pale and labelled "no data".
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pydeck as pdk
from pydeck.bindings.json_tools import default_serialize

from affectwatch import regions
from affectwatch.privacy import Suppression
from affectwatch.settings import REPO_ROOT

GEO_DIR = REPO_ROOT / "data" / "geo"
GEO_FILES = {"state": "us_states_census2017_10m.geojson", "county": "us_counties_census2017_10m.geojson"}
SIMPLIFY_TOLERANCE = {"state": 0.02, "county": 0.01}  # degrees
HATCH_SPACING = {"state": 0.45, "county": 0.12, "h3": 0.08}  # degrees between hatch lines
GEO_CACHE_DIR = Path(tempfile.gettempdir()) / "affectwatch-geo-cache"
GEO_CACHE_FORMAT = 2  # bump when the cached feature layout changes (2: hatch lines cached)
INITIAL_VIEW = {"latitude": 38.5, "longitude": -96.5, "zoom": 3.1}  # contiguous US
BLANK_STYLE_URL = "/app/static/blank_style.json"

# Okabe & Ito (2008) colour-blind-safe palette for alert levels.
ALERT_COLOURS = {
    "red": (213, 94, 0),  # vermillion
    "yellow": (230, 159, 0),  # orange
    "insufficient_data": (86, 180, 233),  # sky blue
    "none": (0, 158, 115),  # bluish green: data, no alert
}
ALERT_LABELS = {"red": "Red alert", "yellow": "Yellow alert", "insufficient_data": "Insufficient data",
                "none": "No alert"}
SUPPRESSED_COLOUR = (150, 150, 150)
NO_DATA_COLOUR = (232, 232, 232)
HATCH_COLOUR = (70, 70, 70)
LINE_COLOUR = (255, 255, 255)


@dataclass(frozen=True)
class MapLayerSpec:
    """What to draw: one row per region with ``region_id``, ``value``, ``lo``, ``hi``, ``suppression``."""

    geography: str  # 'state' | 'county' | 'h3'
    kind: str  # 'continuous' | 'alert'
    title: str
    value_format: str = "{:.2f}"


# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def boundaries(geography: str) -> dict[str, dict]:
    """Simplified boundary features by FIPS code: {fips: {"name", "geometry", "centroid"}}.

    Simplified and snapped to a 0.001 degree grid (vectorised shapely), which shrinks the county
    layer to a fraction of the vendored file. The result is cached in memory and on disk (keyed
    by the source file's size and mtime and the tolerance) so a new server process loads it fast.
    Each feature also carries its hatch lines (``hatch``: the pattern drawn over suppressed cells),
    which are as static as the outline.
    """
    if geography not in GEO_FILES:
        raise ValueError(f"geography {geography!r} has no boundary file; choose one of {sorted(GEO_FILES)}")
    src = GEO_DIR / GEO_FILES[geography]
    st_ = src.stat()
    cache = GEO_CACHE_DIR / (f"{geography}-{SIMPLIFY_TOLERANCE[geography]}-{HATCH_SPACING[geography]}-"
                             f"{st_.st_size}-{int(st_.st_mtime)}-v{GEO_CACHE_FORMAT}.json")
    try:
        return msgspec.json.decode(cache.read_bytes())  # several times faster than json for this 10 MB file
    except (OSError, msgspec.DecodeError):
        pass
    out = _simplify(src, SIMPLIFY_TOLERANCE[geography], HATCH_SPACING[geography])
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out, separators=(",", ":")))
        tmp.replace(cache)
    except OSError:  # read-only disk: memory cache only
        pass
    return out


def warm_geo_cache() -> float:
    """Load the simplified boundaries of every geography, building the disk cache if it is missing; seconds taken.
    `affectwatch dashboard` calls it to build the disk cache, the server process (``dashboard.serve.warm``)
    to hold them in memory before the first visitor."""
    import time

    t0 = time.perf_counter()
    for geography in GEO_FILES:
        boundaries(geography)
    return time.perf_counter() - t0


def _simplify(src, tolerance: float, hatch_spacing: float) -> dict[str, dict]:
    """Read the vendored boundaries with geopandas, simplify (topology kept) and snap them to 0.001
    degree; with each outline its hatch lines."""
    import geopandas as gpd
    import shapely

    feats = json.loads(src.read_text())["features"]
    fips = [str(f.get("id") or f["properties"].get("fips")) for f in feats]
    gdf = gpd.GeoDataFrame(
        {"fips": fips, "name": [f["properties"].get("name") or k for f, k in zip(feats, fips)]},
        geometry=shapely.from_geojson([json.dumps(f["geometry"]) for f in feats]), crs="EPSG:4326")
    gdf = gdf.set_geometry(gdf.geometry.simplify(tolerance, preserve_topology=True)
                           .set_precision(0.001, mode="pointwise"))
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    points = gdf.geometry.representative_point()
    shapes = shapely.to_geojson(gdf.geometry.values)
    return {fips: {"name": name, "geometry": json.loads(gj), "centroid": [pt.x, pt.y],
                   "hatch": _hatch_lines(geom, hatch_spacing)}
            for fips, name, gj, pt, geom in zip(gdf["fips"], gdf["name"], shapes, points, gdf.geometry.values)}


@lru_cache(maxsize=20_000)
def _hatch(geography: str, region_id: str) -> Sequence[Sequence[Sequence[float]]]:
    """Diagonal hatch lines clipped to a region's outline (states and counties: from the boundary
    cache; H3 cells: computed once per cell)."""
    if geography != "h3":
        feat = boundaries(geography).get(region_id)
        if feat is None:
            return ()
        if "hatch" in feat:
            return feat["hatch"]  # lists of [x, y] as decoded (read only)
    geom = _region_shape(geography, region_id)
    return _hatch_lines(geom, HATCH_SPACING[geography]) if geom is not None else ()


def _hatch_lines(geom, step: float) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Diagonal lines ``step`` degrees apart, clipped to ``geom``."""
    from shapely.geometry import LineString, MultiLineString

    minx, miny, maxx, maxy = geom.bounds
    lines = []
    k = minx - (maxy - miny)
    while k < maxx:
        lines.append(LineString([(k, miny), (k + (maxy - miny), maxy)]))
        k += step
    clipped = geom.intersection(MultiLineString(lines))
    parts = getattr(clipped, "geoms", [clipped])
    return tuple(tuple((round(x, 3), round(y, 3)) for x, y in p.coords) for p in parts
                 if p.geom_type == "LineString" and not p.is_empty)


def _region_shape(geography: str, region_id: str):
    if geography == "h3":
        import h3
        from shapely.geometry import Polygon

        if not h3.is_valid_cell(region_id):
            return None
        return Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(region_id)])
    from shapely.geometry import shape

    feat = boundaries(geography).get(region_id)
    return shape(feat["geometry"]) if feat else None


def geography_of(region_id: str) -> str:
    """'state' (2-digit FIPS), 'county' (5-digit FIPS), 'h3' (cell) or 'other'."""
    if len(region_id) == 2 and region_id.isdigit():
        return "state"
    if len(region_id) == 5 and region_id.isdigit():
        return "county"
    try:
        import h3

        if h3.is_valid_cell(region_id):
            return "h3"
    except Exception:  # pragma: no cover
        pass
    return "other"


region_name = regions.region_name  # the one region-name helper (affectwatch.regions)


# ---------------------------------------------------------------------------------------------
# colour
# ---------------------------------------------------------------------------------------------
# viridis (matplotlib) sampled at 11 stops; interpolated to 256 without importing matplotlib.
_VIRIDIS_STOPS = np.array([[68, 1, 84], [72, 36, 117], [65, 68, 135], [53, 95, 141], [42, 120, 142], [33, 145, 140],
                           [34, 168, 132], [68, 191, 112], [122, 209, 81], [189, 223, 38], [253, 231, 37]], float)


@lru_cache(maxsize=4)
def _viridis(n: int = 256) -> np.ndarray:
    x = np.linspace(0, 1, n)
    xp = np.linspace(0, 1, len(_VIRIDIS_STOPS))
    return np.stack([np.interp(x, xp, _VIRIDIS_STOPS[:, i]) for i in range(3)], axis=1).round().astype(int)


def continuous_colours(values: pd.Series, vmin: float, vmax: float) -> list[tuple[int, int, int]]:
    lut = _viridis()
    span = (vmax - vmin) or 1.0
    idx = ((values.astype(float) - vmin) / span).clip(0, 1).fillna(0) * (len(lut) - 1)
    return [tuple(int(c) for c in lut[int(i)]) for i in idx]


def value_range(values: pd.Series) -> tuple[float, float]:
    v = values.dropna().astype(float)
    if v.empty:
        return 0.0, 1.0
    lo, hi = float(v.quantile(0.02)), float(v.quantile(0.98))
    if math.isclose(lo, hi):
        lo, hi = float(v.min()), float(v.max()) + (1e-9 if math.isclose(v.min(), v.max()) else 0)
    return lo, hi


def legend_items(spec: MapLayerSpec, vmin: float, vmax: float) -> list[tuple[str, str]]:
    """(css background, label) pairs: gradient steps or alert levels, then suppressed and no data."""
    items: list[tuple[str, str]] = []
    if spec.kind == "alert":
        items += [(_css(c), ALERT_LABELS[k]) for k, c in ALERT_COLOURS.items()]
    else:
        lut = _viridis()
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            items.append((_css(tuple(lut[int(frac * (len(lut) - 1))])), spec.value_format.format(vmin + frac * (vmax - vmin))))
    hatch = (f"repeating-linear-gradient(45deg, {_css(HATCH_COLOUR)} 0 2px, {_css(SUPPRESSED_COLOUR)} 2px 6px)")
    items.append((hatch, "Suppressed (privacy: too few devices/observations) or low quality"))
    items.append((_css(NO_DATA_COLOUR), "No data"))
    return items


def legend_html(spec: MapLayerSpec, vmin: float, vmax: float) -> str:
    cells = "".join(
        f'<span style="display:inline-flex;align-items:center;margin-right:14px;">'
        f'<span style="display:inline-block;width:18px;height:14px;margin-right:5px;border:1px solid #555;'
        f'background:{bg};"></span>{label}</span>'
        for bg, label in legend_items(spec, vmin, vmax)
    )
    return f'<div role="img" aria-label="Map legend: {spec.title}"><b>{spec.title}</b><br>{cells}</div>'


def _css(rgb) -> str:
    return f"rgb({int(rgb[0])},{int(rgb[1])},{int(rgb[2])})"


# ---------------------------------------------------------------------------------------------
# deck
# ---------------------------------------------------------------------------------------------
class CompactDeck(pdk.Deck):
    """pydeck Deck whose JSON has no indentation (pydeck indents by 2: ~4x the bytes for counties)."""

    def to_json(self) -> str:
        return json.dumps(self, sort_keys=True, default=default_serialize, separators=(",", ":"))


def fill_and_labels(df: pd.DataFrame, spec: MapLayerSpec) -> tuple[pd.DataFrame, float, float]:
    """Add ``fill`` (RGB), ``value_text``, ``interval_text`` and ``status`` columns for drawing."""
    df = df.copy()
    vmin, vmax = value_range(df["value"]) if spec.kind == "continuous" else (0.0, 1.0)
    code = df["suppression"].fillna(int(Suppression.NO_DATA)).astype(int)
    if spec.kind == "alert":
        fills = [ALERT_COLOURS.get(str(v), ALERT_COLOURS["none"]) for v in df["value"]]
        df["value_text"] = [ALERT_LABELS.get(str(v), str(v)) for v in df["value"]]
    else:
        fills = continuous_colours(df["value"], vmin, vmax)
        df["value_text"] = [spec.value_format.format(v) if pd.notna(v) else "—" for v in df["value"]]
    df["fill"] = [
        list(SUPPRESSED_COLOUR) if c in (1, 2, 4) else list(NO_DATA_COLOUR) if c == 3 else list(f)
        for c, f in zip(code, fills)
    ]
    df.loc[code != 0, "value_text"] = "—"
    lo, hi = df.get("lo"), df.get("hi")
    if lo is not None and hi is not None and spec.kind == "continuous":
        df["interval_text"] = [
            f"{spec.value_format.format(a)} to {spec.value_format.format(b)}" if pd.notna(a) and pd.notna(b) and c == 0 else "—"
            for a, b, c in zip(lo, hi, code)
        ]
    else:
        df["interval_text"] = "—"
    df["status"] = [Suppression(int(c)).label for c in code]
    return df, vmin, vmax


def build_deck(df: pd.DataFrame, spec: MapLayerSpec, map_style: str, all_regions: bool = True):
    """The pydeck Deck for one map: choropleth or hexagons + hatch of suppressed cells.

    ``df`` has one row per region (``region_id``, ``value``, ``lo``, ``hi``, ``suppression``); with
    ``all_regions`` every boundary of the geography is drawn, regions without a row as "no data".
    """
    drawn, vmin, vmax = fill_and_labels(df, spec)
    rows = {r["region_id"]: r for r in drawn.to_dict("records")}
    layers = []
    if spec.geography in GEO_FILES:
        feats = []
        bounds = boundaries(spec.geography)
        ids = bounds.keys() if all_regions else [r for r in rows if r in bounds]
        for rid in ids:
            r = rows.get(rid)
            feats.append({
                "type": "Feature",
                "geometry": bounds[rid]["geometry"],
                "properties": {
                    "region_id": rid,
                    "name": region_name(rid),
                    "fill": r["fill"] if r else list(NO_DATA_COLOUR),
                    "value_text": r["value_text"] if r else "—",
                    "interval_text": r["interval_text"] if r else "—",
                    "status": r["status"] if r else Suppression.NO_DATA.label,
                },
            })
        layers.append(pdk.Layer(
            "GeoJsonLayer", id="regions", data={"type": "FeatureCollection", "features": feats},
            pickable=True, stroked=True, filled=True, get_fill_color="properties.fill",
            get_line_color=list(LINE_COLOUR), line_width_min_pixels=0.5 if spec.geography == "county" else 1,
            auto_highlight=True,
        ))
        view = pdk.ViewState(**INITIAL_VIEW)
    else:  # h3
        hexes = [dict(r, name=r["region_id"]) for r in rows.values()]
        layers.append(pdk.Layer(
            "H3HexagonLayer", id="regions", data=hexes, get_hexagon="region_id", pickable=True,
            stroked=True, filled=True, extruded=False, get_fill_color="fill", get_line_color=list(LINE_COLOUR),
            line_width_min_pixels=1, auto_highlight=True,
        ))
        view = _h3_view(list(rows))
    hatch = [{"path": line} for rid, r in rows.items() if r["status"] != "ok" and r["fill"] == list(SUPPRESSED_COLOUR)
             for line in _hatch(spec.geography, rid)]
    if hatch:
        layers.append(pdk.Layer("PathLayer", id="suppressed-hatch", data=hatch, get_path="path",
                                get_color=list(HATCH_COLOUR), width_min_pixels=1, pickable=False))
    tooltip = {
        "html": "<b>{name}</b> ({region_id})<br/>" + spec.title + ": <b>{value_text}</b><br/>"
                "interval: {interval_text}<br/>status: {status}",
        "style": {"backgroundColor": "#222", "color": "white", "fontSize": "13px"},
    }
    deck = CompactDeck(layers=layers, initial_view_state=view, map_style=map_style or BLANK_STYLE_URL,
                    tooltip=tooltip)
    return deck, vmin, vmax


def _h3_view(cells: list[str]):
    import h3
    import pydeck as pdk

    pts = [h3.cell_to_latlng(c) for c in cells if h3.is_valid_cell(c)]
    if not pts:
        return pdk.ViewState(**INITIAL_VIEW)
    lat = float(np.mean([p[0] for p in pts]))
    lng = float(np.mean([p[1] for p in pts]))
    span = max(max(p[0] for p in pts) - min(p[0] for p in pts), max(p[1] for p in pts) - min(p[1] for p in pts), 0.05)
    return pdk.ViewState(latitude=lat, longitude=lng, zoom=max(2.0, min(11.0, math.log2(360 / span) - 0.5)))
