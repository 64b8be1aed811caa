"""The soak's moving parts: the gateway in a process group of its own, the simulator's
command line, the drain probe, and (with --production, or several instances in shared
mode) PostgreSQL and an S3 server.

The gateway is started as operators start it (`gateway run`), but with
`start_new_session`, so that one SIGKILL to its process group takes the intake, the
pipeline and every media worker at the same instant, as a power cut would.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from gateway.harness.gateway_process import wait_until
from gateway.store.db import read_only
from gateway.store.outbox import READY_CURSOR, depths

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from tests.servers import PostgresCluster, S3Server

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the soak runner dies, however it dies, so
    no gateway or simulator (each in a session of its own) outlives a killed soak."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


READY_EVENTS = frozenset({"mqtt.subscribed", "pipeline.started"})


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies do not count: in a container
    nobody may ever reap an orphaned grandchild)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


@dataclass
class Gateway:
    """`gateway run` in its own process group; JSON log lines appended to `log_path`."""

    data_dir: Path
    broker_url: str
    log_path: Path
    config: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    client_id: str | None = None  # an instance's own id in shared mode
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> float:
        """Start and wait until it has subscribed and its pipeline runs; seconds taken."""
        began = time.monotonic()
        command = [sys.executable, "-m", "gateway", "run", "--broker", self.broker_url,
                   "--data-dir", str(self.data_dir)]  # fmt: skip
        if self.config is not None:
            command += ["--config", str(self.config)]
        if self.client_id is not None:
            command += ["--client-id", self.client_id]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own program
                command,
                cwd=self.data_dir.parent,  # not the caller's: `-m` would import from there
                stdout=log,
                stderr=log,
                env=os.environ | self.env,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - the runner starts no threads
            )
        self.process = process
        seen: set[str] = set()

        def ready() -> bool:
            nonlocal offset
            with self.log_path.open("rb") as log:
                log.seek(offset)
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]
            offset += len(complete)
            for line in complete.splitlines():
                with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                    seen.add(orjson.loads(line).get("event"))
            return seen >= READY_EVENTS or process.poll() is not None

        wait_until(ready, timeout_s, "the gateway to subscribe and start its pipeline")
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited {process.returncode}; see {self.log_path}")
        return time.monotonic() - began

    def exited(self) -> int | None:
        """Its exit status if it ended by itself (not killed or stopped by the soak)."""
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL to the whole group at once: no goodbye, no flush, no orderly child exit."""
        if self.process is None:
            return
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait(10)
        wait_until(lambda: not group_alive(pgid), 10, f"process group {pgid} to die")
        self.process = None

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM, as a supervisor stops it; SIGKILL if it does not finish in time."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not group_alive(process.pid), 10, "the gateway's children")
        return process.returncode


# ---- the simulator ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimPlan:
    broker_url: str
    terminals: int
    duration_s: float
    seed: int
    json_path: Path
    queue_dir: Path
    reports_per_hour: float | None = None  # per terminal; None: the scenario's rate


def simulator_command(plan: SimPlan) -> list[str]:
    """`firmware-sim run` for the soak: terminals patrol and report for the duration with
    the soak scenario's fault knobs (firmware_sim/scenarios/soak.toml), then drain their
    store-and-forward queues; options given here win over the scenario's."""
    command = [
        sys.executable, "-m", "firmware_sim", "run",
        "--scenario", "soak",
        "--broker", plan.broker_url,
        "--terminals", str(plan.terminals),
        "--duration", f"{plan.duration_s:g}",
        "--queue-dir", str(plan.queue_dir),
        "--seed", str(plan.seed),
        "--json", str(plan.json_path),
    ]  # fmt: skip
    if plan.reports_per_hour is not None:
        command += ["--reports-per-hour", f"{plan.reports_per_hour:g}"]
    return command


# ---- what the gateway still owes -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backlog:
    unread: int  # ready reports the pipeline has not taken yet
    pending: dict[str, int]  # per step: deliveries still to make
    dead: dict[str, int]  # per step: dead letters

    @property
    def drained(self) -> bool:
        return self.unread == 0 and not any(self.pending.values())

    def describe(self) -> str:
        pending = ",".join(f"{k}:{v}" for k, v in self.pending.items())
        return f"unread={self.unread} pending={pending} dead={sum(self.dead.values())}"


def backlog(data_dir: Path) -> Backlog | None:
    """What the gateway has taken in and not finished, read-only; None before it has
    stores (or while one is being created)."""
    try:
        with read_only(data_dir / "inbox.db") as inbox:
            (last,) = inbox.execute("SELECT coalesce(max(seq), 0) FROM ready").fetchone()
        with read_only(data_dir / "outbox.db") as outbox:
            row = outbox.execute(
                "SELECT value FROM cursors WHERE name = ?", (READY_CURSOR,)
            ).fetchone()
            per_step = depths(outbox)
    except sqlite3.OperationalError:
        return None
    return _backlog(int(last) - (int(row[0]) if row else 0), per_step)


def _backlog(unread: int, per_step: dict[str, tuple[int, float, int]]) -> Backlog:
    """From the outbox's `depths()`: per step (pending, oldest age, dead)."""
    return Backlog(
        unread=unread,
        pending={step: pending for step, (pending, _, _) in per_step.items()},
        dead={step: dead for step, (_, _, dead) in per_step.items()},
    )


def cases_registered(data_dir: Path) -> int | None:
    try:
        with read_only(data_dir / "registry.db") as conn:
            return int(conn.execute("SELECT count(*) FROM cases").fetchone()[0])
    except sqlite3.OperationalError:
        return None


def pick_case(data_dir: Path, rng: random.Random) -> tuple[str, str] | None:
    """A registered case and the device that reported it, for a verification task."""
    try:
        with read_only(data_dir / "registry.db") as conn:
            rows = conn.execute(
                "SELECT case_no, json_extract(report, '$.reporter.device_id') FROM cases"
            ).fetchall()
    except sqlite3.OperationalError:
        return None
    return _one(rows, rng)


def _one(rows: Sequence[Sequence[object]], rng: random.Random) -> tuple[str, str] | None:
    if not rows:
        return None
    case_no, device_id = rng.choice(rows)
    return str(case_no), str(device_id)


# ---- production sinks (--production), and the shared stores of a cluster (--instances) ----

BUCKET = "cgt-soak"
PREFIX = "city"
S3_SECRET_ENV = "CGT_SOAK_S3_SECRET"  # noqa: S105 - the name of a variable, not a secret
SHARED_GROUP = "cgt"
# A dead instance's leased deliveries wait this long for another: well above a media
# batch on a busy 2-core machine, short enough that the drain does not wait minutes.
LEASE_S = 20
DATABASE_DOWN_S = 5.0  # long enough that commits fail and the terminals' acks time out


@dataclass
class ProductionSinks:
    """A throwaway PostgreSQL cluster and moto's S3 server (`tests/servers.py`); in shared
    mode the same database also holds the instances' stores (schema `cgt`)."""

    postgres: PostgresCluster
    s3: S3Server
    dsn: str

    @classmethod
    def start(cls, directory: Path) -> ProductionSinks:
        from tests.servers import PostgresCluster, S3Server  # noqa: PLC0415 - only here

        postgres = PostgresCluster().start()
        try:
            s3 = S3Server(directory / "s3").start()
        except BaseException:
            postgres.close()
            raise
        s3.create_bucket(BUCKET)
        return cls(postgres, s3, postgres.create_database("soak"))

    @property
    def objects_url(self) -> str:
        return f"s3://{BUCKET}/{PREFIX}"

    def client(self) -> S3Client:
        return self.s3.client(max_attempts=5, read_timeout=60)

    def write_config(self, path: Path, *, shared: bool = False) -> Path:
        """The gateway's config: PostgreSQL registry and S3 objects; `shared`: also every
        store in the database (the registry defaults to it) and one shared subscription."""
        registry = "" if shared else f'registry = "{self.dsn}"\n'
        cluster = (
            f'[cluster]\nurl = "{self.dsn}"\nlease_s = {LEASE_S}\n\n'
            f'[mqtt]\nshared_group = "{SHARED_GROUP}"\nkeepalive_s = 10\n\n'
            if shared
            else ""
        )
        path.write_text(
            f'objects = "{self.objects_url}"\n'
            f"{registry}\n"
            f"{cluster}"
            f"{self.s3.gateway_settings(S3_SECRET_ENV)}",
            encoding="utf-8",
        )
        return path

    def upgrade_schema(self) -> str:
        """`gateway db upgrade --cluster`, as an operator runs it before the instances."""
        done = subprocess.run(  # noqa: S603 - our own program
            [sys.executable, "-m", "gateway", "db", "upgrade", "--cluster", self.dsn],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"gateway db upgrade exited {done.returncode}: {done.stderr}")
        return done.stdout.strip()

    def restart_database(self, *, crash: bool) -> None:
        """PostgreSQL down and up on the same port and data: an immediate shutdown (a
        crash: recovery from the WAL at start) or a fast one (sessions ended)."""
        if crash:
            self.postgres.kill()
        else:
            self.postgres.stop()
        time.sleep(DATABASE_DOWN_S)
        self.postgres.start()

    def backlog(self) -> Backlog | None:
        """What the cluster has taken in and not finished (every instance's alike); None
        while the database cannot say."""
        import psycopg  # noqa: PLC0415 - only with PostgreSQL

        from gateway.store.cluster import cluster_depths  # noqa: PLC0415
        from gateway.store.postgres import PgConnection  # noqa: PLC0415

        try:
            conn = PgConnection(self.dsn, name="cgt-soak-probe", connect_timeout_s=2)
        except psycopg.Error:
            return None
        try:
            state = cluster_depths(conn)
        except psycopg.Error:
            return None  # not migrated yet, or going down
        finally:
            conn.close()
        return _backlog(state.ready, state.per_sink)

    def cases(self) -> int | None:
        """Cases registered so far; None while the registry cannot say."""
        import psycopg  # noqa: PLC0415 - only with --production

        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                row = conn.execute("SELECT count(*) FROM cases").fetchone()
        except psycopg.Error:
            return None  # not migrated yet, or busy
        return int(row[0]) if row else None

    def pick_case(self, rng: random.Random) -> tuple[str, str] | None:
        import psycopg  # noqa: PLC0415 - only with --production

        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                rows = conn.execute(
                    "SELECT case_no, report->'reporter'->>'device_id' FROM cases"
                ).fetchall()
        except psycopg.Error:
            return None
        return _one(rows, rng)

    def close(self) -> None:
        self.s3.stop()
        self.postgres.close()
