"""``python -m dashboard.serve run app.py ...``: ``streamlit run`` with SIGHUP handled like SIGTERM.

Streamlit stops its server cleanly on SIGTERM, SIGINT and SIGQUIT; a hang-up (closed terminal or
ssh session) would otherwise end it without that shutdown. `affectwatch dashboard` execs this.

Before serving, the server process loads the simplified boundaries into memory and opens its cached
warehouse connection (:func:`warm`), so the first visitor does not wait for either.
"""
from __future__ import annotations

import os
import signal
import sys


def warm(settings=None) -> dict[str, float]:
    """Work every first page view would otherwise do, done once at server start; seconds taken."""
    import logging
    import time

    import streamlit  # noqa: F401  (sets up its loggers; the levels below must come after)

    from affectwatch.settings import get_settings

    # Before the runtime exists Streamlit warns once per cached function it sees ("No runtime found");
    # the page caches are only declared here (created by the runtime at their first call), so hush it.
    hush = [logging.getLogger(f"streamlit.runtime.caching.{api}") for api in ("cache_data_api", "cache_resource_api")]
    levels = [lg.level for lg in hush]
    for lg in hush:
        lg.setLevel(logging.ERROR)
    try:
        from dashboard import data, maps

        t0 = time.perf_counter()
        maps.warm_geo_cache()  # boundaries and hatch lines from the disk cache (built by `affectwatch dashboard`)
        t1 = time.perf_counter()
        data.warm_connection(settings or get_settings())
        t2 = time.perf_counter()
    finally:
        for lg, level in zip(hush, levels):
            lg.setLevel(level)
    return {"boundaries_s": t1 - t0, "warehouse_s": t2 - t1}


def main() -> None:
    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    warm()
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit_main()


if __name__ == "__main__":
    main()
