"""The three sink ports. Implementations raise `RetryableSinkError` for what may pass
(timeouts, a server restarting) and `PermanentSinkError` for what never will."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class NewCase:
    report_id: str
    kind: str
    class_code: str
    received_at: str  # RFC 3339
    report: dict[str, Any]  # the normalized report; the registry fills in `case_no`


class Registry(Protocol):
    def register(self, cases: Sequence[NewCase]) -> list[str]:
        """Register cases, idempotent by report id; returns their case numbers in order."""
        ...

    def close(self) -> None: ...


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None:
        """Store a file under `key`; a content-addressed key already present is skipped."""
        ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None: ...

    def flush(self) -> None:
        """Make every object put so far durable; called before deliveries are marked done."""
        ...

    def close(self) -> None: ...


class Publisher(Protocol):
    def publish_many(self, messages: Sequence[tuple[str, bytes]], timeout_s: float) -> list[bool]:
        """Publish at QoS 1; True for each message the broker acknowledged in time."""
        ...
