"""Builders of valid wire messages for tests (the simulator has its own encoder)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any


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
        "fix": {"lat": 32.0302, "lon": 120.8651, "accuracy_m": 6.5, "time": "2026-11-28T01:14:58Z"},
        "media": [upload.manifest for upload in uploads or []],
    }
    body.update(overrides)
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
