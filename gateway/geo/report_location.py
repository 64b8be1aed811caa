"""A report's location: which fix, checked, and placed (the normalized report's `Location`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.geo import checks
from gateway.geo.checks import FixChecks
from gateway.geo.places import Locator
from gateway.normalize.model import UNPLACED, Location
from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import fix_from_sentences
from gateway.protocols.payloads import Fix


@dataclass(frozen=True, slots=True)
class Geo:
    """What the pipeline needs to place a report."""

    locator: Locator
    rules: FixChecks


def nmea_fix(sentences: list[str]) -> GnssFix | str:
    """A report's NMEA sentences to the fix of their latest epoch, or the reason code why
    they give none."""
    result = fix_from_sentences(sentences)
    return result if isinstance(result, GnssFix) else result.reason


def build_location(
    terminal: GnssFix | None,
    nmea: GnssFix | str | None,
    created_at: datetime,
    previous: GnssFix | None,
    locator: Locator,
    rules: FixChecks,
) -> Location:
    """`terminal` is the envelope's fix; `nmea` the fix its sentences gave, or the reason
    they gave none (a reason code), or None when the report carried no sentences.

    The terminal's own fix leads when both exist (it carries the receiver's accuracy);
    the sentences then check it. Every doubt becomes a flag; nothing is dropped."""
    from_nmea = nmea if isinstance(nmea, GnssFix) else None
    fix = terminal or from_nmea
    flags: list[str] = []
    if isinstance(nmea, str):
        flags.append(nmea)
    if fix is None:
        flags.append("location.unknown")
        return Location(**dict(UNPLACED), source="none", wgs84=None, flags=tuple(flags))
    flags += checks.check(fix, created_at, previous, rules)
    if terminal is not None and from_nmea is not None:
        flags += checks.agree(terminal, from_nmea, rules)
    source = "fix+nmea" if terminal and from_nmea else ("fix" if terminal else "nmea")
    place = dict(UNPLACED) if "fix.zero" in flags else locator.place_fields(fix.lat, fix.lon)
    wgs84 = {
        "lat": fix.lat,
        "lon": fix.lon,
        "accuracy_m": fix.accuracy_m,
        "time": fix.time,
        "alt_m": fix.alt_m,
        "hdop": fix.hdop,
        "satellites": fix.satellites,
    }
    return Location.model_validate(
        {**place, "source": source, "wgs84": wgs84, "flags": tuple(flags)}
    )


def from_envelope(fix: Fix | None) -> GnssFix | None:
    """The terminal's own fix, as the common fix type."""
    if fix is None:
        return None
    return GnssFix(
        lat=fix.lat,
        lon=fix.lon,
        time=fix.time.astimezone(UTC) if fix.time is not None else None,
        mode=fix.mode or 2,
        alt_m=fix.alt_m,
        speed_mps=fix.speed_mps,
        track_deg=fix.course_deg,
        satellites=fix.satellites,
        hdop=fix.hdop,
        accuracy_m=fix.accuracy_m,
        source="terminal",
    )
