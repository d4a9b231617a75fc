"""Loopback ports of the local services a command or a test starts (broker, SMTP sink, dashboard, PostgreSQL).

* ``free_port(host)`` — a port nothing listens on (bound to port 0, so never a fixed port).
* ``port_open(host, port)`` — True when something accepts a TCP connection there.
* ``wait_until(condition, timeout, what, proc=None, log=None)`` — poll ``condition()`` until it
  returns something truthy (returned) or the deadline passes (``TimeoutError``); with ``proc``,
  fail as soon as that child process exits, quoting the end of its ``log`` file.
* ``wait_for_port(host, port, timeout, what, ...)`` — ``wait_until`` the port accepts connections.
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def _log_tail(log: Path | None) -> str:
    return ": " + log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""


def wait_until(condition: Callable[[], T], timeout: float, what: str, *, proc: subprocess.Popen | None = None,
               log: Path | None = None, interval: float = 0.2) -> T:
    """The first truthy value of ``condition()``, polled every ``interval`` s for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}{_log_tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{_log_tail(log)}")
        time.sleep(interval)


def wait_for_port(host: str, port: int, timeout: float, what: str, *, proc: subprocess.Popen | None = None,
                  log: Path | None = None) -> None:
    """Wait until ``host:port`` accepts TCP connections (see ``wait_until``)."""
    wait_until(lambda: port_open(host, port), timeout, f"{what} to listen on {host}:{port}", proc=proc, log=log)
