"""`[store]`: the intake's commit batches, upload lifetimes and the local stores' bounds."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from gateway.settings import (
    DAY,
    HOUR,
    MINUTE,
    GiB,
    MiB,
    PositiveFloat,
    PositiveInt,
    Section,
    check_postgres_url,
)
from gateway.store.levels import StoreLimits


class StoreSettings(Section):
    commit_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    commit_batch_bytes: PositiveInt = 16 * MiB
    commit_linger_ms: Annotated[float, Field(ge=0, le=1000)] = 2.0
    # Messages received but not yet committed; the MQTT thread waits beyond this.
    intake_queue_bytes: PositiveInt = 64 * MiB
    upload_ttl_s: PositiveInt = DAY
    orphan_ttl_s: PositiveInt = HOUR
    housekeeping_s: PositiveInt = MINUTE
    # Bounds of the local stores (gateway/store/levels.py): past them, new media (or new
    # reports) are refused with `server.retry_later` instead of filling the disk.
    spool_max_bytes: PositiveInt = 8 * GiB
    outbox_max_reports: PositiveInt = 200_000
    min_free_bytes: Annotated[int, Field(ge=0)] = 512 * MiB

    def limits(self) -> StoreLimits:
        return StoreLimits(self.spool_max_bytes, self.outbox_max_reports, self.min_free_bytes)


# How long a shared outbox's batch of deliveries stays with the instance that took it.
LEASE_S = 120.0


class ClusterSettings(Section):
    """`[cluster]`: several instances sharing their state in PostgreSQL and their media in
    S3 (docs/cluster.md). Unset: one instance on this machine's SQLite files."""

    # postgresql://USER@HOST[:PORT]/DB (the password from PGPASSWORD or ~/.pgpass).
    url: str | None = None
    # How long a batch of deliveries stays with the instance that took it: an instance
    # that dies holds its batches this long before another takes them over.
    lease_s: Annotated[float, Field(ge=1, le=3600)] = LEASE_S
    connect_timeout_s: PositiveFloat = 5.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_postgres_url(value)
