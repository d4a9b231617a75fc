"""Prometheus text exposition of one ingest worker's snapshot (``affectwatch ingest --metrics-port N``).

The worker's snapshot (``IngestWorker.snapshot()``, also written for ``affectwatch ingest status``)
is rendered on each GET /metrics by a tiny threaded HTTP server; nothing is cached twice.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "affectwatch_ingest_"


def _label(v) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, value, **labels) -> str:
    lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{PREFIX}{name}{{{lab}}} {value}" if lab else f"{PREFIX}{name} {value}"


def prometheus_text(snap: dict) -> str:
    """Render a worker snapshot in the Prometheus text format (version 0.0.4)."""
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[str]) -> None:
        out.extend([f"# HELP {PREFIX}{name} {help_}", f"# TYPE {PREFIX}{name} {kind}", *samples])

    g = snap["group"]
    metric("up", "gauge", "1 while the worker consumes, 0 while it waits for the broker.",
           [_line("up", 1 if snap["state"] == "consuming" else 0, group=g)])
    metric("messages_total", "counter", "Kafka records processed (rows + duplicates + dead letters).",
           [_line("messages_total", snap["messages"], group=g)])
    metric("rows_total", "counter", "Rows written to the warehouse, by table.",
           [_line("rows_total", snap["affect_rows"], group=g, table="affect_windows"),
            _line("rows_total", snap["symptom_rows"], group=g, table="symptom_reports")])
    metric("duplicates_total", "counter", "Records dropped as already stored.",
           [_line("duplicates_total", snap["duplicates"], group=g)])
    metric("dead_letters_total", "counter", "Records dead-lettered, by reason.",
           [_line("dead_letters_total", n, group=g, reason=r) for r, n in sorted(snap["dead_by_reason"].items())])
    metric("rows_per_second", "gauge", "Records processed per second over the last progress interval.",
           [_line("rows_per_second", snap["rows_per_s"], group=g)])
    metric("last_commit_timestamp_seconds", "gauge", "Unix time of the last warehouse commit (0 = none yet).",
           [_line("last_commit_timestamp_seconds", snap["last_commit_unix"] or 0, group=g)])
    metric("assigned_partitions", "gauge", "Partitions this worker owns.",
           [_line("assigned_partitions", len(snap["owned"]), group=g)])
    metric("consumer_lag", "gauge", "Records behind the broker's high watermark, by partition.",
           [_line("consumer_lag", lag, group=g, partition=p) for p, lag in sorted(snap["lag"].items())])
    metric("stuck_partition_offset", "gauge",
           "Partitions the worker cannot read (e.g. unknown codec): the offset it is stuck at.",
           [_line("stuck_partition_offset", s["offset"], group=g, topic=s["topic"], partition=s["partition"])
            for s in snap["stuck"]])
    metric("stuck_partitions", "gauge", "Number of stuck partitions.", [_line("stuck_partitions", len(snap["stuck"]), group=g)])
    return "\n".join(out) + "\n"


def serve_metrics(port: int, snapshot: Callable[[], dict], host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve GET /metrics on ``port`` (0 = any free port: read ``server.server_port``) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            for attempt in range(3):  # the worker thread may resize a dict while we copy it
                try:
                    body = prometheus_text(snapshot()).encode()
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:  # a calm console: no access log
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
