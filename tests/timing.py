"""Timing assertions a busy machine does not break.

A test does not hold a time against a constant alone. It measures a baseline in the same
test, on the same machine at about the same moment (the same work without the load, or
a reference task of known cost), and allows a generous multiple of it, never less than a
floor: `bound = max(floor_s, factor * baseline_s)`. A machine twice as busy doubles the
baseline with the time measured; a change that makes the work ten times slower still
fails. Waiting for something that should happen (a timeout that only stops a hung test)
needs none of this. What is worth a number goes to the benchmarks (bench/,
docs/benchmarks.md), not into a test.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Reference", "assert_within", "seconds"]

T = TypeVar("T")


def seconds(task: Callable[[], object]) -> float:
    """How long `task()` takes, in wall-clock seconds."""
    started = time.perf_counter()
    task()
    return time.perf_counter() - started


def assert_within(
    measured_s: float, baseline_s: float, *, factor: float, floor_s: float, what: str
) -> None:
    """`measured_s` is under `max(floor_s, factor * baseline_s)`."""
    bound_s = max(floor_s, factor * baseline_s)
    assert measured_s < bound_s, (
        f"{what}: {measured_s:.3f} s, over {bound_s:.3f} s = max({floor_s} s, {factor} x"
        f" {baseline_s:.3f} s measured in the same test)"
    )


@dataclass
class Reference:
    """The time of a reference task, for many measurements in one test (a Hypothesis
    test's examples, say): measured at the first check, and again before a measurement
    over the bound fails, so that the verdict is against the machine as it is then."""

    task: Callable[[], object]
    factor: float
    floor_s: float
    baseline_s: float | None = None

    def measure(self) -> float:
        self.baseline_s = statistics.median(seconds(self.task) for _ in range(3))
        return self.baseline_s

    def check(self, measured_s: float, what: str) -> None:
        baseline_s = self.baseline_s if self.baseline_s is not None else self.measure()
        if measured_s < max(self.floor_s, self.factor * baseline_s):
            return
        assert_within(
            measured_s, self.measure(), factor=self.factor, floor_s=self.floor_s, what=what
        )

    def timed(self, task: Callable[[], T], what: str) -> T:
        """`task()`, checked against the reference."""
        started = time.perf_counter()
        result = task()
        self.check(time.perf_counter() - started, what)
        return result
