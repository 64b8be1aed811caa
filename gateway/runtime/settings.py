"""`[limits]`, `[pipeline]`, `[tasks]` and `[metrics]`: how the running gateway takes
uplinks, works through them, dispatches tasks and shows itself to operators."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Literal

from pydantic import Field, model_validator

from gateway.devices.limits import DeviceLimits
from gateway.protocols.payloads import WireLimits
from gateway.settings import (
    GiB,
    KiB,
    Listen,
    MiB,
    PositiveFloat,
    PositiveInt,
    Section,
    listen_address,
)


class LimitsSettings(Section):
    envelope_bytes: PositiveInt = 64 * KiB
    chunk_bytes: PositiveInt = 256 * KiB
    photo_bytes: PositiveInt = 20 * MiB
    voice_bytes: PositiveInt = 20 * MiB
    media_per_report: PositiveInt = 8
    chunks_per_media: PositiveInt = 4096
    nmea_sentences: PositiveInt = 64
    track_fixes: PositiveInt = 3600
    # Each device's own budgets (gateway/devices/limits.py), so one cannot crowd out the
    # rest. 120 a minute: a terminal back from a day offline flushes its backlog at once.
    reports_per_device_per_minute: PositiveInt = 120
    media_bytes_per_device_per_hour: PositiveInt = 2 * GiB
    spool_bytes_per_device: PositiveInt = 512 * MiB  # chunks held for unfinished uploads

    def wire(self) -> WireLimits:
        return WireLimits(**self.model_dump(include={f.name for f in fields(WireLimits)}))

    def device(self) -> DeviceLimits:
        return DeviceLimits(
            self.reports_per_device_per_minute,
            self.media_bytes_per_device_per_hour,
            self.spool_bytes_per_device,
        )

    @model_validator(mode="after")
    def _budgets_fit(self) -> LimitsSettings:
        # Below these, a chunk (or a whole photo or voice note) could never be taken.
        if self.media_bytes_per_device_per_hour < self.chunk_bytes:
            raise ValueError("media_bytes_per_device_per_hour is smaller than chunk_bytes")
        if self.spool_bytes_per_device < max(self.photo_bytes, self.voice_bytes):
            raise ValueError("spool_bytes_per_device is smaller than photo_bytes or voice_bytes")
        return self


class PipelineSettings(Section):
    # "process" puts the pipeline on its own core; "thread" keeps one process (tests).
    mode: Literal["process", "thread"] = "process"
    batch: Annotated[int, Field(ge=1, le=10_000)] = 200
    idle_poll_ms: Annotated[float, Field(gt=0, le=10_000)] = 5.0
    retry_first_s: PositiveFloat = 1.0
    retry_max_s: PositiveFloat = 300.0
    publish_timeout_s: PositiveFloat = 10.0
    # A terminal whose upload fails its checksum this often gets the report rejected.
    media_max_failures: PositiveInt = 3
    # Case events (every lifecycle transition) for casework backends: how often the
    # registry is asked for unpublished ones, and how many go per round.
    case_events_poll_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    case_events_batch: Annotated[int, Field(ge=1, le=10_000)] = 200


class TaskSettings(Section):
    """Tasks for terminals that backends insert into the registry (`sent_at` NULL)."""

    poll_s: Annotated[float, Field(gt=0, le=3600)] = 2.0  # how often the registry is asked
    batch: Annotated[int, Field(ge=1, le=10_000)] = 100  # tasks published per round


class MetricsSettings(Section):
    # HOST:PORT for /metrics (Prometheus) and /healthz; unset: no HTTP endpoint.
    listen: Listen | None = None

    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else listen_address(self.listen)
