"""The intake's own identity check: is the device named by a message's topic allowed?

The broker's ACL already confines each terminal to its own topics; this is the second
line, for a broker configured by hand, an account shared by mistake, or a device revoked
while its messages were still queued for the gateway. It reads the registry the devices
commands write (`DATA_DIR/devices.db`), re-reading it at most once a second and only
after another connection committed a change.

**Open mode.** With no registry, or a registry that never held a device, every device id
is taken as before (deployments and tests that predate the registry keep working); this
is logged once as the warning `devices.open_mode`. The first device added turns the check
on, at once and for good (`devices.enforcing`): from then on only active devices are
taken. Revoked devices stay in the registry, so it never becomes empty again.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from gateway.devices.device_registry import DeviceRegistry, Status
from gateway.errors import Reason
from gateway.store.db import Database

REFRESH_S = 1.0  # how stale a status may be: a revoked device is refused within this
SEEN_FLUSH_S = 10.0  # last-seen times are written this often, in one transaction

_REFUSALS: dict[Status | None, Reason] = {
    None: Reason.DEVICE_UNKNOWN,
    "suspended": Reason.DEVICE_SUSPENDED,
    "revoked": Reason.DEVICE_REVOKED,
}


class DeviceGate:
    """Reads this machine's `devices.db` (a `Path`), or a cluster's registry through a
    PostgreSQL connection of its own: every instance polls it each second, so a device
    suspended or revoked on one is refused by all within about a second."""

    def __init__(self, source: Path | Database, log: FilteringBoundLogger) -> None:
        self.source = source
        self.log = log
        self._registry: DeviceRegistry | None = None
        self._statuses: dict[str, Status] = {}
        self._version: Hashable = None
        self._checked_at = float("-inf")
        self._seen: dict[str, str] = {}
        self._flushed_at = time.monotonic()
        self.enforcing = False
        self.refresh(force=True)
        if not self.enforcing:
            self.log.warning(
                "devices.open_mode",
                registry=self.where,
                detail="no device registered: every device id is taken; "
                "`gateway devices add` turns the identity check on",
            )

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the statuses if a second has passed and the registry changed."""
        clock = time.monotonic()
        if not force and clock - self._checked_at < REFRESH_S:
            return
        self._checked_at = clock
        if clock - self._flushed_at >= SEEN_FLUSH_S:
            self.flush()
        try:
            registry = self._open()
            if registry is None:
                return
            version = registry.data_version()
            if version == self._version and not force:
                return
            statuses = registry.statuses()
        except Exception as error:  # noqa: BLE001 - any store's failure: keep the statuses, try next second
            self.log.warning("devices.unreadable", registry=self.where, error=str(error))
            return
        self._version = version
        self._statuses = statuses
        was = self.enforcing
        self.enforcing = bool(self._statuses)
        if self.enforcing and not was:
            self.log.info("devices.enforcing", devices=len(self._statuses))

    def refusal(self, device_id: str) -> Reason | None:
        """None if the device may send; else the reason code it is refused with."""
        if not self.enforcing:
            return None
        status = self._statuses.get(device_id)
        return None if status == "active" else _REFUSALS[status]

    def seen(self, device_id: str, when: str) -> None:
        if self.enforcing:
            self._seen[device_id] = when

    def flush(self) -> None:
        """Write the last-seen times gathered since the last flush."""
        self._flushed_at = time.monotonic()
        if self._seen and self._registry is not None:
            seen, self._seen = self._seen, {}
            try:
                self._registry.mark_seen(seen)
            except Exception as error:  # noqa: BLE001 - a convenience for operators: never worth a batch
                self.log.warning("devices.last_seen_failed", error=str(error))

    def close(self) -> None:
        if self._registry is not None:
            self.flush()
            self._registry.close()
            self._registry = None

    @property
    def where(self) -> str:
        return str(self.source) if isinstance(self.source, Path) else "cluster"

    def _open(self) -> DeviceRegistry | None:
        # Never creates the file: a gateway without devices leaves no empty registry behind.
        if self._registry is None and (not isinstance(self.source, Path) or self.source.exists()):
            self._registry = DeviceRegistry(self.source)
        return self._registry
