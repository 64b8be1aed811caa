"""Per-device token buckets in a cluster's PostgreSQL, so a terminal whose messages reach
several instances has one budget, not one per instance.

Each take is one upsert in the intake's batch transaction (`cgt.device_budgets`, one row
per device and budget): the bucket is refilled to the time of the take and debited only
if it holds enough, all under the row's lock, so instances taking from one bucket at once
are serialized by the server. A batch that rolls back gives back what it took with
everything else. Time is the wall clock, the only one the instances share.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.store.db import Database


class SharedTokenBuckets:
    """One bucket per device for budget `name`: at most `burst` tokens, refilled at
    `burst / period_s` a second."""

    def __init__(self, conn: Database, name: str, burst: int, period_s: float) -> None:
        self.conn = conn
        self.name = name
        self.burst = float(burst)
        self.rate = burst / period_s

    def take(self, key: str, amount: float, now: float) -> bool:
        if amount > self.burst:
            return False
        row = self.conn.execute(
            "INSERT INTO device_budgets AS b (device_id, budget, tokens, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id, budget) DO UPDATE SET"
            " tokens = least(?, b.tokens + greatest(0, excluded.updated_at - b.updated_at) * ?)"
            " - ?, updated_at = greatest(b.updated_at, excluded.updated_at)"
            " WHERE least(?, b.tokens + greatest(0, excluded.updated_at - b.updated_at) * ?) >= ?"
            " RETURNING tokens",
            (
                key, self.name, self.burst - amount, now,
                self.burst, self.rate, amount,
                self.burst, self.rate, amount,
            ),
        ).fetchone()  # fmt: skip
        return row is not None

    def available(self, key: str, now: float) -> float:
        row = self.conn.execute(
            "SELECT tokens, updated_at FROM device_budgets WHERE device_id = ? AND budget = ?",
            (key, self.name),
        ).fetchone()
        if row is None:
            return self.burst
        tokens, since = row
        return float(min(self.burst, tokens + max(0.0, now - since) * self.rate))

    def wait_s(self, key: str, amount: float, now: float) -> float:
        if amount > self.burst:
            return math.inf
        return max(0.0, amount - self.available(key, now)) / self.rate

    @contextmanager
    def spending(self) -> Iterator[None]:
        """Nothing to give back by hand: a batch that fails rolls its takes back."""
        yield
