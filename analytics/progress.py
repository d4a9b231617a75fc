"""Progress bar for long forecast jobs (backtests, forecast runs): items done / total, elapsed and
ETA (tqdm). Shown only when stderr is a terminal, so logs and pipelines stay quiet."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def on_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(items: Iterable[T], total: int, desc: str, unit: str = "ref date") -> Iterator[T]:
    """Yield ``items`` while a tqdm bar counts them (only on a terminal)."""
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit=unit, disable=not on_terminal(), leave=False,
                    bar_format="{desc}: {n_fmt}/{total_fmt} {unit}s |{bar}| elapsed {elapsed}, ETA {remaining}")
