"""Process supervision shared by the long-running commands (demo, dashboard, schedule, ingest).

* ``SHUTDOWN_SIGNALS`` — SIGTERM (service managers, ``docker stop``, ``kill``), SIGINT (Ctrl-C) and
  SIGHUP (closed terminal / ssh session) all mean "stop cleanly": finish and commit the current work,
  stop the children, exit.
* ``shutdown_signals(on_signal)`` installs one handler for the three signals for the duration of a
  ``with`` block (default handler: raise ``Shutdown`` in the main thread, once).
* ``Supervisor`` starts children in their own process groups (a signal to the supervisor does not
  hit them twice; grandchildren are stopped with them) and stops them in reverse start order:
  SIGTERM to the group, then SIGKILL after a grace period.
* ``stop_child(proc)`` does the same for one child started without a group of its own.
* ``say(text)`` prints a line for the user and ignores a console that is gone (SIGHUP from a closed
  terminal, a killed ``| tee``): a clean-up that reports what it stopped must never stop half-way.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from affectwatch.logs import get_logger

log = get_logger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Shutdown(KeyboardInterrupt):
    """A shutdown signal arrived (a KeyboardInterrupt, so ``except Exception`` does not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def shutdown_signals(on_signal: Callable[[int], None] | None = None) -> Iterator[None]:
    """Route SIGTERM/SIGINT/SIGHUP to ``on_signal(signum)`` (default: raise ``Shutdown`` once; later
    signals are logged and ignored so the clean-up runs to its end). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum, _frame):  # no logging here: a write to stderr may be under way (reentrancy)
        first = not received
        received.append(signum)
        if on_signal is not None:
            on_signal(signum)
        elif first:
            raise Shutdown(signum)

    previous = {sig: signal.signal(sig, handler) for sig in SHUTDOWN_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_process_group(proc: subprocess.Popen, name: str, grace_s: float = 30.0) -> bool:
    """SIGTERM to the child's process group, SIGKILL after ``grace_s``; True if it was running."""
    if proc.poll() is not None:
        return False
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except ProcessLookupError:
        return False
    except subprocess.TimeoutExpired:
        log.warning("child did not stop in time; killing it", child=name, grace_s=grace_s)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    # the group may outlive its leader (a grandchild): make sure nothing of it is left
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return True


def stop_child(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to one child (not in its own process group), SIGKILL after ``grace_s``; reaps it."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def say(text: str) -> None:
    """``typer.echo(text)``, except that a console that is gone (a write raising ``OSError``:
    broken pipe, EIO after the terminal closed) is ignored."""
    import typer

    try:
        typer.echo(text)
    except OSError:
        pass


class Supervisor:
    """Children in their own process groups, stopped (newest first) by ``stop_all``."""

    def __init__(self, grace_s: float = 30.0) -> None:
        self.grace_s = grace_s
        self.children: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, cmd: list[str], **popen_kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **popen_kwargs)
        self.children.append((name, proc))
        log.debug("child started", child=name, pid=proc.pid)
        return proc

    def run(self, name: str, cmd: list[str], check: bool = True, **popen_kwargs) -> int:
        """Run a child in the foreground; a shutdown signal meanwhile stops it gracefully (stop_all)."""
        proc = self.spawn(name, cmd, **popen_kwargs)
        rc = proc.wait()
        self.children.remove((name, proc))
        if check and rc != 0:
            raise subprocess.CalledProcessError(rc, cmd)
        return rc

    def alive(self) -> bool:
        return all(p.poll() is None for _, p in self.children)

    def stop_all(self, echo: Callable[[str], None] | None = None) -> list[str]:
        stopped = []
        for name, proc in reversed(self.children):
            if stop_process_group(proc, name, self.grace_s):
                stopped.append(name)
                if echo:
                    echo(f"stopped {name}")
        self.children.clear()
        return stopped
