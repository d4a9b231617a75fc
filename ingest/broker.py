"""A real local Apache Kafka broker (KRaft, single combined broker/controller) run with the JDK.

The broker jars are resolved from Maven Central once with Maven (``tools/kafka/pom.xml`` ->
``tools/kafka/lib/``). ``LocalBroker(dir)`` writes ``server.properties`` and a log4j2 config
under ``dir``, formats the KRaft storage once, starts ``kafka.Kafka`` on loopback ports, waits
until it answers a Kafka admin request, and stops it with SIGTERM (SIGKILL after a timeout).
The port and pid are kept in ``dir/broker.json`` so that ``stop``/``status``/``restart`` work
from another process and a restart reuses the same port and log dir.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import logging

from affectwatch.logs import get_logger
from affectwatch.ports import free_port, port_open
from affectwatch.settings import REPO_ROOT, Settings, get_settings

log = get_logger(__name__)
logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python is chatty at INFO

POM = REPO_ROOT / "tools" / "kafka" / "pom.xml"
LIB_DIR = REPO_ROOT / "tools" / "kafka" / "lib"
STATE_FILE = "broker.json"


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or reached."""


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        hint = {"java": "install a JDK >= 17 (e.g. apt-get install openjdk-17-jre-headless)",
                "mvn": "install Maven (e.g. apt-get install maven)"}[name]
        raise BrokerError(f"`{name}` not found on PATH: {hint}")
    return path


def fetch_jars(lib_dir: Path = LIB_DIR, force: bool = False) -> Path:
    """Resolve the Kafka broker jars from Maven Central into ``lib_dir`` (once)."""
    lib_dir = Path(lib_dir)
    if not force and any(lib_dir.glob("kafka_2.13-*.jar")):
        return lib_dir
    mvn = require_tool("mvn")
    lib_dir.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
           f"-DoutputDirectory={lib_dir.resolve()}"]
    log.info("resolving kafka jars with maven", lib_dir=str(lib_dir))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(lib_dir.glob("kafka_2.13-*.jar")):
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise BrokerError("maven could not resolve the kafka jars: " + " | ".join(tail))
    return lib_dir


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _cluster_id() -> str:
    """A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (what `random-uuid` prints).

    About one id in 32 starts with ``-``: pass it as ``--cluster-id=<id>`` so kafka-storage never
    reads it as an option."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {dir}/server.log
appender.file.filePattern = {dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class LocalBroker:
    """One KRaft node (broker + controller) on loopback, state kept under ``directory``."""

    def __init__(
        self,
        directory: Path | str,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        heap: str = "512m",
        partitions: int = 4,
        lib_dir: Path | str = LIB_DIR,
        log_level: str = "INFO",
    ) -> None:
        self.dir = Path(directory).resolve()
        self.host = host
        self.heap = heap
        self.partitions = partitions
        self.lib_dir = Path(lib_dir)
        self.log_level = log_level
        state = self._read_state()
        self.port = port or state.get("port") or free_port(host)
        self.controller_port = state.get("controller_port") if state.get("port") == self.port else None
        self.controller_port = self.controller_port or free_port(host)
        self._proc: subprocess.Popen | None = None

    # -- state -----------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    def _read_state(self) -> dict:
        try:
            return json.loads((self.dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, pid: int | None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        state = {"port": self.port, "controller_port": self.controller_port, "pid": pid,
                 "bootstrap": self.bootstrap}
        (self.dir / STATE_FILE).write_text(json.dumps(state))
        if pid:
            (self.dir / "broker.pid").write_text(str(pid))
        else:
            (self.dir / "broker.pid").unlink(missing_ok=True)

    @property
    def pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        pid = self._read_state().get("pid")
        return pid if pid_alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    # -- configuration ---------------------------------------------------------------------
    def _write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": str(self.partitions),
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "message.max.bytes": str(8 * 1024 * 1024),
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
        }
        path = self.dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.dir / "log4j2.properties").write_text(LOG4J2.format(dir=self.dir, level=self.log_level))
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        java = require_tool("java")
        return [
            java, f"-Xmx{self.heap}", "-Xms64m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true", "-Xshare:auto",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.dir}",
            "-cp", f"{self.lib_dir.resolve()}/*", main, *args,
        ]

    def _format_storage(self, config: Path) -> None:
        if (self.log_dir / "meta.properties").exists():
            return
        cmd = self._java("kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}", "-c", str(config))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BrokerError(f"kafka storage format failed: {(proc.stdout + proc.stderr).strip()[-400:]}")
        log.info("kafka storage formatted", log_dir=str(self.log_dir))

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 90.0, topics: list[str] | None = None) -> "LocalBroker":
        """Start the broker (no-op when already running) and wait until it serves Kafka requests."""
        if self.running:
            self.wait_ready(timeout)
            return self
        require_tool("java")
        fetch_jars(self.lib_dir)
        if port_open(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use by another process")
        config = self._write_config()
        self._format_storage(config)
        out = open(self.dir / "broker.out", "ab")
        try:
            self._proc = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.dir,
            )
        finally:
            out.close()
        self._write_state(self._proc.pid)
        log.info("kafka broker starting", bootstrap=self.bootstrap, pid=self._proc.pid)
        self.wait_ready(timeout)
        if topics:
            self.create_topics(topics, self.partitions)
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.running:
                raise BrokerError(f"kafka broker exited during start-up: {self._tail()}")
            if port_open(self.host, self.port):
                try:
                    admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                             client_id="affectwatch-broker-probe")
                    try:
                        admin.list_topics()
                    finally:
                        admin.close()
                    log.info("kafka broker ready", bootstrap=self.bootstrap)
                    return
                except Exception as exc:  # not ready yet
                    last = str(exc)
            time.sleep(0.25)
        raise BrokerError(f"kafka broker not ready after {timeout:.0f}s ({last}): {self._tail()}")

    def _tail(self, n: int = 5) -> str:
        for name in ("broker.out", "server.log"):
            p = self.dir / name
            if p.exists():
                lines = [ln for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
                if lines:
                    return " | ".join(lines[-n:])[-800:]
        return "(no broker output)"

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns True if a broker was stopped."""
        pid = self.pid
        if pid is None:
            self._write_state(None)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.1)
        if self._alive(pid):
            log.warning("kafka broker did not stop in time; killing", pid=pid)
            os.kill(pid, signal.SIGKILL)
            while self._alive(pid):
                time.sleep(0.05)
        self._proc = None
        self._write_state(None)
        log.info("kafka broker stopped", bootstrap=self.bootstrap)
        return True

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return pid_alive(pid)

    def kill(self) -> None:
        """SIGKILL the broker (crash simulation)."""
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGKILL)
            while self._alive(pid):
                time.sleep(0.05)
        self._proc = None
        self._write_state(None)

    def restart(self, timeout: float = 90.0) -> "LocalBroker":
        """Stop and start again on the same port and log dir."""
        self.stop()
        deadline = time.monotonic() + 30
        while port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.start(timeout)

    def status(self) -> dict:
        return {"running": self.running, "bootstrap": self.bootstrap, "pid": self.pid, "dir": str(self.dir)}

    # -- topics ----------------------------------------------------------------------------
    def create_topics(self, names: list[str], partitions: int | None = None) -> list[str]:
        return create_topics(self.bootstrap, names, partitions or self.partitions)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def create_topics(bootstrap: str | list[str], names: list[str], partitions: int, client_kwargs: dict | None = None,
                  timeout: float = 30.0) -> list[str]:
    """Create topics that do not exist yet; returns the names created now."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    kw = dict(client_kwargs or {})
    kw["bootstrap_servers"] = bootstrap
    admin = KafkaAdminClient(request_timeout_ms=int(timeout * 1000), **kw)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names if n not in existing]
        if new:
            try:
                admin.create_topics(new, timeout_ms=int(timeout * 1000))
            except TopicAlreadyExistsError:
                pass
        _wait_topics_ready(admin, [t.name for t in new], timeout)
        return [t.name for t in new]
    finally:
        admin.close()


def _wait_topics_ready(admin, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        meta = admin.describe_topics(names)
        ok = all(t.get("error_code", 0) == 0 and t.get("partitions") and all(p.get("leader_id", -1) >= 0 for p in t["partitions"])
                 for t in meta)
        if ok:
            return
        time.sleep(0.1)


def default_broker(settings: Settings | None = None) -> LocalBroker:
    """The CLI's broker: state under ``<data_dir>/kafka``, port from ``settings.kafka.bootstrap_servers``."""
    s = settings or get_settings()
    first = s.kafka.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return LocalBroker(s.data_dir / "kafka", port=int(port) if port.isdigit() else None,
                       host=host or "127.0.0.1", partitions=s.kafka.partitions)
