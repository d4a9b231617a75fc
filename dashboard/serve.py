"""``python -m dashboard.serve run app.py ...``: ``streamlit run`` with SIGHUP handled like SIGTERM.

Streamlit stops its server cleanly on SIGTERM, SIGINT and SIGQUIT; a hang-up (closed terminal or
ssh session) would otherwise end it without that shutdown. `affectwatch dashboard` execs this.
"""
from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit_main()


if __name__ == "__main__":
    main()
