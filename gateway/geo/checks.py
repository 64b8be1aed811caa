"""Checks a fix must pass before it is trusted. A failed check never drops the report: it
becomes a flag on the report's location, so an acceptor can place it by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.geo.distance import haversine_m
from gateway.protocols.gnss import GnssFix

# China's territory, islands included, as a box: a fix outside it is not in our city.
CHINA_LAT = (3.8, 53.6)
CHINA_LON = (73.4, 135.1)


@dataclass(frozen=True, slots=True)
class FixChecks:
    max_age_s: float = 120.0  # fix time before the report's created_at
    max_ahead_s: float = 60.0  # fix time after created_at (a terminal clock or a replay)
    max_accuracy_m: float = 50.0
    max_hdop: float = 5.0
    max_speed_mps: float = 50.0  # implied by two fixes; inspectors walk, cycle or drive
    agreement_m: float = 50.0  # between the terminal's fix and its own NMEA


def check(
    fix: GnssFix, created_at: datetime, previous: GnssFix | None, rules: FixChecks
) -> list[str]:
    flags = []
    if fix.lat == 0 and fix.lon == 0:
        return ["fix.zero"]
    if not (CHINA_LAT[0] <= fix.lat <= CHINA_LAT[1] and CHINA_LON[0] <= fix.lon <= CHINA_LON[1]):
        flags.append("fix.outside_china")
    if fix.time is not None:
        lag = (created_at - fix.time).total_seconds()
        if lag > rules.max_age_s:
            flags.append("fix.stale")
        elif -lag > rules.max_ahead_s:
            flags.append("fix.ahead_of_report")
    if (fix.accuracy_m is not None and fix.accuracy_m > rules.max_accuracy_m) or (
        fix.hdop is not None and fix.hdop > rules.max_hdop
    ):
        flags.append("fix.inaccurate")
    if previous is not None and _implied_speed(previous, fix) > rules.max_speed_mps:
        flags.append("fix.jump")
    return flags


def agree(primary: GnssFix, other: GnssFix, rules: FixChecks) -> list[str]:
    distance = haversine_m(primary.lat, primary.lon, other.lat, other.lon)
    return ["fix.nmea_disagrees"] if distance > rules.agreement_m else []


def _implied_speed(earlier: GnssFix, later: GnssFix) -> float:
    if earlier.time is None or later.time is None:
        return 0.0
    seconds = (later.time - earlier.time).total_seconds()
    if seconds <= 0:
        return 0.0
    return haversine_m(earlier.lat, earlier.lon, later.lat, later.lon) / seconds
