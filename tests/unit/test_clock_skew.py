"""A report's `created_at` is the terminal's clock: kept as `reported_at`, checked against
the gateway's `received_at`, flagged (`clock.ahead`, `clock.behind`) past the bounds of
`[acceptance]`, and never used for what counts: the acceptance window, the case number's
day and the registry's `received_at` all come from the gateway's clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import load_config
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import CodeProfile
from gateway.normalize.model import Clock
from gateway.store.inbox import Inbox
from gateway.store.outbox import Outbox
from tests.factories import encode, envelope
from tests.unit.conftest import Feeder
from tests.unit.test_pipeline import REPORT_TOPIC, SCHEMA, Rig

WINDOW = AcceptanceWindow(ZoneInfo("Asia/Shanghai"), time(8), time(18))
RECEIVED = datetime(2026, 11, 28, 1, 15, 3, 250000, tzinfo=UTC)  # the Feeder's received_at
CST = timezone(timedelta(hours=8))


@pytest.fixture
def rig(inbox: Inbox, outbox: Outbox, profile: CodeProfile, tmp_path: Path) -> Rig:
    return Rig(inbox, outbox, profile, tmp_path / "spool")


def test_a_created_at_far_ahead_or_behind_the_gateway_is_flagged() -> None:
    minute, day = timedelta(minutes=1), timedelta(days=1)
    assert WINDOW.clock(RECEIVED - 2 * minute, RECEIVED) == Clock(skew_s=-120.0, flags=())
    assert WINDOW.clock(RECEIVED + 5 * minute, RECEIVED).flags == ()  # the bound itself
    assert WINDOW.clock(RECEIVED + 6 * minute, RECEIVED) == Clock(
        skew_s=360.0, flags=("clock.ahead",)
    )
    assert WINDOW.clock(RECEIVED - 6 * day, RECEIVED).flags == ()  # store and forward
    assert WINDOW.clock(RECEIVED - 8 * day, RECEIVED).flags == ("clock.behind",)
    reset = datetime(1970, 1, 1, tzinfo=UTC)  # a terminal whose clock lost its battery
    assert WINDOW.clock(reset, RECEIVED).flags == ("clock.behind",)


def test_the_bounds_come_from_the_config() -> None:
    config = load_config(
        None,
        {"acceptance.created_at_max_ahead_s": 30, "acceptance.created_at_max_behind_s": 3600},
    )
    window = config.acceptance.window()
    assert (window.max_ahead_s, window.max_behind_s) == (30, 3600)
    assert window.clock(RECEIVED + timedelta(seconds=31), RECEIVED).flags == ("clock.ahead",)
    assert window.clock(RECEIVED - timedelta(hours=2), RECEIVED).flags == ("clock.behind",)
    defaults = load_config(None).acceptance.window()
    assert (defaults.max_ahead_s, defaults.max_behind_s) == (300, 7 * 86400)


@given(st.datetimes(timezones=st.just(UTC) | st.just(CST) | st.timezones()))
def test_any_created_at_gives_a_skew_and_at_most_one_flag_that_agrees_with_it(
    created: datetime,
) -> None:
    if created.tzinfo is None or created.utcoffset() is None:
        return
    clock = WINDOW.clock(created, RECEIVED)
    assert clock.flags in ((), ("clock.ahead",), ("clock.behind",))
    assert (clock.flags == ("clock.ahead",)) == (clock.skew_s > WINDOW.max_ahead_s)
    assert (clock.flags == ("clock.behind",)) == (-clock.skew_s > WINDOW.max_behind_s)


def normalized_of(rig: Rig, feed: Feeder, created_at: str) -> dict[str, Any]:
    body = envelope(created_at=created_at)
    feed((REPORT_TOPIC, encode(body)))
    assert rig.drain()
    [document] = [doc for doc in rig.normalized() if doc["report_id"] == body["report_id"]]
    jsonschema.validate(document, SCHEMA)
    return document


def test_a_report_from_the_future_is_flagged_and_judged_by_the_gateways_clock(
    feed: Feeder, rig: Rig
) -> None:
    # 03:00 on a later day, local: outside the window, another case day, five years ahead
    document = normalized_of(rig, feed, "2031-06-01T03:00:00+08:00")
    assert document["clock"] == {"skew_s": 142_191_896.75, "flags": ["clock.ahead"]}
    assert document["reported_at"] == "2031-06-01T03:00:00+08:00"  # as the terminal said
    assert datetime.fromisoformat(document["received_at"]) == RECEIVED
    assert document["acceptance"] == {  # 09:15 in Nantong when it arrived: inside
        "inside_window": True,
        "window": "08:00-18:00",
        "timezone": "Asia/Shanghai",
    }
    assert document["case_no"].startswith("E010220261128")  # the day it arrived


def test_a_report_from_the_distant_past_is_flagged_and_judged_by_the_gateways_clock(
    feed: Feeder, rig: Rig
) -> None:
    document = normalized_of(rig, feed, "2020-01-01T12:00:00+08:00")
    assert document["clock"] == {"skew_s": -217_977_303.25, "flags": ["clock.behind"]}
    assert document["acceptance"]["inside_window"] is True
    assert document["case_no"].startswith("E010220261128")
    # the case registry files it under the gateway's received_at too
    [(_, case)] = rig.registry.cases.values()
    assert case.received_at == RECEIVED


def test_a_plausible_clock_is_not_flagged(feed: Feeder, rig: Rig) -> None:
    document = normalized_of(rig, feed, "2026-11-28T09:15:02+08:00")
    assert document["clock"] == {"skew_s": -1.25, "flags": []}


def test_the_example_config_documents_the_bounds() -> None:
    example = (Path(__file__).parents[2] / "config/gateway.example.toml").read_text()
    assert "created_at_max_ahead_s = 300.0" in example
    assert "created_at_max_behind_s = 604800.0" in example
