"""Builders of valid wire messages for tests (the simulator has its own encoder)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import struct
import uuid
import wave
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gateway.lifecycle import Accepted, Registered
from gateway.normalize.model import (
    UNPLACED,
    Acceptance,
    Clock,
    CodeName,
    Coverage,
    Location,
    NormalizedReport,
    ReportClass,
    Reporter,
    ResponsibleUnit,
    Wgs84,
)
from gateway.runtime.pipeline import PipelineTuning
from gateway.store.outbox import Backoff


@dataclass
class Upload:
    """One media file, its manifest entry and its chunks."""

    data: bytes
    kind: str = "photo"
    mime: str = "image/jpeg"
    chunk_bytes: int = 1024
    media_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def manifest(self) -> dict[str, Any]:
        return {
            "media_id": self.media_id,
            "kind": self.kind,
            "mime": self.mime,
            "bytes": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
            "chunk_bytes": self.chunk_bytes,
        }

    @property
    def chunks(self) -> list[bytes]:
        size = self.chunk_bytes
        return [self.data[i : i + size] for i in range(0, len(self.data), size)]

    def chunk_topic(self, device_id: str, seq: int) -> str:
        return f"cgt/v1/{device_id}/media/{self.media_id}/{seq}"


def random_upload(size: int = 5000, chunk_bytes: int = 1024, **kwargs: Any) -> Upload:
    return Upload(os.urandom(size), chunk_bytes=chunk_bytes, **kwargs)


def envelope(uploads: list[Upload] | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "report_id": str(uuid.uuid4()),
        "created_at": "2026-11-28T09:15:02+08:00",
        "kind": "event",
        "class_code": "0102",
        "description": "路边暴露垃圾一堆",
        "inspector_id": "INS-0042",
        "fix": {"lat": 32.0109, "lon": 120.8551, "accuracy_m": 6.5, "time": "2026-11-28T01:14:58Z"},
        "media": [upload.manifest for upload in uploads or []],
    }
    body.update(overrides)
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def jpeg_bytes(
    size: tuple[int, int] = (640, 480), orientation: int = 1, seed: int | None = None
) -> bytes:
    """A real JPEG of random noise (so each one is unique), with an EXIF orientation."""
    from PIL import Image  # noqa: PLC0415 - only tests with media need Pillow

    noise = random.Random(seed).randbytes(size[0] * size[1] * 3)
    image = Image.frombytes("RGB", size, noise)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def wav_bytes(seconds: float = 1.0, rate: int = 16000, seed: int | None = None) -> bytes:
    """A real WAV voice note: a tone with a little noise (so each one is unique)."""
    rng = random.Random(seed)
    frames = bytearray()
    for n in range(int(seconds * rate)):
        sample = int(8000 * math.sin(2 * math.pi * 220 * n / rate)) + rng.randint(-200, 200)
        frames += struct.pack("<h", sample)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(bytes(frames))
    return out.getvalue()


def photo_upload(chunk_bytes: int = 65536, **kwargs: Any) -> Upload:
    return Upload(jpeg_bytes(**kwargs), chunk_bytes=chunk_bytes)


def voice_upload(chunk_bytes: int = 65536, **kwargs: Any) -> Upload:
    return Upload(wav_bytes(**kwargs), kind="voice", mime="audio/wav", chunk_bytes=chunk_bytes)


# A pipeline for unit tests: retries at once, housekeeping out of the way.
FAST_PIPELINE = PipelineTuning(
    batch=100,
    idle_poll_s=0.01,
    publish_timeout_s=1,
    media_max_failures=3,
    backoff=Backoff(0.0001, 0.0001),
    housekeeping_s=3600,
    upload_ttl_s=86400,
    orphan_ttl_s=3600,
)


def normalized(
    report_id: str | None = None,
    device_id: str = "tz-0001",
    *,
    kind: Literal["component", "event"] = "event",
    class_code: str = "0102",
    received_at: str = "2026-11-28T01:15:03.250000+00:00",
    task_id: str | None = None,
) -> NormalizedReport:
    """A valid normalized report without media, placed nowhere: for the stores' and sinks'
    tests, which need one and do not care where it is."""
    received = datetime.fromisoformat(received_at)
    return NormalizedReport(
        report_id=report_id or str(uuid.uuid4()),
        case_no=None,
        class_=ReportClass(
            type=kind,
            code=class_code,
            major=CodeName(code=class_code[:2], name="市容环境"),
            minor=CodeName(code=class_code[2:], name="暴露垃圾"),
            name_en="Exposed garbage",
            profile="gbt30428",
        ),
        object_code=None,
        description="路边暴露垃圾一堆",
        location=Location(**dict(UNPLACED), source="none", wgs84=None, flags=("location.unknown",)),
        reporter=Reporter(device_id=device_id, inspector_id="INS-0042", unit=None),
        reported_at=received,
        received_at=received,
        acceptance=Acceptance(inside_window=True, window="08:00-18:00", timezone="Asia/Shanghai"),
        clock=Clock(skew_s=0.0, flags=()),
        task_id=task_id,
        media=(),
    )


def accepted(report_id: str, device_id: str = "tz-0001", **fields: Any) -> Accepted:
    """The ready stage's verdict on a report without media."""
    return Accepted(report_id, device_id, normalized(report_id, device_id, **fields), False)


def registered(report_id: str, case_no: str, device_id: str = "tz-0001") -> Registered:
    """The registry step's result for a report `accepted` made."""
    return Registered(report_id, case_no, normalized(report_id, device_id).with_case_no(case_no))


def placed(
    report: NormalizedReport,
    *,
    district: str | None,
    units: tuple[str, ...] = (),
    inspector: str = "INS-0042",
    inside_window: bool = True,
    lat: float = 31.23,
    lon: float = 121.47,
) -> NormalizedReport:
    """The report as the geo stage would have placed it (or outside the coverage)."""
    coverage = Coverage(
        inside=district is not None,
        district_zh=district,
        district_en=None,
        admin_code=None,
    )
    location = Location(
        **{
            **report.location.model_dump(),
            "source": "fix",
            "wgs84": Wgs84(lat=lat, lon=lon, accuracy_m=5.0, time=None, alt_m=None,
                           hdop=None, satellites=None),
            "flags": (),
            "coverage": coverage,
            "responsible_units": tuple(
                ResponsibleUnit(unit_zh=unit, unit_en=unit, parent_unit_zh="区城管局",
                                segment_id=None)
                for unit in units
            ),
            "responsible_units_basis": "segment" if units else "none",
        }
    )  # fmt: skip
    return report.model_copy(
        update={
            "location": location,
            "reporter": Reporter(device_id=report.reporter.device_id, inspector_id=inspector,
                                 unit=None),
            "acceptance": Acceptance(inside_window=inside_window, window="08:00-18:00",
                                     timezone="Asia/Shanghai"),
        }
    )  # fmt: skip
