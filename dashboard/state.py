"""All view state lives in ``st.query_params`` so a link copied from the address bar reopens the view.

Keys are page-independent (the same ``region`` is used by the map, the region page and the alerts
filter). Widgets are bound to a key with the helpers below: a fresh session (an opened link) starts
from the query parameters; a widget change writes the parameter back through its ``on_change``
callback. Switching pages keeps the keys (they are mirrored in the session and restored).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

# Every key the dashboard writes to the URL, with its meaning.
KEYS = {
    "region": "region id (state/county FIPS or H3 cell)",
    "week": "MMWR week start, YYYY-MM-DD",
    "signal": "map colouring: alert | distress | arousal | growth | rate | survey",
    "geo": "map geography: state | county | h3",
    "syndrome": "symptom syndrome, e.g. ili",
    "target": "forecast target, e.g. 'wk inc ili'",
    "model": "forecast model",
    "past": "number of past forecast runs shown on the region page",
    "level": "alert level filter, comma-separated",
    "status": "alert status filter, comma-separated",
    "since": "alert filter: updated on/after, YYYY-MM-DD",
    "until": "alert filter: first seen on/before, YYYY-MM-DD",
    "alert": "selected alert id",
    "days": "data-quality look-back in days",
    "indicator": "survey affect indicator, e.g. wdepressed_7d",
}
_MIRROR = "_aw_view_state"


def restore() -> None:
    """Run once per script run (app.py): URL keys win; keys missing from the URL come back from the session."""
    mem = st.session_state.setdefault(_MIRROR, {})
    qp = st.query_params
    for key in KEYS:
        if key in qp:
            mem[key] = qp[key]
        elif key in mem:
            qp[key] = mem[key]


def get(key: str, default: str | None = None) -> str | None:
    _check(key)
    return st.query_params.get(key, default)


def put(key: str, value: Any) -> None:
    """Write one key to the URL (and the session mirror); None/"" removes it."""
    _check(key)
    mem = st.session_state.setdefault(_MIRROR, {})
    if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
        st.query_params.pop(key, None)
        mem.pop(key, None)
        return
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else _dump(value)
    st.query_params[key] = text
    mem[key] = text


def link(page: str, **params: Any) -> str:
    """Relative URL of a page with view state, e.g. ``link('region', region='06')`` -> ``region?region=06``."""
    from urllib.parse import urlencode

    return f"{page}?{urlencode({k: _dump(v) for k, v in params.items() if v not in (None, '')})}"


def _dump(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return str(value)


def _check(key: str) -> None:
    if key not in KEYS:
        raise KeyError(f"view-state key {key!r} is not declared in dashboard.state.KEYS")


def _bind(key: str, current: Any) -> str:
    """Make the widget's session value equal the URL value before the widget is drawn."""
    wkey = f"_qp_{key}"
    # Always (re)set: a widget of another page may have used this key with a different identity.
    st.session_state[wkey] = current
    return wkey


def _writer(key: str, wkey: str, dump: Callable[[Any], Any] = lambda v: v) -> Callable[[], None]:
    return lambda: put(key, dump(st.session_state[wkey]))


# --- bound widgets ----------------------------------------------------------------------------
def selectbox(label: str, key: str, options: Sequence[str], default: str | None = None, container=st,
              optional: bool = False, **kw) -> str | None:
    """Selectbox bound to ``key``; ``optional`` allows no selection (the key is then absent from the URL)."""
    options = list(options)
    if not options:
        container.selectbox(label, ["(none available)"], disabled=True, key=f"_qp_{key}_empty")
        return None
    current = get(key, default)
    if current not in options:
        current = default if default in options else (None if optional else options[0])
    wkey = _bind(key, current)
    value = container.selectbox(label, options, key=wkey, on_change=_writer(key, wkey), **kw)
    if get(key) != value:
        put(key, value)
    return value


def multiselect(label: str, key: str, options: Sequence[str], default: Sequence[str] = (), container=st, **kw) -> list[str]:
    options = list(options)
    raw = get(key)
    current = [v for v in raw.split(",") if v in options] if raw is not None else [v for v in default if v in options]
    wkey = _bind(key, current)
    value = container.multiselect(label, options, key=wkey, on_change=_writer(key, wkey), **kw)
    put(key, value)
    return value


def date_input(label: str, key: str, default: dt.date | None = None, container=st, **kw) -> dt.date | None:
    raw = get(key)
    try:
        current = dt.date.fromisoformat(raw) if raw else default
    except ValueError:
        current = default
    wkey = _bind(key, current)
    value = container.date_input(label, key=wkey, on_change=_writer(key, wkey), **kw)
    put(key, value)
    return value


def number(label: str, key: str, default: int, min_value: int, max_value: int, container=st, **kw) -> int:
    try:
        current = int(get(key, str(default)))
    except ValueError:
        current = default
    current = min(max(current, min_value), max_value)
    wkey = _bind(key, current)
    value = container.number_input(label, min_value=min_value, max_value=max_value, step=1, key=wkey,
                                   on_change=_writer(key, wkey), **kw)
    put(key, int(value))
    return int(value)


def week_slider(label: str, weeks: Sequence[dt.date], container=st) -> dt.date | None:
    """Week stepper bound to ``week`` (defaults to the newest week)."""
    if not weeks:
        return None
    weeks = list(weeks)
    raw = get("week")
    try:
        current = dt.date.fromisoformat(raw) if raw else weeks[-1]
    except ValueError:
        current = weeks[-1]
    if current not in weeks:
        current = min(weeks, key=lambda w: abs((w - current).days))
    if len(weeks) == 1:
        container.caption(f"{label}: week of {current:%d %b %Y} (only week with data)")
        put("week", current)
        return current
    wkey = _bind("week", current)
    value = container.select_slider(label, options=weeks, key=wkey, on_change=_writer("week", wkey),
                                    format_func=lambda w: f"{w:%d %b %Y}")
    put("week", value)
    return value


def step_week(weeks: Sequence[dt.date], delta: int) -> None:
    """Move the ``week`` key by ``delta`` weeks within ``weeks`` (used by the ◀ / ▶ buttons)."""
    weeks = list(weeks)
    raw = get("week")
    current = dt.date.fromisoformat(raw) if raw else weeks[-1]
    i = weeks.index(current) if current in weeks else len(weeks) - 1
    put("week", weeks[max(0, min(len(weeks) - 1, i + delta))])
    st.session_state.pop("_qp_week", None)
