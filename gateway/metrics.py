"""Prometheus metrics: counters and histograms where things happen, gauges read at scrape.

The gateway is two processes (intake, pipeline), so counters and histograms use
prometheus_client's multiprocess mode: `gateway run` points PROMETHEUS_MULTIPROC_DIR at
a fresh directory under the data dir before anything imports prometheus_client, each
process writes its values to memory-mapped files there, and the intake process serves
their sum. Depths and states (inbox, outbox per sink, dead letters, spool, broker
connection) are not counted along the way but read from the stores at each scrape
(`gateway.status`), so they are right even after a restart. Without the variable (unit
tests, one process) the same calls update ordinary in-process metrics.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: from a tenth of a millisecond (a commit) to ten minutes (an outage's backlog).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)  # fmt: skip

MESSAGES = Counter(
    "cgt_messages_received", "Uplink messages committed to the inbox, by type.", ["type"]
)
REPORTS_RECEIVED = Counter("cgt_reports_received", "New reports stored in the inbox.")
REPORTS_ACCEPTED = Counter("cgt_reports_accepted", "Reports registered as cases.")
REJECTED = Counter(
    "cgt_rejected",
    "Rejections sent to terminals (reports, chunks, topics), by reason code.",
    ["reason"],
)
MEDIA_BYTES_IN = Counter(
    "cgt_media_bytes_in", "Bytes of media originals assembled from chunks, by kind.", ["kind"]
)
MEDIA_BYTES_OUT = Counter(
    "cgt_media_bytes_out", "Bytes of media derivatives made, by kind.", ["kind"]
)
STAGE_LATENCY = Histogram(
    "cgt_stage_latency_seconds",
    "Per report: from the moment a stage had it due until the stage was done with it.",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
STAGE_BATCH = Histogram(
    "cgt_stage_batch_seconds",
    "Time to run one batch of a stage (a commit, a registry transaction, a publish round).",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
SINK_FAILURES = Counter(
    "cgt_sink_failures",
    "Failed deliveries, by sink and outcome (retry, dead).",
    ["sink", "outcome"],
)


def registry_for_scrape() -> CollectorRegistry:
    """A registry summing every process's values (or this process's, without multiprocess)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory is None:
        from prometheus_client import REGISTRY  # noqa: PLC0415

        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def stage_done(stage: str, due_since: Iterable[float], batch_s: float) -> None:
    now = time.time()
    STAGE_BATCH.labels(stage).observe(batch_s)
    latency = STAGE_LATENCY.labels(stage)
    for since in due_since:
        latency.observe(max(0.0, now - since))
