"""A receiver on patrol: NMEA at 1 Hz along a responsibility segment, for gpsd or a port.

`patrol` is pure: a road, a start time and a pace in, one epoch of sentences (RMC, GGA)
per step out, walking the road's centreline to its end and back with a phone receiver's
scatter. `PtyFeed` gives it a pseudo-terminal, so `gpsd -N /dev/pts/N` (or the gateway's
serial reader) reads it as it would a receiver on a serial line.
"""

from __future__ import annotations

import math
import os
import random
import time
import tty
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Protocol

from firmware_sim import nmea
from firmware_sim.routes import EARTH_RADIUS_M, Road, Walk, scatter

WALKING_MPS = 1.4


class Writable(Protocol):
    """A file, a pty's master or a pyserial port."""

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...


def course(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Degrees from north of the way from `a` to `b`."""
    north = math.radians(b[0] - a[0]) * EARTH_RADIUS_M
    east = math.radians(b[1] - a[1]) * EARTH_RADIUS_M * math.cos(math.radians(a[0]))
    return math.degrees(math.atan2(east, north)) % 360


def patrol(
    road: Road,
    start: datetime,
    *,
    speed_mps: float = WALKING_MPS,
    step_s: float = 1.0,
    sigma_m: float = 3.0,
    rng: random.Random | None = None,
    talker: str = "GN",
) -> Iterator[list[str]]:
    """The sentences of each epoch, `step_s` apart, forever: to the road's end and back."""
    rng = rng or random.Random()
    walk = Walk(road, speed_mps)
    n = 0
    while True:
        here, ahead = walk.at(n * step_s)
        lat, lon = scatter(here, sigma_m, rng)
        yield nmea.epoch(
            start + timedelta(seconds=n * step_s),
            lat,
            lon,
            talker=talker,
            speed_mps=speed_mps,
            course_deg=course(here, ahead) if ahead != here else 0.0,
            alt_m=round(rng.uniform(3.0, 9.0), 1),
            satellites=rng.randint(9, 16),
            hdop=round(rng.uniform(0.7, 1.4), 1),
        )
        n += 1


def feed(
    out: Writable,
    epochs: Iterator[list[str]],
    *,
    interval_s: float = 1.0,
    count: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Write `count` epochs (or all), one every `interval_s`, CR LF after each sentence."""
    written = 0
    for sentences in epochs:
        if count is not None and written >= count:
            break
        out.write("".join(f"{line}\r\n" for line in sentences).encode("ascii"))
        out.flush()
        written += 1
        sleep(interval_s)
    return written


class PtyFeed:
    """A pseudo-terminal pair: we write the master; a reader opens `path` (the slave)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # a serial line carries bytes; no echo, no line editing
        self.path = os.ttyname(self.slave)
        self.stream = os.fdopen(self.master, "wb", buffering=0)

    def close(self) -> None:
        self.stream.close()  # closes the master
        os.close(self.slave)

    def __enter__(self) -> PtyFeed:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
