"""What instances of a cluster know of each other: who is running, under which id.

Each instance holds a PostgreSQL session-level advisory lock on its id for as long as it
runs, on a connection of its own. A second instance started with the same id finds the
lock taken and refuses to start: two gateways with one MQTT client id would take each
other's broker session in turn, and each would lose the messages in flight to the other.
A process that dies, even by SIGKILL, closes its connection and the server lets the lock
go at once (a machine that vanishes: within the TCP keepalive, about 30 s).

`instances` is for people: each instance's host, pid and start, and a heartbeat that
`/metrics` counts as the cluster's live instances.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

from structlog.typing import FilteringBoundLogger

from gateway.settings import redact_url
from gateway.store.db import Database
from gateway.store.outbox import depths
from gateway.store.postgres import TRANSIENT, PgConnection

POSTGRES_MIGRATIONS = (
    """
    CREATE TABLE instances (
        instance_id  text PRIMARY KEY,
        host         text NOT NULL,
        pid          integer NOT NULL,
        started_at   timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL
    );
    CREATE TABLE device_budgets (
        device_id  text NOT NULL,
        budget     text NOT NULL,
        tokens     double precision NOT NULL,
        updated_at double precision NOT NULL,
        PRIMARY KEY (device_id, budget)
    )
    """,
)

HEARTBEAT_S = 5.0
# An instance whose heartbeat is older than this is not counted as live.
LIVE_WITHIN_S = 3 * HEARTBEAT_S


class InstanceIdTaken(Exception):
    """Another running instance has this id."""


class InstanceClaim:
    """This instance's id, held for as long as it runs."""

    def __init__(self, url: str, instance_id: str, log: FilteringBoundLogger) -> None:
        self.instance_id = instance_id
        self.log = log
        self.conn = PgConnection(url, name=f"{instance_id}-claim")
        if not self._lock():
            holder = self.conn.execute(
                "SELECT host, pid, heartbeat_at FROM instances WHERE instance_id = ?",
                (instance_id,),
            ).fetchone()
            self.conn.close()
            where = (
                f" (host {holder[0]}, pid {holder[1]}, last heartbeat {holder[2]})"
                if holder
                else ""
            )
            raise InstanceIdTaken(
                f"instance id {instance_id!r} is in use by a running gateway{where} in"
                f" {redact_url(url)}: give each instance its own mqtt.client_id"
            )
        self._beat(started=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _lock(self) -> bool:
        """Take the id's lock for this connection's life; False if another holds it."""
        row = self.conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(?, 0))", (f"instance:{self.instance_id}",)
        ).fetchone()
        return bool(row and row[0])

    def _beat(self, *, started: bool = False) -> None:
        if started:
            self.conn.execute(
                "INSERT INTO instances (instance_id, host, pid, started_at, heartbeat_at)"
                " VALUES (?, ?, ?, now(), now()) ON CONFLICT (instance_id) DO UPDATE SET"
                " host = excluded.host, pid = excluded.pid, started_at = now(),"
                " heartbeat_at = now()",
                (self.instance_id, socket.gethostname(), os.getpid()),
            )
        else:
            self.conn.execute(
                "UPDATE instances SET heartbeat_at = now() WHERE instance_id = ?",
                (self.instance_id,),
            )

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._beat()
            except TRANSIENT as error:
                # The lock went with the connection: another instance could take this id
                # now. Take it back with the new connection, or say loudly that we cannot.
                self.log.warning("cluster.heartbeat_failed", error=str(error))
                self._retake()

    def _retake(self) -> None:
        try:
            taken = self._lock()
        except TRANSIENT:
            return  # still down: next beat
        if not taken:
            self.log.error("cluster.instance_id_taken", instance_id=self.instance_id)
        else:
            self._beat(started=True)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(HEARTBEAT_S + 1)
        self.conn.close()


@dataclass(frozen=True, slots=True)
class ClusterDepths:
    """Depths of the shared stores, for every instance's `/metrics`."""

    live_instances: int
    ready: int  # complete reports no instance has taken yet
    uploads_waiting: int
    per_sink: dict[str, tuple[int, float, int]]  # pending, oldest age (s), dead


def cluster_depths(conn: Database) -> ClusterDepths:
    live, ready, waiting = conn.execute(
        "SELECT (SELECT count(*) FROM instances"
        " WHERE heartbeat_at > now() - make_interval(secs => ?)),"
        " (SELECT count(*) FROM ready), (SELECT count(*) FROM reports WHERE missing > 0)",
        (LIVE_WITHIN_S,),
    ).fetchone()
    return ClusterDepths(int(live), int(ready), int(waiting), depths(conn, time.time()))


class ClusterProbe:
    """The cluster's depths for `/metrics` and `/healthz`, on a connection of its own
    (scrapes come on the HTTP server's threads, one query at a time)."""

    def __init__(self, url: str, instance_id: str) -> None:
        self.url = url
        self.instance_id = instance_id
        self._lock = threading.Lock()
        self._conn: PgConnection | None = None

    def depths(self) -> ClusterDepths:
        with self._lock:
            if self._conn is None:
                self._conn = PgConnection(self.url, name=f"{self.instance_id}-probe")
            try:
                return cluster_depths(self._conn)
            except TRANSIENT:
                self._conn.close()
                self._conn = None
                raise

    def reachable(self) -> bool:
        try:
            self.depths()
        except TRANSIENT:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
