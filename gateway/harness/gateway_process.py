"""The gateway as a child process, as operators start it: for the demo, the benchmarks and
the crash tests. Its JSON log lines tell when it is ready."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.store.db import read_only


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


def end_process(process: subprocess.Popen[Any], timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout_s`; nothing if it ended."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class GatewayProcess:
    """`gateway run` in a child process, logging JSON lines to `<data_dir>.log`."""

    data_dir: Path
    broker_url: str
    config: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)  # more of `gateway run`'s options
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, timeout_s: float = 20) -> GatewayProcess:
        """Start and wait until it has subscribed and its pipeline runs."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "gateway", "run", "--broker", self.broker_url,
                   "--data-dir", str(self.data_dir)]  # fmt: skip
        if self.config is not None:
            command += ["--config", str(self.config)]
        command += self.args
        before = len(self.log_lines())
        env = os.environ | self.env
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, env=env)  # noqa: S603
        self.process = process
        wait_until(
            lambda: self._ready_since(before) or process.poll() is not None,
            timeout_s,
            "the gateway to subscribe",
        )
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited {process.returncode}; see {self.log_path}")
        return self

    def _ready_since(self, before: int) -> bool:
        events = {line.get("event") for line in self.log_lines()[before:]}
        return {"mqtt.subscribed", "pipeline.started"} <= events

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        lines = []
        for raw in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"event": "<not json>", "text": raw})
        return lines

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush; the pipeline child dies with it."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def count(self, database: str, sql: str) -> int:
        """A count from one of its SQLite stores, read-only; 0 while it does not exist."""
        path = self.data_dir / database
        try:
            with read_only(path) as conn:
                return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def cases(self) -> list[tuple[str, str]]:
        """(report_id, case_no) rows of the SQLite registry, in registration order."""
        path = self.data_dir / "registry.db"
        if not path.exists():
            return []
        with read_only(path) as conn:
            return conn.execute("SELECT report_id, case_no FROM cases ORDER BY id").fetchall()
