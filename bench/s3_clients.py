"""The gateway's S3 object store against bare boto3, on the same S3 server in the same run.

Each PUT as the objects sink makes it: a report's `report.json` (about 2 KB) and a photo
original (2 MB, read from the spool), each with its `x-amz-checksum-sha256`. Two clients,
rounds alternated (ABBA) so that drift falls on both:
- gateway: `gateway.sinks.objects_s3.S3ObjectStore` (`put_bytes`, `put_file`; obstore);
- boto3: bare `put_object` with `ChecksumSHA256`, as the store made its requests before
  obstore (a boto3 client set up as the store's was).

Measured per PUT: the client's CPU (this process's user + system time, obstore's Rust
threads included), the S3 server's CPU (its /proc/PID/stat) and the wall time, all PUTs in
sequence from one thread. The server is SeaweedFS (`bench.seaweedfs`), a production one.

    .venv/bin/python -m bench.s3_clients           # about a minute
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from bench.common import cpu_model, summary, write
from bench.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedFS
from gateway.sinks.objects_s3 import S3ObjectStore
from gateway.sinks.settings import S3Settings

BUCKET = "cgt-bench"
ROUNDS = 4
SIZES = {"report_json": (2_000, 400), "photo": (2_000_000, 40)}  # bytes, PUTs a round
SECRET_ENV = "CGT_BENCH_S3_SECRET"  # noqa: S105 - a variable's name


def ticks(pid: int) -> float:
    """A process's CPU seconds (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_put(store: S3ObjectStore, spool: Path) -> Callable[[str, bytes], None]:
    def put(key: str, data: bytes) -> None:
        if len(data) < 100_000:
            store.put_bytes(key, data, content_type="application/json")
        else:
            path = spool / key.replace("/", "_")
            path.write_bytes(data)
            store.put_file(key, path, sha256=hashlib.sha256(data).hexdigest(),
                           content_type="image/jpeg")  # fmt: skip

    return put


def boto3_put(endpoint: str) -> Callable[[str, bytes], None]:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 3},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )

    def put(key: str, data: bytes) -> None:
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        client.put_object(Bucket=BUCKET, Key=key, Body=data, ChecksumSHA256=digest,
                          ContentType="application/octet-stream")  # fmt: skip

    return put


def one_round(
    put: Callable[[str, bytes], None], server_pid: int, size: int, count: int, tag: str
) -> dict[str, float]:
    bodies = [os.urandom(size) for _ in range(count)]  # fresh keys and bytes each time
    client_before, server_before = time.process_time(), ticks(server_pid)
    started = time.perf_counter()
    for index, body in enumerate(bodies):
        put(f"{tag}/{index}", body)
    wall = time.perf_counter() - started
    return {
        "client_cpu_us": (time.process_time() - client_before) / count * 1e6,
        "server_cpu_us": (ticks(server_pid) - server_before) / count * 1e6,
        "wall_us": wall / count * 1e6,
    }


def run() -> dict[str, Any]:
    os.environ[SECRET_ENV] = SECRET_KEY
    with (
        tempfile.TemporaryDirectory(prefix="cgt-bench-s3-") as scratch,
        SeaweedFS(Path(scratch) / "seaweedfs") as server,
    ):
        server.create_bucket(BUCKET)
        spool = Path(scratch) / "spool"
        spool.mkdir()
        store = S3ObjectStore(
            f"s3://{BUCKET}",
            S3Settings(
                endpoint_url=server.endpoint_url,
                region="us-east-1",
                access_key_id=ACCESS_KEY,
                secret_access_key_env=SECRET_ENV,
                path_style=True,
            ),
        )
        clients = {"gateway": gateway_put(store, spool), "boto3": boto3_put(server.endpoint_url)}
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            kind: {name: [] for name in clients} for kind in SIZES
        }
        for kind, (size, count) in SIZES.items():
            for name, put in clients.items():  # warm: connections, the first signing
                one_round(put, server.pid, size, 5, f"warm/{kind}/{name}")
            for rnd in range(ROUNDS):
                order = list(clients) if rnd % 2 == 0 else list(reversed(clients))
                for name in order:
                    measured = one_round(
                        clients[name], server.pid, size, count, f"{kind}/{name}/{rnd}"
                    )
                    samples[kind][name].append(measured)
        store.close()
        version = server.version()
    results: dict[str, Any] = {}
    for kind, by_client in samples.items():
        results[kind] = {
            name: {
                measure: summary([sample[measure] for sample in rounds])
                for measure in ("client_cpu_us", "server_cpu_us", "wall_us")
            }
            for name, rounds in by_client.items()
        }
        gateway, bare = results[kind]["gateway"], results[kind]["boto3"]
        results[kind]["gateway_to_boto3"] = {
            measure: gateway[measure]["median"] / bare[measure]["median"]
            for measure in ("client_cpu_us", "server_cpu_us", "wall_us")
        }
    result = {
        "benchmark": "s3_clients",
        "cpu_model": cpu_model(),
        "server": f"SeaweedFS {version}",
        "rounds": ROUNDS,
        "puts_per_round": {kind: count for kind, (_, count) in SIZES.items()},
        "unit": "µs per PUT, medians over rounds",
        "results": results,
    }
    write("s3_clients", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
