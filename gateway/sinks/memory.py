"""In-memory sinks for unit tests of the pipeline (pure code only; integration tests use
the real ones). Each can be told to fail, to exercise retries and dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.errors import SinkError
from gateway.normalize.case_no import case_number
from gateway.sinks.ports import NewCase

SHANGHAI = ZoneInfo("Asia/Shanghai")


class MemoryRegistry:
    def __init__(self, tz: ZoneInfo = SHANGHAI) -> None:
        self.cases: dict[str, tuple[str, NewCase]] = {}
        self.tz = tz
        self.failure: SinkError | None = None

    def register(self, cases: Sequence[NewCase]) -> list[str]:
        if self.failure is not None:
            raise self.failure
        numbers = []
        for case in cases:
            if case.report_id not in self.cases:
                serial = len(self.cases) + 1
                number = case_number(case.kind, case.class_code, case.received_at, serial, self.tz)
                self.cases[case.report_id] = (number, case)
            numbers.append(self.cases[case.report_id][0])
        return numbers

    def close(self) -> None:
        return None


class MemoryObjectStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.failure: SinkError | None = None

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None:
        self.put_bytes(key, path.read_bytes(), content_type=content_type)

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.objects[key] = data

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class MemoryPublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.failure: SinkError | None = None

    def publish_many(self, messages: Sequence[tuple[str, bytes]], timeout_s: float) -> list[bool]:
        if self.failure is not None:
            raise self.failure
        self.messages.extend(messages)
        return [True] * len(messages)
