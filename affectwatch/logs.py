"""Structured logs: a static event string plus key/value fields.

* Console (stderr): coloured, human-readable lines on a terminal; one JSON object per line when not
  (service managers, CI, log shippers). ``AFFECTWATCH_LOG_FORMAT`` forces ``json`` or ``console``;
  ``NO_COLOR`` turns colours off.
* Third-party library logs (kafka-python's "Task ... ran for 0.128s ... blocking the event loop",
  urllib3, apscheduler, ...) and Python warnings never reach the console: with a log file (the CLI
  passes ``settings.log_path``) they go there, with a JSON copy of every AffectWatch event.
* Log lines printed while a progress bar is shown go through ``tqdm.write`` so the bar stays intact.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from pathlib import Path

import structlog

_configured = False
_FILE_HANDLER_NAME = "affectwatch-file"
_events = logging.getLogger("affectwatch.events")  # the JSON copy of our events in the log file


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is *now* (test runners swap and close it), around tqdm bars."""

    def write(self, text: str) -> int:
        try:
            bars = sys.modules.get("tqdm")
            if bars is not None and getattr(bars.tqdm, "_instances", None):
                bars.tqdm.write(text.rstrip("\n"), file=sys.stderr)
                return len(text)
            return sys.stderr.write(text)
        except OSError:  # the console is gone (closed terminal, broken pipe): a log line never stops a process
            return len(text)

    def flush(self) -> None:
        try:
            sys.stderr.flush()
        except OSError:
            pass


def _copy_to_file(_logger, method: str, event_dict: dict) -> dict:
    if _events.handlers:
        level = logging.ERROR if method in ("exception", "critical") else logging.getLevelName(method.upper())
        _events.log(level if isinstance(level, int) else logging.INFO, json.dumps(event_dict, default=str))
    return event_dict


def _route_library_logs(level: int, log_file: Path | None) -> None:
    """Root logger (third-party libraries) and Python warnings: to the log file only, never the
    console. Without a log file the logging set-up is left as it is (library use, tests)."""
    if log_file is None:
        return
    root = logging.getLogger()
    for logger in (root, _events):
        for h in list(logger.handlers):
            if h.get_name() == _FILE_HANDLER_NAME or (
                    type(h) is logging.StreamHandler and getattr(h, "stream", None) in (sys.stderr, sys.__stderr__)):
                logger.removeHandler(h)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")  # logrotate-friendly, many processes
    handler.set_name(_FILE_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [pid %(process)d]: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    _events.addHandler(handler)
    _events.propagate = False
    logging.captureWarnings(True)


def configure(level: str = "INFO", fmt: str = "auto", log_file: Path | None = None) -> None:
    global _configured
    lvl = getattr(logging, level.upper(), logging.INFO)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    colors = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=colors)
    _route_library_logs(lvl, log_file)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _copy_to_file,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str):
    if not _configured:
        configure()
    return structlog.get_logger(name)
