"""A console for people: coloured lines on a terminal, JSON otherwise; library chatter only in the log file;
progress bars only on a terminal. Each case runs in a fresh interpreter, on a real pseudo-terminal or a pipe."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import textwrap

import pytest

from affectwatch.settings import REPO_ROOT

SCRIPT = textwrap.dedent("""
    import logging, sys, warnings
    from pathlib import Path
    from affectwatch.logs import configure, get_logger
    from affectwatch.progress import progress

    configure("INFO", sys.argv[2], Path(sys.argv[1]))
    log = get_logger("affectwatch.test")
    logging.getLogger("kafka.net.selector").warning(
        "Task <kafka.net.selector.Task> ran for 0.128s (>0.100s threshold). It is blocking the event loop")
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTP connection")
    warnings.warn("a library deprecation notice", DeprecationWarning, stacklevel=1)
    for _ in progress(range(3), desc="steps", mininterval=0):
        log.info("step done", region="06")
    log.warning("batch committed", rows=12)
""")


def _pty_output(cmd: list[str], env: dict) -> str:
    """Everything ``cmd`` writes to its terminal (a real pseudo-terminal: stdin, stdout and stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env | {"TERM": "xterm"}, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0, b"".join(chunks)[-2000:]
    return b"".join(chunks).decode(errors="replace")


def _run(log_file, fmt="auto", tty=False, **extra_env: str) -> str:
    cmd = [sys.executable, "-c", SCRIPT, str(log_file), fmt]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "AFFECTWATCH_PROGRESS")} | extra_env
    if tty:
        return _pty_output(cmd, env)
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    return proc.stderr


def test_not_a_terminal_json_lines_and_no_library_chatter(tmp_path):
    log_file = tmp_path / "logs" / "affectwatch.log"
    err = _run(log_file)
    lines = err.strip().splitlines()
    events = [json.loads(line) for line in lines]  # every console line is one JSON object
    assert [e["event"] for e in events] == ["step done"] * 3 + ["batch committed"]
    assert events[-1]["level"] == "warning" and events[-1]["rows"] == 12 and "timestamp" in events[-1]
    assert "blocking the event loop" not in err and "deprecation" not in err and "steps" not in err  # no bar
    text = log_file.read_text()
    assert "kafka.net.selector" in text and "blocking the event loop" in text  # chatter kept in the file
    assert "Starting new HTTP connection" in text and "a library deprecation notice" in text
    assert '"event": "batch committed"' in text  # a JSON copy of our own events


def test_terminal_coloured_human_lines_and_a_progress_bar(tmp_path):
    log_file = tmp_path / "affectwatch.log"
    out = _run(log_file, tty=True)
    assert "\x1b[" in out  # ANSI colours
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "step done" in out and "batch committed" in out and "rows=12" in out
    assert not any(line.lstrip().startswith("{") for line in out.splitlines())  # not JSON
    assert "steps" in out and "3/3" in out  # the tqdm bar
    assert "blocking the event loop" not in out and "deprecation" not in out
    assert "blocking the event loop" in log_file.read_text()


def test_json_forced_on_a_terminal(tmp_path):
    out = _run(tmp_path / "a.log", fmt="json", tty=True)
    assert any(line.strip().startswith('{"') and "batch committed" in line for line in out.splitlines())


def test_no_color_and_no_progress_are_respected(tmp_path):
    text = _run(tmp_path / "b.log", fmt="console", tty=True, NO_COLOR="1", AFFECTWATCH_PROGRESS="0")
    assert "batch committed" in text and "\x1b[" not in text and "3/3" not in text


@pytest.mark.slow
@pytest.mark.kafka
def test_ingest_catch_up_shows_a_bar_on_a_terminal_and_keeps_kafka_chatter_off_the_console(ingest_env, kafka_producer):
    from tests.fixtures.kafka import send_raw

    sent = send_raw(kafka_producer, ingest_env.symptom_topic, [b"not json"] * 40)
    kafka_producer.flush(timeout=30)
    env = {k: v for k, v in ingest_env.env.items() if k not in ("AFFECTWATCH_LOG_FORMAT", "AFFECTWATCH_PROGRESS")}
    out = re.sub(r"\x1b\[[0-9;]*m", "", _pty_output(
        [sys.executable, "-m", "affectwatch.cli", "ingest", "--until-idle", "2"], env))
    assert "ingest catch-up: 100%" in out and f"{sent}/{sent}" in out, out[-2000:]
    assert "ingest worker stopped" in out and not any(ln.lstrip().startswith('{"event"') for ln in out.splitlines())
    assert "kafka." not in out  # kafka-python's loggers write to the log file only
    assert '"event": "ingest worker stopped"' in (ingest_env.data_dir / "logs" / "affectwatch.log").read_text()
