"""NMEA 0183 from GNSS receivers, sans I/O: sentences in, one fix per epoch out.

    parse_sentence(text)  -> Rmc | Gga | Gns | Gll | Gsa | Vtg   what a fix is made of
                           | Zda                           the date (and time) alone
                           | Ignored                       checked, but not used (GSV, TXT,
                                                           proprietary $P...)
                           | NmeaRejected(reason)              never an exception
    EpochAssembler         feed(line) / receive_data(bytes) -> [GnssFix | NmeaRejected]
    fixes_from_lines, parse_log, fix_from_sentences        the assembler over a whole input

pynmea2 does the framing, the checksum and the field layout of each sentence type. Field
values are converted here: its converters are lax (they read "12345" as 12:34:05, give
0.0 for a latitude with hemisphere "X", accept "nan" and "1_0", and hand back the raw
text when they fail; its `RMC.is_valid` is False for every u-blox M9N fix), and a fix
must not be built on a guess. Nothing here logs.

Dates are carried as gpsd's NMEA driver carries them (driver_nmea0183.c): ZDA and a
valid RMC set the date; every time of day read (GGA, GNS and GLL, void or not; ZDA; a
valid RMC) moves the clock on, and a time whose hour is below the last one's starts the
next day. A fix's time is its epoch's time of day on the date known when its sentences
came; before any date is known a fix has no time (gpsd reports such a fix untimed too).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path

import pynmea2  # type: ignore[import-untyped]

from gateway.protocols.gnss import GnssFix


class NmeaReason(StrEnum):
    """Stable codes for a sentence rejected, or for sentences that give no fix."""

    FRAMING = "nmea.framing"  # not "$" + printable ASCII + "*hh", or too long
    CHECKSUM = "nmea.checksum"  # checksum missing or wrong
    MALFORMED = "nmea.malformed"  # checksum right, a field wrong
    UNSUPPORTED = "nmea.unsupported"  # well-formed, but not from a GNSS receiver
    VOID = "nmea.void"  # no fix: the receiver says it has none
    NO_POSITION = "nmea.no_position"  # no fix: no RMC, GGA, GNS or GLL among the sentences


# Talker ids of satellite receivers: GPS, GLONASS, Galileo, BeiDou (both of its ids: the
# Chinese standard's BD, NMEA 4.11's GB), multi-GNSS, QZSS (both ids) and NavIC; and IN,
# integrated navigation, a marine navigation system passing its receiver's fix on (a
# Humminbird fishfinder sends $INRMC, $INGLL, $INGGA and $INZDA; gpsd reads them).
GNSS_TALKERS = frozenset({"GP", "GL", "GA", "GB", "BD", "GN", "GQ", "QZ", "GI", "IN"})
# NMEA caps a sentence at 82 characters; receivers overrun it (the MediaTek log's
# $PMTKCHN runs to 203, and gpsd takes it). The wire contract caps a report's at 120.
MAX_SENTENCE_CHARS = 256
# A serial line with no line end this long is noise, not a sentence being received.
MAX_LINE_BYTES = 4 * MAX_SENTENCE_CHARS
KNOTS_TO_MPS = 1852 / 3600  # the international knot; gpsd's 0.51444444 to 8 digits


@dataclass(frozen=True, slots=True)
class NmeaRejected:
    reason: NmeaReason
    detail: str
    text: str  # the offending input, cut to MAX_SENTENCE_CHARS


@dataclass(frozen=True, slots=True)
class Ignored:
    talker: str  # "P" for a proprietary sentence
    kind: str  # sentence type, or the manufacturer of a proprietary one


@dataclass(frozen=True, slots=True)
class Rmc:
    talker: str
    time: time | None
    valid: bool  # status A (or D) and a mode indicator other than N
    lat: float | None
    lon: float | None
    speed_mps: float | None
    track_deg: float | None
    date: date | None


@dataclass(frozen=True, slots=True)
class Gga:
    talker: str
    time: time | None
    lat: float | None
    lon: float | None
    quality: int  # 0: no fix (also when empty)
    satellites: int | None
    hdop: float | None
    alt_m: float | None  # above mean sea level


@dataclass(frozen=True, slots=True)
class Gns:
    talker: str
    time: time | None
    lat: float | None
    lon: float | None
    valid: bool  # a mode character (one per constellation) other than N
    satellites: int | None
    hdop: float | None
    alt_m: float | None


@dataclass(frozen=True, slots=True)
class Gll:
    talker: str
    time: time | None
    valid: bool  # status A and a mode indicator other than N
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class Zda:
    talker: str
    time: time | None
    date: date | None  # None when any of time, day, month and year is empty


@dataclass(frozen=True, slots=True)
class Gsa:
    talker: str
    fix_type: int  # 1: none, 2: 2D, 3: 3D
    prns: tuple[int, ...]
    system: str  # NMEA 4.10 system id where given, else the talker: tells PRNs apart
    hdop: float | None


@dataclass(frozen=True, slots=True)
class Vtg:
    talker: str
    valid: bool  # mode indicator other than N
    track_deg: float | None
    speed_mps: float | None


Sentence = Rmc | Gga | Gns | Gll | Gsa | Vtg  # what an epoch's fix is made of
Timed = Rmc | Gga | Gns | Gll  # the sentences that say which epoch they belong to
Parsed = Sentence | Zda | Ignored | NmeaRejected


class _Malformed(ValueError):
    """A field that does not hold what its position says; becomes NmeaRejected(MALFORMED)."""


_ADDRESS = re.compile(r"[A-Z0-9]{3,}")
_CHECKSUM = re.compile(r"\*[0-9A-Fa-f]{2}")
_TIME = re.compile(r"(\d\d)(\d\d)(\d\d)(?:\.(\d{0,9}))?")
_DATE = re.compile(r"(\d\d)(\d\d)(\d\d)")
_DAY_OR_MONTH = re.compile(r"\d\d")
_YEAR = re.compile(r"\d{4}")
_ANGLE = re.compile(r"\d{3,5}\.\d+")  # (d)ddmm.mmmm, as pynmea2 and gpsd want it
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_INTEGER = re.compile(r"\d{1,3}")


def parse_sentence(text: str) -> Parsed:
    """One sentence, checked. Surrounding whitespace (and CR LF) is allowed; nothing else."""
    text = text.strip()
    shown = text[:MAX_SENTENCE_CHARS]
    problem = _framing_problem(text)
    if problem is not None:
        return NmeaRejected(problem[0], problem[1], shown)
    try:
        message = pynmea2.parse(text, check=True)
    except pynmea2.ChecksumError:
        return NmeaRejected(NmeaReason.CHECKSUM, "checksum does not match", shown)
    except pynmea2.SentenceTypeError:
        talker, kind = text[1:3], text[3 : text.index(",")]
        if talker in GNSS_TALKERS:
            return Ignored(talker, kind)
        return NmeaRejected(NmeaReason.UNSUPPORTED, f"talker {talker} is not a receiver", shown)
    except ValueError as error:  # pynmea2.ParseError and anything else it raises on input
        return NmeaRejected(NmeaReason.FRAMING, str(error)[:80], shown)
    if isinstance(message, pynmea2.ProprietarySentence):
        return Ignored("P", message.manufacturer)
    if not isinstance(message, pynmea2.TalkerSentence):
        return NmeaRejected(NmeaReason.UNSUPPORTED, "a query, not data", shown)
    talker, kind = message.talker, message.sentence_type
    if talker not in GNSS_TALKERS:
        return NmeaRejected(NmeaReason.UNSUPPORTED, f"talker {talker} is not a receiver", shown)
    convert = _CONVERTERS.get(kind)
    if convert is None:
        return Ignored(talker, kind)
    try:
        return convert(talker, _Fields(message))
    except _Malformed as error:
        return NmeaRejected(NmeaReason.MALFORMED, f"{kind}: {error}", shown)


def _framing_problem(text: str) -> tuple[NmeaReason, str] | None:
    if not text:
        return NmeaReason.FRAMING, "empty"
    if len(text) > MAX_SENTENCE_CHARS:
        return NmeaReason.FRAMING, f"longer than {MAX_SENTENCE_CHARS} characters"
    if not (text.isascii() and text.isprintable()):
        return NmeaReason.FRAMING, "not printable ASCII"
    if text[0] != "$":
        return NmeaReason.FRAMING, "does not start with $"
    if text.count("$") > 1 or text.count("*") > 1:
        return NmeaReason.FRAMING, "more than one $ or *"
    address = text[1:].split(",", 1)[0].split("*", 1)[0]
    if "," not in text or _ADDRESS.fullmatch(address) is None:
        return NmeaReason.FRAMING, "no address field"
    star = text.find("*")
    if star < 0:
        return NmeaReason.CHECKSUM, "checksum missing"
    if _CHECKSUM.fullmatch(text[star:]) is None:
        return NmeaReason.CHECKSUM, "checksum is not two hex digits at the end"
    return None


class _Fields:
    """A sentence's fields by pynmea2's names, as the raw text (empty when absent)."""

    def __init__(self, message: pynmea2.TalkerSentence) -> None:
        self._index: dict[str, int] = type(message).name_to_idx
        self._data: list[str] = message.data

    def __getitem__(self, name: str) -> str:
        return self.at(self._index[name])

    def at(self, index: int) -> str:
        return self._data[index] if index < len(self._data) else ""


def _rmc(talker: str, f: _Fields) -> Rmc:
    valid = f["status"] in ("A", "D") and f["mode_indicator"] != "N"
    return Rmc(
        talker,
        _time(f["timestamp"]),
        valid,
        *_position(f),
        _knots(f["spd_over_grnd"]),
        _course(f["true_course"]),
        _date(f["datestamp"]),
    )


def _gga(talker: str, f: _Fields) -> Gga:
    quality = _integer(f["gps_qual"], "quality")
    return Gga(
        talker,
        _time(f["timestamp"]),
        *_position(f),
        quality or 0,
        _integer(f["num_sats"], "satellites"),
        _dop(f["horizontal_dil"]),
        _decimal(f["altitude"], "altitude"),
    )


def _gns(talker: str, f: _Fields) -> Gns:
    modes = f["mode_indicator"]
    if modes and not modes.isalpha():
        raise _Malformed(f"mode indicator {modes!r}")
    # Its NMEA 4.10 navigation status is not read: u-blox sends "V" there for "not
    # provided", which other receivers mean as "not valid". The modes say it already.
    return Gns(
        talker,
        _time(f["timestamp"]),
        *_position(f),
        any(mode != "N" for mode in modes),
        _integer(f["num_sats"], "satellites"),
        _dop(f["hdop"]),
        _decimal(f["altitude"], "altitude"),
    )


def _gll(talker: str, f: _Fields) -> Gll:
    # NMEA 2.3 added the mode indicator; older receivers send status alone (gpsd alike).
    valid = f["status"] == "A" and f["faa_mode"] != "N"
    return Gll(talker, _time(f["timestamp"]), valid, *_position(f))


def _zda(talker: str, f: _Fields) -> Zda:
    moment = _time(f["timestamp"])
    day, month, year = f["day"], f["month"], f["year"]
    if moment is None or not (day and month and year):
        return Zda(talker, moment, None)  # u-blox ANTARIS sends blank fields before a fix
    if not (_DAY_OR_MONTH.fullmatch(day) and _DAY_OR_MONTH.fullmatch(month)) or (
        _YEAR.fullmatch(year) is None or not 1980 <= int(year) <= 2200  # GPS began in 1980
    ):
        raise _Malformed(f"date {day!r} {month!r} {year!r}")
    try:
        return Zda(talker, moment, date(int(year), int(month), int(day)))
    except ValueError:
        raise _Malformed(f"date {day!r} {month!r} {year!r}") from None


def _gsa(talker: str, f: _Fields) -> Gsa:
    fix_type = f["mode_fix_type"]
    if fix_type not in ("1", "2", "3"):
        raise _Malformed(f"fix type {fix_type!r}")
    prns = tuple(
        prn
        for slot in range(1, 13)
        if (prn := _integer(f[f"sv_id{slot:02d}"], "satellite id")) is not None
    )
    system_id = f.at(17)  # NMEA 4.10; SiRF puts a DOP here, which names no system
    system = system_id if system_id.isdigit() else talker
    return Gsa(talker, int(fix_type), prns, system, _dop(f["hdop"]))


def _vtg(talker: str, f: _Fields) -> Vtg:
    return Vtg(
        talker, f["faa_mode"] != "N", _course(f["true_track"]), _knots(f["spd_over_grnd_kts"])
    )


_CONVERTERS: dict[str, Callable[[str, _Fields], Sentence | Zda]] = {
    "RMC": _rmc,
    "GGA": _gga,
    "GNS": _gns,
    "GLL": _gll,
    "ZDA": _zda,
    "GSA": _gsa,
    "VTG": _vtg,
}


def _time(text: str) -> time | None:
    if not text:
        return None
    match = _TIME.fullmatch(text)
    if match is None:
        raise _Malformed(f"time {text!r}")
    hours, minutes, seconds, fraction = match.groups()
    micros = int((fraction or "").ljust(6, "0")[:6])
    try:
        return time(int(hours), int(minutes), int(seconds), micros)
    except ValueError:
        raise _Malformed(f"time {text!r}") from None


def _date(text: str) -> date | None:
    if not text:
        return None
    match = _DATE.fullmatch(text)
    if match is None:
        raise _Malformed(f"date {text!r}")
    day, month, year = (int(part) for part in match.groups())
    # Two-digit years: GPS time began in 1980, so 80-99 are the 1900s.
    try:
        return date(year + (1900 if year >= 80 else 2000), month, day)
    except ValueError:
        raise _Malformed(f"date {text!r}") from None


def _position(f: _Fields) -> tuple[float | None, float | None]:
    lat = _angle(f["lat"], f["lat_dir"], "NS", 90)
    lon = _angle(f["lon"], f["lon_dir"], "EW", 180)
    if (lat is None) != (lon is None):
        raise _Malformed("latitude without longitude or the reverse")
    return lat, lon


def _angle(value: str, hemisphere: str, signs: str, limit: float) -> float | None:
    if not value:
        return None  # some receivers keep the hemisphere letter while they have no fix
    if _ANGLE.fullmatch(value) is None or len(hemisphere) != 1 or hemisphere not in signs:
        raise _Malformed(f"coordinate {value!r} {hemisphere!r}")
    degrees: float = pynmea2.nmea_utils.dm_to_sd(value)
    if degrees > limit:
        raise _Malformed(f"coordinate {value!r} beyond {limit} degrees")
    return degrees if hemisphere == signs[0] else -degrees


def _decimal(text: str, what: str) -> float | None:
    if not text:
        return None
    if _DECIMAL.fullmatch(text) is None:
        raise _Malformed(f"{what} {text!r}")
    return float(text)


def _integer(text: str, what: str) -> int | None:
    if not text:
        return None
    if _INTEGER.fullmatch(text) is None:
        raise _Malformed(f"{what} {text!r}")
    return int(text)


def _knots(text: str) -> float | None:
    knots = _decimal(text, "speed")
    if knots is not None and knots < 0:
        raise _Malformed(f"speed {text!r}")
    return None if knots is None else knots * KNOTS_TO_MPS


def _course(text: str) -> float | None:
    course = _decimal(text, "course")
    if course is not None and not 0 <= course <= 360:
        raise _Malformed(f"course {text!r}")
    return course


def _dop(text: str) -> float | None:
    dop = _decimal(text, "DOP")
    if dop is not None and dop < 0:
        raise _Malformed(f"DOP {text!r}")
    # 99.99 is what several receivers send for "unknown"; gpsd drops it too.
    return None if dop is None or dop >= 99 else dop


# ---- epochs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoFix:
    """An epoch, or a report's sentences, without a fix, and why."""

    reason: NmeaReason


Event = GnssFix | NoFix | NmeaRejected


@dataclass
class _Epoch:
    key: time | None  # UTC time of day of its timed sentences (RMC, GGA, GNS, GLL)
    sentences: list[Sentence]
    kinds: Counter[str]  # talker + type of each sentence, for the end-of-cycle rule
    whole: bool  # begun by a change of time, so none of it was missed
    stamp: datetime | None = None  # its time of day on the date known when it came
    done: bool = False


@dataclass
class _Clock:
    """gpsd's date between sentences: the last date given (ZDA, valid RMC) and the hour of
    the last time of day read, whatever the sentence said of its fix."""

    day: date | None = None
    hour: int = 0

    def time_of_day(self, moment: time) -> datetime | None:
        """`moment` on the current date; an hour below the last one's is the next day."""
        if moment.hour < self.hour and self.day is not None:
            self.day += timedelta(days=1)
        self.hour = moment.hour
        return None if self.day is None else datetime.combine(self.day, moment, tzinfo=UTC)

    def date_and_time(self, day: date, moment: time) -> datetime:
        self.time_of_day(moment)
        self.day = day
        return datetime.combine(day, moment, tzinfo=UTC)


class EpochAssembler:
    """Groups a receiver's sentences by epoch and makes one fix of each.

    An epoch is the run of sentences sharing one UTC time; GSA and VTG carry no time and
    belong to the epoch they follow (every receiver in the test logs sends them after a
    timed sentence of their epoch). An epoch ends when a sentence with another time
    arrives, or earlier, as soon as it holds every kind of sentence the previous whole
    epoch held: receivers repeat one pattern, so that is the end of their cycle.
    Sentences of an epoch already ended are dropped (gpsd likewise distrusts a GGA whose
    time does not advance). ZDA belongs to no epoch (gpsd keeps it out of its cycle
    detection too: some receivers send it only with a fix); it sets the date, and the
    epoch of its time, while open, takes its date. Each ended epoch gives a GnssFix or
    a NoFix; rejected sentences come out as events too, and the caller decides whether
    to log them.
    """

    def __init__(self) -> None:
        self._epoch: _Epoch | None = None
        self._expected: Counter[str] | None = None
        self._clock = _Clock()
        self._buffer = b""

    def receive_data(self, data: bytes) -> list[Event]:
        """Bytes as they come off a serial line: partial lines wait for the rest."""
        *lines, self._buffer = re.split(rb"[\r\n]", self._buffer + data)
        events: list[Event] = []
        for line in lines:
            events += self.feed(line.decode("ascii", errors="replace"))
        if len(self._buffer) > MAX_LINE_BYTES:
            events.append(NmeaRejected(NmeaReason.FRAMING, "no line end", ""))
            self._buffer = b""
        return events

    def feed(self, line: str) -> list[Event]:
        """One line of text. Noise before a "$" is reported and skipped."""
        junk, dollar, rest = line.partition("$")
        events: list[Event] = []
        if junk.strip():
            detail = "noise before $" if dollar else "no $"
            events.append(NmeaRejected(NmeaReason.FRAMING, detail, junk[:80]))
        for part in rest.split("$") if dollar else ():
            parsed = parse_sentence("$" + part)
            if isinstance(parsed, NmeaRejected):
                events.append(parsed)
            elif isinstance(parsed, Zda):
                self._date(parsed)
            elif not isinstance(parsed, Ignored):
                events += self._add(parsed)
        return events

    def flush(self) -> list[Event]:
        """The end of the input ends the epoch in progress."""
        epoch, self._epoch = self._epoch, None
        return [] if epoch is None or epoch.done else [self._close(epoch)]

    def _date(self, zda: Zda) -> None:
        if zda.time is None or zda.date is None:
            return
        stamp = self._clock.date_and_time(zda.date, zda.time)
        epoch = self._epoch
        if epoch is not None and not epoch.done and epoch.key == zda.time:
            epoch.stamp = stamp

    def _add(self, sentence: Sentence) -> list[Event]:
        timed = isinstance(sentence, Timed)
        key = sentence.time if isinstance(sentence, Timed) else None
        epoch = self._epoch
        out: list[Event] = []
        if epoch is None:
            if not timed:
                return []  # a GSA or VTG whose epoch began before we listened
            epoch = self._epoch = _Epoch(key, [], Counter(), whole=False)
        elif timed and key != epoch.key:
            if not epoch.done:
                out.append(self._close(epoch))
            if epoch.whole:
                self._expected = epoch.kinds
            epoch = self._epoch = _Epoch(key, [], Counter(), whole=True)
        if isinstance(sentence, Timed):
            stamp = self._tick(sentence)
            if stamp is not None and not epoch.done:
                epoch.stamp = stamp
        epoch.kinds[sentence.talker + type(sentence).__name__] += 1
        if epoch.done:
            return out
        epoch.sentences.append(sentence)
        expected = self._expected
        if epoch.whole and expected and not expected - epoch.kinds:
            out.append(self._close(epoch))
        return out

    def _tick(self, sentence: Timed) -> datetime | None:
        """The clock moved on by a timed sentence, as gpsd moves it: a valid RMC with its
        date sets the date; a void RMC (MediaTek's says 05-01-80), or one without a date,
        is not read; GGA, GNS and GLL give the time of day, valid or not."""
        if sentence.time is None:
            return None
        if isinstance(sentence, Rmc):
            if not sentence.valid or sentence.date is None:
                return None
            return self._clock.date_and_time(sentence.date, sentence.time)
        return self._clock.time_of_day(sentence.time)

    def _close(self, epoch: _Epoch) -> GnssFix | NoFix:
        epoch.done = True
        fix = _merge(epoch.sentences)
        return fix if isinstance(fix, NoFix) else replace(fix, time=epoch.stamp)


def _merge(sentences: list[Sentence]) -> GnssFix | NoFix:
    """The fix of one epoch (time left out), or why there is none.

    Any sentence saying "no fix" (RMC V, GGA quality 0, GNS N, GLL V, every GSA 1) voids
    the epoch. Position from GGA, else GNS, else RMC, else GLL; altitude from GGA/GNS;
    speed and course from RMC, else VTG. The mode is the receiver's own, from GSA; without
    GSA, 3D when an altitude comes with at least four satellites (a 3D solution needs
    four), else 2D.
    """
    rmc = [s for s in sentences if isinstance(s, Rmc)]
    gga = [s for s in sentences if isinstance(s, Gga)]
    gns = [s for s in sentences if isinstance(s, Gns)]
    gll = [s for s in sentences if isinstance(s, Gll)]
    gsa = [s for s in sentences if isinstance(s, Gsa)]
    vtg = [s for s in sentences if isinstance(s, Vtg) and s.valid]
    statuses: list[Rmc | Gll] = [*rmc, *gll]
    if (
        any(not s.valid for s in statuses)
        or (gga and all(s.quality == 0 for s in gga))
        or (gns and not any(s.valid for s in gns))
        or (gsa and all(s.fix_type == 1 for s in gsa))
    ):
        return NoFix(NmeaReason.VOID)
    solution: list[Gga | Gns] = [s for s in gga if s.quality > 0] + [s for s in gns if s.valid]
    points = [
        (s.lat, s.lon) for s in [*solution, *rmc, *gll] if s.lat is not None and s.lon is not None
    ]
    if not points:
        return NoFix(NmeaReason.VOID)
    alt = next((s.alt_m for s in solution if s.alt_m is not None), None)
    counts = [s.satellites for s in solution if s.satellites is not None]
    used = {(s.system, prn) for s in gsa for prn in s.prns}
    satellites = len(used) if used else next(iter(counts), None)
    if gsa:
        mode = max(s.fix_type for s in gsa)
    else:
        mode = 3 if alt is not None and max(counts, default=0) >= 4 else 2
    hdop = next((s.hdop for s in [*solution, *gsa] if s.hdop is not None), None)
    moving: list[Rmc | Vtg] = [*rmc, *vtg]
    speed = next((s.speed_mps for s in moving if s.speed_mps is not None), None)
    track = next((s.track_deg for s in moving if s.track_deg is not None), None)
    lat, lon = points[0]
    return GnssFix(lat, lon, None, mode, alt, speed, track, satellites, hdop)


# ---- whole inputs --------------------------------------------------------------------------


def fixes_from_lines(lines: Iterable[str]) -> Iterator[GnssFix]:
    """The fixes of a run of lines, one per epoch with a fix; bad lines are skipped."""
    assembler = EpochAssembler()
    for line in lines:
        yield from (event for event in assembler.feed(line) if isinstance(event, GnssFix))
    yield from (event for event in assembler.flush() if isinstance(event, GnssFix))


def parse_log(path: Path) -> Iterator[GnssFix]:
    """The fixes of a receiver log; lines starting with "#" are comments."""
    with path.open("rb") as stream:
        lines = (raw.decode("ascii", errors="replace") for raw in stream)
        yield from fixes_from_lines(line for line in lines if not line.startswith("#"))


def fix_from_sentences(sentences: list[str]) -> GnssFix | NoFix:
    """A report's `nmea` list to the fix of its latest epoch that has one, or why none.

    A void last epoch does not hide an earlier fix of the same list: that fix's time
    shows its age, and the location checks judge it. Bad sentences are skipped; when
    nothing else is left, the first one's reason is the answer."""
    assembler = EpochAssembler()
    events = [event for sentence in sentences for event in assembler.feed(sentence)]
    events += assembler.flush()
    fixes = [event for event in events if isinstance(event, GnssFix)]
    if fixes:
        return fixes[-1]
    verdicts = [event for event in events if isinstance(event, NoFix)]
    if verdicts:
        return verdicts[-1]
    rejections = [event.reason for event in events if isinstance(event, NmeaRejected)]
    return NoFix(rejections[0] if rejections else NmeaReason.NO_POSITION)
