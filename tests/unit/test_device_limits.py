"""Per-device budgets (gateway/devices/limits.py), sans I/O, on a clock of our own."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.devices.limits import (
    NOTICE_S,
    SWEEP_S,
    DeviceLimits,
    DeviceQuotas,
    OverLimitNotices,
    TokenBuckets,
)
from gateway.errors import Reason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# (seconds since the previous request, tokens asked for)
requests = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=30, allow_nan=False),
        st.integers(min_value=1, max_value=40),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    burst=st.integers(min_value=1, max_value=100),
    period_s=st.floats(min_value=1, max_value=3600),
    asked=requests,
)
def test_no_window_ever_gets_more_than_a_burst_plus_its_refill(
    burst: int, period_s: float, asked: list[tuple[float, int]]
) -> None:
    buckets = TokenBuckets(burst, period_s)
    now, taken = 0.0, []
    for gap, amount in asked:
        now += gap
        before = buckets.available("d", now)
        granted = buckets.take("d", amount, now)
        assert granted == (amount <= before)  # refused only when it does not fit
        if granted:
            taken.append((now, amount))
    for i, (start, _) in enumerate(taken):
        total = 0
        for at, amount in taken[i:]:
            total += amount
            assert total <= burst + buckets.rate * (at - start) + 1e-6


@settings(max_examples=200, deadline=None)
@given(
    burst=st.integers(min_value=1, max_value=1000),
    period_s=st.floats(min_value=1, max_value=3600),
    drained=st.integers(min_value=1, max_value=1000),
    amount=st.integers(min_value=1, max_value=1000),
)
def test_buckets_refill_continuously_up_to_the_burst(
    burst: int, period_s: float, drained: int, amount: int
) -> None:
    buckets = TokenBuckets(burst, period_s)
    drained, amount = min(drained, burst), min(amount, burst)
    assert buckets.take("d", drained, 0.0)
    wait = buckets.wait_s("d", amount, 0.0)
    assert wait == max(0, amount - (burst - drained)) / buckets.rate
    assert buckets.take("d", amount, wait * (1 + 1e-9) + 1e-9)
    later = 2 * period_s + wait
    assert buckets.available("d", later) == burst  # never more than a burst
    assert buckets.wait_s("d", burst + 1, later) == math.inf


def test_a_refused_take_takes_nothing_and_devices_are_apart() -> None:
    buckets = TokenBuckets(10, 60)
    assert buckets.take("a", 8, 0.0)
    assert not buckets.take("a", 3, 0.0)
    assert buckets.available("a", 0.0) == 2
    assert buckets.take("a", 2, 0.0)
    assert buckets.take("b", 10, 0.0)  # another device's budget is its own


def test_idle_devices_are_forgotten() -> None:
    buckets = TokenBuckets(10, 60)
    for number in range(1000):
        buckets.take(f"tz-{number}", 1, 0.0)
    assert len(buckets) == 1000
    buckets.take("busy", 10, SWEEP_S + 60)  # every other bucket is full again by now
    assert len(buckets) == 1


def limits(**overrides: int) -> DeviceLimits:
    values = {"reports_per_minute": 3, "media_bytes_per_hour": 3600, "spool_bytes": 1000}
    return DeviceLimits(**(values | overrides))


def test_reports_a_minute() -> None:
    clock = Clock()
    quotas = DeviceQuotas(limits(), clock)
    assert [quotas.take_report("a") for _ in range(3)] == [None, None, None]
    over = quotas.take_report("a")
    assert over is not None
    assert over.reason is Reason.LIMIT_REPORTS_PER_MINUTE
    assert over.message == "over 3 new reports a minute; the next fits in 20 s"
    assert quotas.take_report("b") is None  # another device is unaffected
    clock.now += 20  # a third of a minute: one report's worth
    assert quotas.take_report("a") is None
    assert quotas.take_report("a") is not None


def test_media_bytes_an_hour_and_spool_bytes() -> None:
    clock = Clock()
    quotas = DeviceQuotas(limits(spool_bytes=3000), clock)  # 1 byte a second, 3000 held
    assert quotas.take_media("a", 900, spooled=0) is None
    over = quotas.take_media("a", 200, spooled=2900)
    assert over is not None
    assert over.reason is Reason.LIMIT_SPOOL_BYTES
    assert "holds 2900 bytes" in over.message
    assert quotas.take_media("a", 100, spooled=2900) is None  # up to the limit exactly
    # the spool's refusal cost no hourly budget: 2600 left
    assert quotas.take_media("a", 2600, spooled=0) is None
    over = quotas.take_media("a", 10, spooled=0)
    assert over is not None
    assert over.reason is Reason.LIMIT_MEDIA_BYTES_PER_HOUR
    assert over.message == "over 3600 media bytes an hour; this chunk fits in 10 s"
    assert quotas.take_media("b", 900, spooled=0) is None
    clock.now += 10
    assert quotas.take_media("a", 10, spooled=0) is None


def test_a_device_over_a_limit_is_noted_once_a_minute_with_the_count() -> None:
    clock = Clock()
    notices = OverLimitNotices(clock)
    spool = Reason.LIMIT_SPOOL_BYTES
    assert notices.refused("a", spool) == 1
    assert [notices.refused("a", spool) for _ in range(500)] == [None] * 500
    assert notices.refused("a", Reason.LIMIT_MEDIA_BYTES_PER_HOUR) == 1  # its own line
    assert notices.refused("b", spool) == 1
    clock.now += NOTICE_S
    assert notices.refused("a", spool) == 501
    assert notices.refused("a", spool) is None


def test_notices_of_quiet_devices_are_forgotten() -> None:
    clock = Clock()
    notices = OverLimitNotices(clock)
    for number in range(1000):
        notices.refused(f"tz-{number}", Reason.LIMIT_SPOOL_BYTES)
    clock.now += max(NOTICE_S, SWEEP_S)
    notices.refused("busy", Reason.LIMIT_SPOOL_BYTES)
    assert len(notices) == 1


def test_what_a_failed_batch_took_is_given_back() -> None:
    clock = Clock()
    quotas = DeviceQuotas(limits(reports_per_minute=2), clock)
    assert quotas.take_report("a") is None

    def failed_batch() -> None:
        with quotas.batch():
            assert quotas.take_report("a") is None  # "a" had one left
            assert quotas.take_report("b") is None
            assert quotas.take_media("b", 100, spooled=0) is None
            raise OSError("disk full")  # the inbox did not commit

    with pytest.raises(OSError, match="disk full"):
        failed_batch()
    assert quotas.reports.available("a", clock.now) == 1
    assert quotas.reports.available("b", clock.now) == 2
    assert quotas.media.available("b", clock.now) == 3600
    with quotas.batch():  # a batch that commits keeps what it took
        assert quotas.take_report("a") is None
    assert quotas.take_report("a") is not None
