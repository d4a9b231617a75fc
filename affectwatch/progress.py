"""Progress bars for long steps, shown only to a person at a terminal.

``progress(...)`` is ``tqdm(...)`` that is silent when stderr is not a terminal (service logs, CI,
tests) or when ``AFFECTWATCH_PROGRESS=0``. Log lines printed meanwhile keep the bar intact
(``affectwatch.logs`` writes them with ``tqdm.write``).
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def enabled() -> bool:
    return sys.stderr.isatty() and os.environ.get("AFFECTWATCH_PROGRESS", "1") != "0"


def progress(iterable: Iterable[T] | None = None, *, desc: str = "", total: float | None = None,
             unit: str = "it", **kwargs):
    """A tqdm bar on stderr (a no-op bar when nobody is watching); use as an iterable or a context."""
    from tqdm import tqdm

    on = enabled()
    if on and "ncols" not in kwargs:
        try:  # follow the window's size; a terminal that reports none (0 x 0: tqdm would hide the bar)
            size = os.get_terminal_size(sys.stderr.fileno())
        except OSError:
            size = os.terminal_size((0, 0))
        if size.columns and size.lines:
            kwargs["dynamic_ncols"] = True
        else:
            kwargs.update(ncols=100, nrows=40)
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not on, file=sys.stderr, **kwargs)
