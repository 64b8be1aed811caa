"""The operators' HTTP endpoint: `/metrics` for Prometheus, `/healthz` for the orchestrator.

`/healthz` answers 200 only while the gateway is connected to its broker, its pipeline
process is alive, and its stores are writable (each probed at every request: a write
lock taken and released on the inbox and the outbox, a file written and synced in the
spool); otherwise 503. Its JSON body names each check, so a failing probe says which.

Depths and states are read from the stores at each scrape, on connections of their own
(the intake's and the pipeline's are never touched from here).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from structlog.typing import FilteringBoundLogger

from gateway import metrics
from gateway.store.db import read_only
from gateway.store.levels import StoreLevels
from gateway.store.outbox import READY_CURSOR, depths

if TYPE_CHECKING:
    from gateway.store.cluster import ClusterProbe


@dataclass(frozen=True, slots=True)
class Probes:
    """What the endpoint asks of the running gateway."""

    broker_connected: Callable[[], bool]
    pipeline_alive: Callable[[], bool]
    levels: Callable[[], StoreLevels]
    inbox: Path
    outbox: Path
    spool: Path
    # In a cluster the stores are shared: their depths come from PostgreSQL.
    cluster: ClusterProbe | None = None


def _writable_db(path: Path) -> bool:
    """Take the write lock and let it go: proves the file is writable, changes nothing."""
    try:
        conn = sqlite3.connect(path, timeout=2.0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return True


def _writable_dir(directory: Path) -> bool:
    probe = directory / f".healthz.{os.getpid()}.{threading.get_ident()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as out:
            out.write(b"ok")
            out.flush()
            os.fsync(out.fileno())
        probe.unlink()
    except OSError:
        return False
    return True


def health(probes: Probes) -> dict[str, bool]:
    checks = {"broker": probes.broker_connected(), "pipeline": probes.pipeline_alive()}
    if probes.cluster is not None:
        checks["database"] = probes.cluster.reachable()
    else:
        checks["inbox"] = _writable_db(probes.inbox)
        checks["outbox"] = _writable_db(probes.outbox)
    checks["spool"] = _writable_dir(probes.spool)
    return checks


class StoreCollector(Collector):
    """Gauges read at scrape time: broker link, inbox and outbox depths, spool, disk."""

    def __init__(self, probes: Probes) -> None:
        self.probes = probes

    def collect(self) -> Iterator[Metric]:
        probes = self.probes
        yield _gauge(
            "cgt_broker_connected",
            "1 while the intake is connected.",
            float(probes.broker_connected()),
        )
        yield _gauge(
            "cgt_pipeline_up", "1 while the pipeline process runs.", float(probes.pipeline_alive())
        )
        if probes.cluster is not None:
            shared = probes.cluster.depths()
            ready, waiting, per_sink = shared.ready, shared.uploads_waiting, shared.per_sink
            yield _gauge(
                "cgt_cluster_instances",
                "Instances of the cluster with a heartbeat in the last 15 s.",
                shared.live_instances,
            )
        else:
            ready, waiting, per_sink = _local_depths(probes)
        yield _gauge(
            "cgt_inbox_depth",
            "Complete reports not yet taken by the pipeline (in a cluster: by any instance).",
            ready,
        )
        yield _gauge(
            "cgt_inbox_uploads_waiting", "Reports still waiting for media chunks.", waiting
        )
        pending = GaugeMetricFamily(
            "cgt_outbox_depth", "Pending deliveries, per sink.", labels=["sink"]
        )
        oldest = GaugeMetricFamily(
            "cgt_outbox_oldest_age_seconds",
            "Age of the oldest pending delivery, per sink.",
            labels=["sink"],
        )
        dead = GaugeMetricFamily("cgt_dead_letters", "Dead letters, per sink.", labels=["sink"])
        for sink, (count, age, letters) in per_sink.items():
            pending.add_metric([sink], count)
            oldest.add_metric([sink], age)
            dead.add_metric([sink], letters)
        yield from (pending, oldest, dead)
        levels = probes.levels()
        yield _gauge(
            "cgt_spool_bytes",
            "Media chunks and assembled files not yet stored.",
            levels.spool_bytes,
        )
        yield _gauge(
            "cgt_disk_free_bytes",
            "Free space on the data directory's filesystem.",
            levels.free_bytes,
        )
        refusing = GaugeMetricFamily(
            "cgt_intake_refusing",
            "1 while the stores are full and new media or reports are "
            "refused with server.retry_later.",
            labels=["what"],
        )
        refusing.add_metric(["media"], float(levels.media_refusal is not None))
        refusing.add_metric(["reports"], float(levels.report_refusal is not None))
        yield refusing


def _local_depths(probes: Probes) -> tuple[int, int, dict[str, tuple[int, float, int]]]:
    """Ready reports not yet taken, uploads waiting, and each sink's depths, from this
    machine's SQLite files."""
    with read_only(probes.inbox) as conn:
        waiting, last_ready = conn.execute(
            "SELECT (SELECT count(*) FROM reports WHERE missing > 0),"
            " (SELECT coalesce(max(seq), 0) FROM ready)"
        ).fetchone()
    with read_only(probes.outbox) as conn:
        cursor = conn.execute("SELECT value FROM cursors WHERE name = ?", (READY_CURSOR,))
        taken = (cursor.fetchone() or (0,))[0]
        per_sink = depths(conn)
    return max(0, last_ready - taken), waiting, per_sink


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class OpsServer:
    def __init__(self, address: tuple[str, int], probes: Probes, log: FilteringBoundLogger) -> None:
        registry = metrics.registry_for_scrape()
        registry.register(StoreCollector(probes))
        self.log = log

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif self.path == "/healthz":
                    checks = health(probes)
                    ok = all(checks.values())
                    body = orjson.dumps({"status": "ok" if ok else "failing", "checks": checks})
                    self._send(200 if ok else 503, "application/json", body)
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None  # scrapes every few seconds are not worth a log line

        self.server = ThreadingHTTPServer(address, Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="ops-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        host, port = self.address
        self.log.info(
            "ops_http.listening", url=f"http://{host}:{port}", paths=["/metrics", "/healthz"]
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
