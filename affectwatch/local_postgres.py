"""A real throwaway PostgreSQL cluster (Debian's server binaries) for tests and benchmarks.

``LocalPostgres().start()`` runs ``initdb`` into a fresh temporary directory, starts the server with
``pg_ctl`` on a free loopback port (its unix socket also lives in that directory), and ``stop()``
shuts it down and deletes the directory. PostgreSQL refuses to run as root, so when this process is
root the server runs as the ``postgres`` OS user (``runuser``), which owns the directory.
``create_database()`` gives each test or benchmark its own database; ``catalog(db)`` is the
``warehouse.catalog`` setting (a libpq DSN) that points DuckLake at it.

Production uses an ordinary PostgreSQL server instead (README: "Running against real infrastructure").
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from affectwatch.logs import get_logger
from affectwatch.ports import free_port

log = get_logger(__name__)

USER = "affectwatch"  # the cluster's superuser role (trust auth on loopback only)


class PostgresError(RuntimeError):
    """PostgreSQL binaries missing, or the throwaway cluster did not start."""


def bin_dir() -> Path:
    """The newest installed PostgreSQL server binaries (``initdb`` is not on PATH on Debian)."""
    if os.environ.get("AFFECTWATCH_PG_BIN"):
        return Path(os.environ["AFFECTWATCH_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresError("PostgreSQL server binaries not found: apt-get install -y postgresql "
                        "(or set AFFECTWATCH_PG_BIN to the directory that holds initdb and pg_ctl)")


class LocalPostgres:
    """One throwaway cluster; ``durable=False`` turns fsync off (tests: the server itself is never killed)."""

    def __init__(self, *, durable: bool = True, run_as: str | None = None) -> None:
        self.bin = bin_dir()
        self.durable = durable
        self.run_as = run_as if run_as is not None else ("postgres" if os.geteuid() == 0 else "")
        self.dir: Path | None = None
        self.port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> "LocalPostgres":
        # under /tmp itself: pytest's per-user tmp dirs are mode 700 and the server user must reach it;
        # short too, because a unix socket path is limited to ~107 bytes
        self.dir = Path(tempfile.mkdtemp(prefix="aw-pg-", dir="/tmp"))
        if self.run_as:
            try:
                pw = pwd.getpwnam(self.run_as)
            except KeyError:
                raise PostgresError(f"PostgreSQL will not run as root and there is no {self.run_as!r} OS user: "
                                    "install the postgresql package (it creates one) or run as a normal user") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)
        args = ["-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]
        self._run("initdb", *args, *([] if self.durable else ["--no-sync"]), timeout=timeout)
        opts = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.dir),
                "max_connections": "200", "shared_buffers": "128MB"}
        if not self.durable:
            opts.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        for _ in range(5):  # the free port can be taken between probing and binding: pick another
            self.port = free_port()
            o = " ".join(f"-c {k}={v}" for k, v in {**opts, "port": str(self.port)}.items())
            proc = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", o,
                             "-w", "-t", str(int(timeout)), "start", check=False, timeout=timeout + 10)
            if proc.returncode == 0:
                log.info("postgres started", port=self.port, dir=str(self.dir))
                return self
            if "could not bind" not in self.server_log():
                break
        tail = self.server_log()[-1500:]
        self.stop()
        raise PostgresError(f"PostgreSQL did not start: {proc.stderr.strip()[-500:]} | {tail}")

    def stop(self) -> None:
        if self.dir is None:
            return
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases ----------------------------------------------------------------------------
    @property
    def data(self) -> Path:
        assert self.dir is not None, "cluster not started"
        return self.dir / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"dbname={database} host=127.0.0.1 port={self.port} user={USER}"

    def catalog(self, database: str) -> str:
        """The ``warehouse.catalog`` setting for a DuckLake catalog in ``database``."""
        return f"postgres:{self.dsn(database)}"

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name, timeout=60)
        return name

    def psql(self, database: str, sql: str) -> str:
        """Run SQL with ``psql`` (tab-separated rows, no headers) — an independent look at the catalog."""
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database,
                         "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql, timeout=60).stdout

    def server_log(self) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace") if self.dir else ""
        except OSError:
            return ""

    def _run(self, tool: str, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / tool), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir or "/tmp")
        if check and proc.returncode != 0:
            raise PostgresError(f"{tool} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
        return proc
