"""Acceptance window and case numbers."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.case_no import case_number

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("utc", "inside"),
    [
        ("2026-11-27T23:59:59", False),  # 07:59:59 local
        ("2026-11-28T00:00:00", True),  # 08:00:00 local
        ("2026-11-28T09:59:59", True),  # 17:59:59 local
        ("2026-11-28T10:00:00", False),  # 18:00:00 local
        ("2026-11-28T15:00:00", False),  # 23:00 local
    ],
)
def test_acceptance_window_every_day(utc: str, inside: bool) -> None:
    window = AcceptanceWindow(SHANGHAI, time(8), time(18))
    assert window.contains(datetime.fromisoformat(utc).replace(tzinfo=UTC)) is inside
    assert window.label() == "08:00-18:00"


def test_window_across_midnight() -> None:
    night = AcceptanceWindow(SHANGHAI, time(22), time(6))
    assert night.contains(datetime(2026, 11, 28, 23, 30, tzinfo=SHANGHAI))
    assert night.contains(datetime(2026, 11, 28, 5, 59, tzinfo=SHANGHAI))
    assert not night.contains(datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI))


def test_case_number_uses_the_local_day() -> None:
    # 17:30 UTC on the 27th is already the 28th in Nantong
    assert (
        case_number("event", "0102", datetime(2026, 11, 27, 17, 30, tzinfo=UTC), 42, SHANGHAI)
        == "E010220261128000042"
    )
    assert (
        case_number("component", "01005", datetime(2026, 11, 28, 1, tzinfo=UTC), 1234567, SHANGHAI)
        == "C01005202611281234567"
    )
