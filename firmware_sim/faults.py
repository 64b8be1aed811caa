"""Faults on demand: the ways field terminals misbehave, each a knob with a rate.

`Faults` holds the knobs (all off by default); `FaultDice` rolls them with a terminal's
own seeded generator and decides, sans I/O, what the terminal does wrong this time:
which chunks of a first upload are lost, garbled, doubled or shuffled, what junk goes
out beside a report, how far its clock is off, whether its fix is void or wild. The
link drops themselves are carried out by the link (`MqttLink.drop`).

Faults never make a report impossible to deliver: a chunk is lost or garbled only on
its first upload (what the gateway asks for again goes out clean), and junk envelopes
are extra messages beside the real one. So a soak with every knob on must still end
with every report accepted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Any, Literal

import orjson

from firmware_sim.wire import MediaEntry

FixFault = Literal["void", "wild"]
_SHARES = (
    "duplicate_publish",
    "chunk_loss",
    "chunk_reorder",
    "chunk_corrupt",
    "clock_skew_share",
    "fix_void",
    "fix_wild",
    "malformed_envelope",
)


# What each knob does, for --help and the docs.
HELP = {
    "link_drops_per_hour": "link drops per terminal per hour (no DISCONNECT: the will fires)",
    "offline_min_s": "shortest time a dropped terminal stays away, seconds",
    "offline_max_s": "longest time a dropped terminal stays away, seconds",
    "duplicate_publish": "share of messages published twice",
    "chunk_loss": "share of chunks left out of a report's first upload",
    "chunk_reorder": "share of first uploads sent in shuffled order",
    "chunk_corrupt": "share of chunks garbled (same length) on the first upload",
    "clock_skew_share": "share of terminals whose clock is off",
    "clock_skew_max_s": "how far off such a clock is at most, either way, seconds",
    "fix_void": "share of reports with no fix: only the receiver's void NMEA",
    "fix_wild": "share of reports whose fix is hundreds of kilometres off",
    "malformed_envelope": "share of reports with a junk envelope published beside",
}


@dataclass(frozen=True, slots=True)
class Faults:
    """Every knob. Shares are probabilities, 0-1; rates are per terminal."""

    link_drops_per_hour: float = 0.0
    offline_min_s: float = 5.0
    offline_max_s: float = 30.0
    duplicate_publish: float = 0.0
    chunk_loss: float = 0.0
    chunk_reorder: float = 0.0
    chunk_corrupt: float = 0.0
    clock_skew_share: float = 0.0
    clock_skew_max_s: float = 300.0
    fix_void: float = 0.0
    fix_wild: float = 0.0
    malformed_envelope: float = 0.0

    def __post_init__(self) -> None:
        for name in _SHARES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name} is a share, 0-1, not {value}")
        if min(self.link_drops_per_hour, self.offline_min_s, self.clock_skew_max_s) < 0:
            raise ValueError("fault rates and durations must be >= 0")
        if self.offline_max_s < self.offline_min_s:
            raise ValueError("offline_max_s must be >= offline_min_s")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_mapping(cls, values: dict[str, Any], where: str = "faults") -> Faults:
        """Build from a scenario's `[faults]` table, naming the first unknown or bad key."""
        known = set(cls.names())
        for key, value in values.items():
            if key not in known:
                raise ValueError(
                    f"{where}: unknown fault {key!r}; known: {', '.join(sorted(known))}"
                )
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"{where}.{key}: {value!r} is not a number")
        return cls(**{key: float(value) for key, value in values.items()})

    def to_json(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.names()}

    @property
    def any(self) -> bool:
        return any(getattr(self, name) for name in (*_SHARES, "link_drops_per_hour"))


@dataclass(frozen=True, slots=True)
class ChunkSend:
    """One chunk of a first upload as it will go out."""

    media_id: str
    seq: int
    garbled: bool = False
    copies: int = 1


@dataclass(slots=True)
class FaultCounts:
    """What a terminal did wrong on purpose, for the run's summary."""

    link_drops: int = 0
    duplicates: int = 0
    chunks_lost: int = 0
    chunks_garbled: int = 0
    uploads_shuffled: int = 0
    fixes_void: int = 0
    fixes_wild: int = 0
    junk_envelopes: int = 0

    def add(self, other: FaultCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FaultDice:
    """One terminal's rolls of the knobs, from its own generator."""

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self.faults = faults
        self.rng = rng
        self.counts = FaultCounts()
        skewed = rng.random() < faults.clock_skew_share
        self.clock_skew_s = rng.uniform(-1, 1) * faults.clock_skew_max_s if skewed else 0.0

    def first_upload(self, media: tuple[MediaEntry, ...]) -> list[ChunkSend]:
        """The chunks of a report's first upload: some lost, garbled, doubled, shuffled."""
        faults, rng, counts = self.faults, self.rng, self.counts
        sends: list[ChunkSend] = []
        for entry in media:
            for seq in range(entry.chunk_count):
                if rng.random() < faults.chunk_loss:
                    counts.chunks_lost += 1
                    continue
                garbled = rng.random() < faults.chunk_corrupt
                copies = 2 if rng.random() < faults.duplicate_publish else 1
                counts.chunks_garbled += garbled
                counts.duplicates += copies - 1
                sends.append(ChunkSend(entry.media_id, seq, garbled, copies))
        if len(sends) > 1 and rng.random() < faults.chunk_reorder:
            counts.uploads_shuffled += 1
            rng.shuffle(sends)
        return sends

    def envelope_copies(self) -> int:
        if self.rng.random() < self.faults.duplicate_publish:
            self.counts.duplicates += 1
            return 2
        return 1

    def garble(self, data: bytes) -> bytes:
        """The same length, different bytes: only the SHA-256 at assembly can tell."""
        spoilt = bytearray(data)
        for _ in range(max(1, len(spoilt) // 4096)):
            spoilt[self.rng.randrange(len(spoilt))] ^= 1 << self.rng.randrange(8)
        return bytes(spoilt)

    def junk_envelope(self, report_id: str) -> bytes | None:
        """A malformed envelope to publish beside a report, or None this time."""
        if self.rng.random() >= self.faults.malformed_envelope:
            return None
        self.counts.junk_envelopes += 1
        return self.rng.choice(_JUNK)(report_id)

    def fix_fault(self) -> FixFault | None:
        """`void`, `wild` or None: what goes wrong with this report's position."""
        roll = self.rng.random()
        if roll < self.faults.fix_void:
            self.counts.fixes_void += 1
            return "void"
        if roll < self.faults.fix_void + self.faults.fix_wild:
            self.counts.fixes_wild += 1
            return "wild"
        return None

    def next_drop_in_s(self) -> float | None:
        """Seconds until the link next drops (exponential), or None if it never does."""
        rate = self.faults.link_drops_per_hour
        return self.rng.expovariate(rate / 3600) if rate > 0 else None

    def offline_s(self) -> float:
        return self.rng.uniform(self.faults.offline_min_s, self.faults.offline_max_s)


# Junk a broken firmware build might send. None parses as a report, and none carries a
# report id the gateway could tie to a real report of ours.
_JUNK = (
    lambda _: b"\x00\xffnot json at all",
    lambda _: b'{"v": 1, "report_id": ',
    lambda _: b"[1, 2, 3]",
    lambda _: orjson.dumps({"v": 1, "kind": "event", "class_code": "0102"}),
    lambda _: orjson.dumps({"v": 99, "description": "wrong version"}),
    lambda _: orjson.dumps({"v": 1, "report_id": "not-a-uuid", "kind": "rumour"}),
)
