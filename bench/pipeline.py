"""The pipeline alone: how fast ready reports become registered, stored and acknowledged.

A backlog of text-only reports is put in a real inbox (through the real intake code),
then the pipeline runs with its threads, the real SQLite registry and local object store,
and an in-memory publisher (no broker), until every report's ack is done. The intake
rate of the same reports (decode and batched commit, no MQTT) is measured beside it.
This splits the end-to-end figure of `bench.ingest` into its two halves.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import summary, write
from bench.ingest import payloads
from gateway import logs
from gateway.config import load_config
from gateway.geo.places import load_locator
from gateway.geo.report_location import Geo
from gateway.harness.gateway_process import wait_until
from gateway.media.pool import InlineRunner
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import load_profile
from gateway.protocols.terminal import decode_uplink
from gateway.runtime.intake import Arrived, Intake
from gateway.runtime.pipeline import Pipeline, PipelineTuning
from gateway.settings import default_config_dir
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.memory import MemoryPublisher
from gateway.sinks.objects_local import LocalObjectStore
from gateway.store.inbox import Inbox
from gateway.store.outbox import Backoff, Outbox
from gateway.store.spool import LocalSpool

REPORTS = 10_000
ROUNDS = 3
SHANGHAI = ZoneInfo("Asia/Shanghai")


def one_round(scratch: Path) -> dict[str, float]:
    log = logs.get("bench")
    profile = load_profile(default_config_dir() / "codes", "gbt30428")
    inbox, outbox = Inbox(scratch / "inbox.db"), Outbox(scratch / "outbox.db")
    intake = Intake(inbox, outbox, profile, log)
    messages = payloads()[:REPORTS]
    start = time.perf_counter()
    for first in range(0, len(messages), 500):
        intake.apply(
            [
                Arrived(decode_uplink(topic, payload), "2026-11-28T01:00:00+00:00")
                for topic, payload in messages[first : first + 500]
            ]
        )
    intake_rate = len(messages) / (time.perf_counter() - start)

    geo = load_config(None).geo
    pipeline = Pipeline(
        Inbox(scratch / "inbox.db"),
        Outbox(scratch / "outbox.db"),
        LocalSpool(scratch / "spool"),
        InlineRunner(),  # text-only reports: no media jobs
        SqliteRegistry(scratch / "registry.db", SHANGHAI),
        LocalObjectStore(scratch / "objects"),
        MemoryPublisher(),
        profile,
        AcceptanceWindow(SHANGHAI, clock(8), clock(18)),
        Geo(load_locator(geo), geo.checks.rules()),  # as `gateway run` builds it
        PipelineTuning(200, 0.005, 10, 3, Backoff(), 3600, 86400, 3600),
        log,
    )
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(stop,))
    start = time.perf_counter()
    runner.start()

    def done(sink: str) -> int:
        sql = "SELECT count(*) FROM deliveries WHERE sink = ? AND state = 'done'"
        return int(outbox.conn.execute(sql, (sink,)).fetchone()[0])

    finished: dict[str, float] = {}

    def all_done() -> bool:
        for sink in ("registry", "ack", "objects"):
            if sink not in finished and done(sink) == len(messages):
                finished[sink] = time.perf_counter() - start
        return len(finished) == 3

    wait_until(all_done, 600, "the pipeline to finish")
    stop.set()
    runner.join()
    return {"intake": intake_rate} | {sink: len(messages) / t for sink, t in finished.items()}


def run() -> dict[str, Any]:
    logs.setup("warning", "json", stream=io.StringIO())
    rounds = []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory(prefix="cgt-bench-pipeline-") as scratch:
            rounds.append(one_round(Path(scratch)))
    result = {
        "benchmark": "pipeline",
        "reports": REPORTS,
        "rounds": ROUNDS,
        "unit": "reports per second",
        "intake_decode_and_commit": summary([r["intake"] for r in rounds]),
        "pipeline_registered": summary([r["registry"] for r in rounds]),
        "pipeline_acked": summary([r["ack"] for r in rounds]),
        "pipeline_objects_stored": summary([r["objects"] for r in rounds]),
    }
    write("pipeline", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
