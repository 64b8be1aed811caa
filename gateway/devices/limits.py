"""Per-device budgets of the intake, sans I/O: new reports a minute, media bytes an hour,
and chunk bytes held in the inbox.

One terminal, broken or hostile, must not crowd out the others: each device has budgets
of its own, and one over a budget is refused with the budget's reason (`limit.*`), which
tells the terminal to keep what it sent and try again later. The rates are token buckets
refilled continuously (`burst` = the per-period amount, so a terminal back from a day
offline may flush a period's worth at once); the spool bound is a level the caller
measures (`Inbox.spool_bytes`). Time comes from an injected clock, so all of it is tested
without waiting.

Memory stays bounded: a full bucket is the same as no bucket, so idle devices' buckets
are forgotten at most once a minute. Budgets live in memory: a restart hands every device
a full budget again (one extra burst at most per restart).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import Reason

SWEEP_S = 60.0  # how often full buckets and old notices are forgotten
NOTICE_S = 60.0  # a device over a limit is logged once per this, with the count since
STALE_S = 3600.0  # a notice with refusals counted but not yet logged is dropped after this


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    reports_per_minute: int
    media_bytes_per_hour: int
    spool_bytes: int


@dataclass(frozen=True, slots=True)
class OverLimit:
    """Why a device's message is refused: the reason code and the detail for the terminal."""

    reason: Reason
    message: str


class TokenBuckets:
    """One bucket per key: holds at most `burst` tokens, refilled at `burst / period_s`."""

    def __init__(self, burst: int, period_s: float) -> None:
        self.burst = float(burst)
        self.rate = burst / period_s  # tokens a second
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, as of)
        self._swept = -math.inf
        self._undo: dict[str, tuple[float, float] | None] | None = None  # inside `spending`

    def __len__(self) -> int:
        return len(self._buckets)

    def available(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.burst
        tokens, since = bucket
        return min(self.burst, tokens + max(0.0, now - since) * self.rate)

    def take(self, key: str, amount: float, now: float) -> bool:
        """Take `amount` tokens if the bucket holds them; False (and nothing taken) if not."""
        tokens = self.available(key, now)
        self._sweep(now)
        if amount > tokens:
            return False
        if self._undo is not None and key not in self._undo:
            self._undo[key] = self._buckets.get(key)
        self._buckets[key] = (tokens - amount, now)
        return True

    @contextmanager
    def spending(self) -> Iterator[None]:
        """What is taken inside is given back if it raises (a batch that did not commit)."""
        self._undo = {}
        try:
            yield
        except BaseException:
            for key, before in self._undo.items():
                if before is None:
                    self._buckets.pop(key, None)
                else:
                    self._buckets[key] = before
            raise
        finally:
            self._undo = None

    def wait_s(self, key: str, amount: float, now: float) -> float:
        """Seconds until `amount` tokens will be there (inf if more than a burst)."""
        if amount > self.burst:
            return math.inf
        return max(0.0, amount - self.available(key, now)) / self.rate

    def _sweep(self, now: float) -> None:
        if now - self._swept < SWEEP_S:
            return
        self._swept = now
        full = [key for key in self._buckets if self.available(key, now) >= self.burst]
        for key in full:
            del self._buckets[key]


class Buckets(Protocol):
    """Token buckets: these in memory, or a cluster's in PostgreSQL
    (`gateway.devices.shared_budgets`), which every instance spends from."""

    def take(self, key: str, amount: float, now: float) -> bool: ...

    def available(self, key: str, now: float) -> float: ...

    def wait_s(self, key: str, amount: float, now: float) -> float: ...

    def spending(self) -> AbstractContextManager[None]: ...


class DeviceQuotas:
    """The intake's per-device budgets; ask before storing, and only for what is new."""

    def __init__(
        self,
        limits: DeviceLimits,
        clock: Callable[[], float] = time.monotonic,
        buckets: Callable[[str, int, float], Buckets] | None = None,
    ) -> None:
        """`buckets(name, burst, period_s)` makes each budget's buckets (in memory unless
        given); shared buckets keep wall-clock time, so give them `time.time`."""
        self.limits = limits
        self.clock = clock
        make = buckets or (lambda _name, burst, period_s: TokenBuckets(burst, period_s))
        self.reports = make("reports", limits.reports_per_minute, 60.0)
        self.media = make("media_bytes", limits.media_bytes_per_hour, 3600.0)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Around one inbox transaction: a batch that fails and is tried again must not
        pay twice, or its retry would refuse what was within budget."""
        with self.reports.spending(), self.media.spending():
            yield

    def take_report(self, device_id: str) -> OverLimit | None:
        """A new report: one of the device's reports a minute, or why not."""
        now = self.clock()
        if self.reports.take(device_id, 1, now):
            return None
        wait = self.reports.wait_s(device_id, 1, now)
        return OverLimit(
            Reason.LIMIT_REPORTS_PER_MINUTE,
            f"over {self.limits.reports_per_minute} new reports a minute;"
            f" the next fits in {math.ceil(wait)} s",
        )

    def take_media(self, device_id: str, size: int, spooled: int) -> OverLimit | None:
        """A new chunk of `size` bytes from a device holding `spooled` bytes in the inbox.

        The spool bound is checked first, so a chunk refused for it costs no hourly budget."""
        limit = self.limits.spool_bytes
        if spooled + size > limit:
            return OverLimit(
                Reason.LIMIT_SPOOL_BYTES,
                f"the gateway holds {spooled} bytes of this device's unfinished uploads"
                f" (limit {limit}); finish or wait for them to expire",
            )
        now = self.clock()
        if self.media.take(device_id, size, now):
            return None
        wait = self.media.wait_s(device_id, size, now)
        return OverLimit(
            Reason.LIMIT_MEDIA_BYTES_PER_HOUR,
            f"over {self.limits.media_bytes_per_hour} media bytes an hour;"
            f" this chunk fits in {math.ceil(wait)} s",
        )


class OverLimitNotices:
    """When to log a device over a limit: refusals come by the thousand in a flood, so
    the first of each (device, reason) is logged, then one line per `NOTICE_S` with the
    count refused since."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._open: dict[tuple[str, Reason], tuple[float, int]] = {}  # -> (logged at, since)
        self._swept = -math.inf

    def __len__(self) -> int:
        return len(self._open)

    def refused(self, device_id: str, reason: Reason) -> int | None:
        """Count a refusal; the refusals to log now (this one included), or None."""
        now = self.clock()
        self._sweep(now)
        key = (device_id, reason)
        logged_at, count = self._open.get(key, (-math.inf, 0))
        count += 1
        if now - logged_at >= NOTICE_S:
            self._open[key] = (now, 0)
            return count
        self._open[key] = (logged_at, count)
        return None

    def _sweep(self, now: float) -> None:
        # Past its interval, an entry with nothing counted tells nothing the next refusal
        # would not (that is logged at once either way); one long quiet loses its count.
        if now - self._swept < SWEEP_S:
            return
        self._swept = now
        quiet = [
            key
            for key, (logged_at, count) in self._open.items()
            if now - logged_at >= (NOTICE_S if count == 0 else STALE_S)
        ]
        for key in quiet:
            del self._open[key]
