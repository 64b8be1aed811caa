"""How full the local stores are, and whether the intake may take more.

A gateway cut off from its sinks keeps taking reports into its local stores; left alone
that fills the disk, and then nothing works, not even the acks of what is already
stored. So the stores are bounded:

- **spool** (`store.spool_max_bytes`): chunk data in the inbox plus assembled media files
  not yet stored. At the bound, new media chunks and new reports with media are refused
  with `server.retry_later`: the terminal keeps them and sends them again later.
- **outbox** (`store.outbox_max_reports`): reports waiting for delivery (the pending
  deliveries of the busiest sink). At the bound, every new report is refused with
  `server.retry_later`.
- **disk** (`store.min_free_bytes`): below this much free space on the data directory's
  filesystem, both of the above apply, whatever the counts say.

Reports already stored are never dropped, re-sent reports are still answered, and
status and track messages are still taken. The levels are measured once a second off
the intake's path (`StoreWatch`), so a check costs the intake nothing.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from gateway.store.db import Database, read_only


@dataclass(frozen=True, slots=True)
class StoreLimits:
    spool_max_bytes: int
    outbox_max_reports: int
    min_free_bytes: int


@dataclass(frozen=True, slots=True)
class StoreLevels:
    spool_bytes: int = 0  # chunk data in the inbox + assembled files in the spool
    outbox_reports: int = 0  # reports with a delivery not yet done
    free_bytes: int = 1 << 62  # on the data directory's filesystem
    media_refusal: str | None = None  # why new media are refused, when they are
    report_refusal: str | None = None  # why new reports are refused, when they are


def judge(
    spool_bytes: int, outbox_reports: int, free_bytes: int, limits: StoreLimits
) -> StoreLevels:
    """The levels and what they mean for the intake (pure)."""
    report_refusal = media_refusal = None
    if free_bytes < limits.min_free_bytes:
        report_refusal = media_refusal = (
            f"the gateway's disk has {free_bytes} bytes free, under {limits.min_free_bytes}"
        )
    elif outbox_reports >= limits.outbox_max_reports:
        report_refusal = media_refusal = (
            f"{outbox_reports} reports wait for delivery (limit {limits.outbox_max_reports})"
        )
    elif spool_bytes >= limits.spool_max_bytes:
        media_refusal = (
            f"the media spool holds {spool_bytes} bytes (limit {limits.spool_max_bytes})"
        )
    return StoreLevels(spool_bytes, outbox_reports, free_bytes, media_refusal, report_refusal)


def _tree_bytes(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # deleted while we looked: no longer counts
                continue
    return total


def _scalar(path: Path, query: str) -> int:
    """One number from a store, on a read-only connection of our own."""
    if not path.exists():
        return 0
    with read_only(path) as conn:
        (value,) = conn.execute(query).fetchone()
    return int(value or 0)


class StoreWatch:
    """Measures the stores every `interval_s` on its own thread; `levels` is the latest."""

    def __init__(
        self,
        data_dir: Path,
        inbox: Path,
        outbox: Path,
        spool: Path,
        limits: StoreLimits,
        log: FilteringBoundLogger,
        interval_s: float = 1.0,
        shared: Database | None = None,
    ) -> None:
        """`shared`: a cluster's connection (this thread's own), read instead of the files."""
        self.data_dir, self.inbox, self.outbox, self.spool = data_dir, inbox, outbox, spool
        self.shared = shared
        self.limits = limits
        self.log = log
        self.interval_s = interval_s
        self.levels = StoreLevels()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watch", daemon=True)

    def _scalar(self, path: Path, query: str) -> int:
        if self.shared is None:
            return _scalar(path, query)
        (value,) = self.shared.execute(query).fetchone()
        return int(value or 0)

    def measure(self) -> StoreLevels:
        # Kept by the inbox's triggers: no scan of the chunks themselves.
        chunk_bytes = self._scalar(self.inbox, "SELECT sum(bytes) FROM device_spool")
        # The busiest sink's pending deliveries: a report waits while any sink has it, and
        # this count reads only the pending-deliveries index.
        waiting = self._scalar(
            self.outbox,
            "SELECT max(n) FROM (SELECT count(*) AS n FROM deliveries WHERE state = 'pending'"
            " GROUP BY sink) AS per_sink",
        )
        free = shutil.disk_usage(self.data_dir).free
        levels = judge(chunk_bytes + _tree_bytes(self.spool), waiting, free, self.limits)
        before = self.levels
        if (levels.media_refusal is None) != (before.media_refusal is None):
            self.log.warning(
                "store.media_refused" if levels.media_refusal else "store.media_taken_again",
                reason=levels.media_refusal or before.media_refusal,
            )
        if (levels.report_refusal is None) != (before.report_refusal is None):
            self.log.warning(
                "store.reports_refused" if levels.report_refusal else "store.reports_taken_again",
                reason=levels.report_refusal or before.report_refusal,
            )
        self.levels = levels
        return levels

    def start(self) -> None:
        self.measure()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.measure()
            except Exception as error:  # noqa: BLE001 - any store's failure: keep the last levels
                self.log.warning("store.measure_failed", error=str(error))
