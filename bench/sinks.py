"""Production sinks against embedded ones, and draining the outbox after an S3 outage.

End to end: a backlog of text reports queued by Mosquitto, then the gateway starts and the
clock runs until every report is registered, stored, published and acknowledged (every
delivery of every sink done). Two set-ups in the same run, rounds interleaved:
- embedded: SQLite registry, local object directory (the defaults);
- production: PostgreSQL (a throwaway cluster of the Debian packages) and an
  S3-compatible HTTP server (moto's, in its own process; the gateway talks to it as to MinIO).

Outage: the same backlog with the S3 server down from the start for 60 s: cases are made
and answered meanwhile, the objects wait in the outbox with backoff. Measured from the
server's return: the time to the first stored object and the drain rate of the backlog,
next to the production set-up's objects rate without an outage. Baseline for the objects
step: bare boto3 PUTs against the same server in the same run.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import summary, write
from bench.ingest import payloads, publish_backlog
from gateway.harness.gateway_process import GatewayProcess, wait_until
from gateway.harness.mosquitto import Mosquitto
from gateway.runtime.deliveries import OBJECT_WRITERS
from gateway.store.db import read_only
from tests.servers import PostgresCluster, S3Server

REPORTS = 3_000
ROUNDS = 3
OUTAGE_S = 60
DELIVERIES = ("registry", "objects", "bus", "ack")


def production_config(path: Path, s3: S3Server, dsn: str, bucket: str) -> Path:
    path.write_text(
        f'objects = "s3://{bucket}/bench"\nregistry = "{dsn}"\n\n[s3]\n'
        f'endpoint_url = "{s3.endpoint_url}"\nregion = "us-east-1"\n'
        'access_key_id = "testing"\nsecret_access_key_env = "CGT_BENCH_S3_SECRET"\n'
        "path_style = true\n",
        encoding="utf-8",
    )
    return path


def done(gateway: GatewayProcess, sink: str) -> int:
    return gateway.count(
        "outbox.db",
        f"SELECT count(*) FROM deliveries WHERE sink = '{sink}' AND state = 'done'",  # noqa: S608 - one of DELIVERIES
    )


def all_done(gateway: GatewayProcess) -> bool:
    return all(done(gateway, sink) == REPORTS for sink in DELIVERIES)


def finished_at(gateway: GatewayProcess, sink: str) -> float:
    with read_only(gateway.data_dir / "outbox.db") as conn:
        (at,) = conn.execute(
            "SELECT max(updated_at) FROM deliveries WHERE sink = ?", (sink,)
        ).fetchone()
    return float(at)


def round_through(
    gateway: GatewayProcess, broker: Mosquitto, messages: list[tuple[str, bytes]]
) -> dict[str, float]:
    """Reports per second from the first report received to every delivery done (and to
    each sink's last delivery), read from the stores' own timestamps, so the gateway's
    start-up is not counted."""
    gateway.start()  # its persistent session and subscriptions, then away
    gateway.stop()
    publish_backlog(broker.port, messages)
    gateway.start(timeout_s=60)
    wait_until(lambda: all_done(gateway), 900, "every delivery done")
    with read_only(gateway.data_dir / "inbox.db") as conn:
        (first,) = conn.execute("SELECT min(received_at) FROM reports").fetchone()
    start = datetime.fromisoformat(first).timestamp()
    last = {sink: finished_at(gateway, sink) for sink in DELIVERIES}
    gateway.stop()
    rates = {sink: REPORTS / (at - start) for sink, at in last.items()}
    return {"end_to_end": REPORTS / (max(last.values()) - start), **rates}


def raw_puts(s3: S3Server, bucket: str, count: int = 1000) -> float:
    """The baseline: bare boto3 PUTs of a report-sized object, as many threads as the
    gateway's objects step has writers, against the same server."""
    s3.create_bucket(bucket)
    client = s3.client()
    body = payloads()[0][1] * 6  # about the size of a normalized report
    start = time.perf_counter()
    with ThreadPoolExecutor(OBJECT_WRITERS) as pool:
        for future in [
            pool.submit(client.put_object, Bucket=bucket, Key=f"raw/{n}.json", Body=body)
            for n in range(count)
        ]:
            future.result()
    return count / (time.perf_counter() - start)


def outage_round(
    gateway: GatewayProcess, broker: Mosquitto, s3: S3Server, messages: list[tuple[str, bytes]]
) -> dict[str, float]:
    gateway.start()
    gateway.stop()
    publish_backlog(broker.port, messages)
    s3.outage()
    gateway.start(timeout_s=60)
    wait_until(lambda: done(gateway, "ack") == REPORTS, 300, "every report answered")
    time.sleep(max(0.0, OUTAGE_S - 1))  # the outage lasts about OUTAGE_S from the start
    pending = REPORTS - done(gateway, "objects")
    s3.resume()
    resumed = time.perf_counter()
    wait_until(lambda: done(gateway, "objects") > REPORTS - pending, 600, "a first object")
    first = time.perf_counter() - resumed
    wait_until(lambda: done(gateway, "objects") == REPORTS, 900, "the backlog drained")
    drained = time.perf_counter() - resumed
    gateway.stop()
    return {"pending_at_return": pending, "first_object_s": first, "drain_per_s": pending / drained}


def run() -> dict[str, Any]:
    messages = payloads()[:REPORTS]
    embedded: dict[str, list[float]] = {}
    production: dict[str, list[float]] = {}
    raw: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="cgt-bench-sinks-") as scratch,
        Mosquitto(Path(scratch) / "broker") as broker,
        PostgresCluster() as postgres,
        S3Server(Path(scratch) / "s3") as s3,
    ):
        env = {"CGT_BENCH_S3_SECRET": "testing"}

        def production_gateway(name: str) -> GatewayProcess:
            bucket = f"cgt-{name}"
            s3.create_bucket(bucket)
            dsn = postgres.create_database(name.replace("-", "_"))
            config = production_config(Path(scratch) / f"{name}.toml", s3, dsn, bucket)
            return GatewayProcess(Path(scratch) / name, broker.url, config=config, env=env)

        for n in range(ROUNDS):  # interleaved, so drift in the machine hits both alike
            local = GatewayProcess(Path(scratch) / f"embedded-{uuid.uuid4().hex[:6]}", broker.url)
            for key, rate in round_through(local, broker, messages).items():
                embedded.setdefault(key, []).append(rate)
            raw.append(raw_puts(s3, f"cgt-raw-{n}"))
            remote = production_gateway(f"prod-{n}")
            for key, rate in round_through(remote, broker, messages).items():
                production.setdefault(key, []).append(rate)
        outage = outage_round(production_gateway("outage"), broker, s3, messages)
    medians = {
        setup: {key: summary(values)["median"] for key, values in rates.items()}
        for setup, rates in (("embedded", embedded), ("production", production))
    }
    result = {
        "benchmark": "sinks",
        "reports": REPORTS,
        "rounds": ROUNDS,
        "unit": "reports per second from the first received to the last delivery done",
        "embedded_sqlite_local": {key: summary(values) for key, values in embedded.items()},
        "production_postgres_s3": {key: summary(values) for key, values in production.items()},
        "ratio_production_to_embedded": {
            key: medians["production"][key] / medians["embedded"][key] for key in embedded
        },
        "raw_boto3_puts_per_s": summary(raw),
        "objects_over_raw_puts": medians["production"]["objects"] / summary(raw)["median"],
        "outage_s": OUTAGE_S,
        "outage": outage,
        "drain_over_production_objects_rate": outage["drain_per_s"]
        / medians["production"]["objects"],
    }
    write("sinks", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
