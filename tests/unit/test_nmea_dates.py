"""Date and time of a fix from every sentence that carries them (issue 13, item 7).

Written from NMEA 0183 (ZDA: hhmmss.ss, dd, mm, yyyy, zone; RMC: time, status, ...,
ddmmyy; GGA, GNS and GLL: time of day only, GLL with status A/V and a mode indicator,
GNS with one mode character per constellation) and from how gpsd's NMEA driver carries
the date between sentences (driver_nmea0183.c: ZDA and a valid RMC set the date; every
time of day read moves the clock, and an hour below the last one's is the next day; a
time of day is reported only once a date is known). The sentences are made up here,
none is taken from a receiver log.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import NmeaReason, NoFix, fix_from_sentences, fixes_from_lines
from tests.gnss import nmea

# One position, 48°07.038'N 11°31.324'E (NMEA 0183's own GGA example), in every sentence.
LAT, LON = 48.1173, 11.522066666666667


def gga(hhmmss: str, *, quality: str = "1", sats: str = "08", alt: str = "545.4") -> str:
    return nmea(f"GPGGA,{hhmmss},4807.038,N,01131.324,E,{quality},{sats},0.9,{alt},M,46.9,M,,")


def gll(hhmmss: str, status: str = "A", mode: str = "A") -> str:
    return nmea(f"GPGLL,4807.038,N,01131.324,E,{hhmmss},{status},{mode}")


def gns(hhmmss: str, modes: str = "AA", sats: str = "08") -> str:
    return nmea(f"GNGNS,{hhmmss},4807.038,N,01131.324,E,{modes},{sats},0.9,545.4,46.9,,")


def rmc(hhmmss: str, ddmmyy: str, status: str = "A") -> str:
    return nmea(f"GPRMC,{hhmmss},{status},4807.038,N,01131.324,E,0.0,,{ddmmyy},,,A")


def zda(hhmmss: str, day: str, month: str, year: str) -> str:
    return nmea(f"GPZDA,{hhmmss},{day},{month},{year},00,00")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def times(lines: list[str]) -> list[datetime | None]:
    return [fix.time for fix in fixes_from_lines(lines)]


# ---- ZDA ---------------------------------------------------------------------------------


def test_gga_is_dated_by_an_earlier_zda() -> None:
    # A survey receiver's cycle without RMC: ZDA, then GGA, every second.
    lines = [zda("120000.00", "09", "03", "2024"), gga("120000.00")]
    lines += [zda("120001.00", "09", "03", "2024"), gga("120001.00")]
    [first, second] = fixes_from_lines(lines)
    assert (first.time, second.time) == (utc(2024, 3, 9, 12, 0, 0), utc(2024, 3, 9, 12, 0, 1))
    assert (first.lat, first.lon, first.alt_m, first.mode) == (LAT, LON, 545.4, 3)


def test_the_date_of_one_zda_carries_on_to_later_epochs() -> None:
    lines = [zda("120000", "09", "03", "2024"), *(gga(f"1200{s:02d}") for s in range(0, 4))]
    assert times(lines) == [utc(2024, 3, 9, 12, 0, s) for s in range(4)]


def test_zda_after_gga_dates_its_own_epoch() -> None:
    # The first date comes at the end of the epoch (the u-blox order: ... GLL, ZDA). gpsd
    # took the GGA's time of day without a date; the epoch's fix gets the ZDA's date.
    lines = [gga("235958"), zda("235958", "31", "12", "2023"), gga("235959")]
    assert times(lines) == [utc(2023, 12, 31, 23, 59, 58), utc(2023, 12, 31, 23, 59, 59)]


def test_zda_with_blank_fields_gives_no_date() -> None:
    # u-blox ANTARIS sends ZDA with empty fields before it has a fix.
    assert times([nmea("GPZDA,,,,,,"), gga("120000")]) == [None]
    assert times([nmea("GPZDA,120000.00,,,,,"), gga("120000")]) == [None]


def test_a_report_list_with_zda_and_gga_is_dated() -> None:
    fix = fix_from_sentences([gga("083015.50"), zda("083015.50", "04", "05", "2026")])
    assert isinstance(fix, GnssFix)
    assert fix.time == utc(2026, 5, 4, 8, 30, 15, 500000)


def test_zda_alone_is_no_position() -> None:
    assert fix_from_sentences([zda("120000", "09", "03", "2024")]) == NoFix(NmeaReason.NO_POSITION)


# ---- GLL ---------------------------------------------------------------------------------


def test_gll_with_its_own_time_is_a_fix() -> None:
    lines = [zda("225308", "06", "06", "2001"), gll("225309"), gll("225310")]
    [first, second] = fixes_from_lines(lines)
    assert first == GnssFix(LAT, LON, utc(2001, 6, 6, 22, 53, 9), mode=2)
    assert second.time == utc(2001, 6, 6, 22, 53, 10)


def test_gll_a_second_after_rmc_and_gga_is_an_epoch_of_its_own() -> None:
    # Garmin 48 style: RMC and GGA at :08, GLL at :09 with a position of its own.
    lines = [rmc("225308", "060601"), gga("225308"), gll("225309"), rmc("225310", "060601")]
    assert times(lines) == [
        utc(2001, 6, 6, 22, 53, 8),
        utc(2001, 6, 6, 22, 53, 9),
        utc(2001, 6, 6, 22, 53, 10),
    ]


def test_gll_before_any_date_is_an_untimed_fix() -> None:
    [fix] = fixes_from_lines([gll("225309")])
    assert fix.time is None
    assert (fix.lat, fix.lon) == (LAT, LON)


@pytest.mark.parametrize(
    ("status", "mode"),
    [
        pytest.param("V", "N", id="status V"),
        pytest.param("V", "A", id="status V, mode A"),
        pytest.param("A", "N", id="status A, mode N (data not valid)"),
        pytest.param("", "", id="no status (Garmin 65)"),
    ],
)
def test_void_gll_gives_no_fix(status: str, mode: str) -> None:
    lines = [zda("225308", "06", "06", "2001"), gll("225309", status, mode)]
    assert list(fixes_from_lines(lines)) == []
    assert fix_from_sentences(lines) == NoFix(NmeaReason.VOID)


def test_void_gll_still_moves_the_clock() -> None:
    # gpsd reads the time of day of a void GLL too: 23:59:59 to 00:00:01 is the next day.
    lines = [zda("235959", "31", "12", "2023"), gll("000000", "V", "N"), gga("000001")]
    assert times(lines) == [utc(2024, 1, 1, 0, 0, 1)]


def test_void_gll_voids_its_epoch() -> None:
    # As RMC V does: a sentence of the epoch says there is no fix.
    lines = [zda("120000", "09", "03", "2024"), gga("120000"), gll("120000", "V", "N")]
    assert fix_from_sentences(lines) == NoFix(NmeaReason.VOID)


# ---- GNS ---------------------------------------------------------------------------------


def test_gns_with_time_and_mode_indicators() -> None:
    # GPS autonomous, GLONASS differential; a GNS-only receiver dated by ZDA.
    lines = [zda("101500.00", "15", "07", "2025"), gns("101500.00", "AD"), gns("101501.00")]
    [first, second] = fixes_from_lines(lines)
    assert first == GnssFix(
        LAT, LON, utc(2025, 7, 15, 10, 15), mode=3, alt_m=545.4, satellites=8, hdop=0.9
    )
    assert second.time == utc(2025, 7, 15, 10, 15, 1)


def test_gns_with_one_valid_constellation_is_a_fix() -> None:
    [fix] = fixes_from_lines([zda("101500", "15", "07", "2025"), gns("101500", "NNA")])
    assert fix.time == utc(2025, 7, 15, 10, 15)


def test_gns_with_no_valid_constellation_is_no_fix() -> None:
    lines = [zda("101500", "15", "07", "2025"), gns("101500", "NN", sats="00")]
    assert fix_from_sentences(lines) == NoFix(NmeaReason.VOID)


def test_gns_with_three_satellites_is_2d() -> None:
    [fix] = fixes_from_lines([gns("101500", "A", sats="03")])
    assert (fix.mode, fix.time) == (2, None)


# ---- no date at all ----------------------------------------------------------------------


def test_gga_only_stream_never_gets_a_date() -> None:
    # Decision: without a ZDA or a valid RMC there is no date, so the fixes have no time
    # (GnssFix.time None; `gateway nmea parse` leaves "time" out). gpsd reports these
    # fixes without a time as well; guessing a date (the computer's clock) is not ours to
    # do in a sans-I/O parser.
    lines = [gga(f"2359{s}") for s in ("58", "59")] + [gga("000000")]
    fixes = list(fixes_from_lines(lines))
    assert [fix.time for fix in fixes] == [None, None, None]
    assert all((fix.lat, fix.lon) == (LAT, LON) for fix in fixes)
    assert "time" not in fixes[0].as_json()


def test_a_later_date_stamps_only_the_epochs_after_it() -> None:
    lines = [gga("120000"), gga("120001"), zda("120002", "09", "03", "2024"), gga("120002")]
    assert times(lines) == [None, None, utc(2024, 3, 9, 12, 0, 2)]


# ---- midnight ----------------------------------------------------------------------------


def test_the_date_rolls_over_at_midnight_without_a_new_zda() -> None:
    lines = [zda("235959", "28", "02", "2024"), gga("235959"), gga("000000"), gga("000001")]
    assert times(lines) == [
        utc(2024, 2, 28, 23, 59, 59),
        utc(2024, 2, 29, 0, 0, 0),  # 2024 is a leap year
        utc(2024, 2, 29, 0, 0, 1),
    ]


def test_the_year_rolls_over_too() -> None:
    lines = [zda("235959.50", "31", "12", "2023"), gll("235959.50"), gll("000000.50")]
    assert times(lines) == [utc(2023, 12, 31, 23, 59, 59, 500000), utc(2024, 1, 1, 0, 0, 0, 500000)]


def test_midnight_with_rmc_takes_the_rmc_date() -> None:
    lines = [rmc("235959", "310124"), rmc("000000", "010224")]
    assert times(lines) == [utc(2024, 1, 31, 23, 59, 59), utc(2024, 2, 1, 0, 0, 0)]


def test_a_void_rmc_across_midnight_still_gives_no_date() -> None:
    # A void RMC is not read at all (gpsd alike): neither its date nor its time.
    lines = [zda("235959", "31", "01", "2024"), rmc("000000", "050180", "V"), gga("000001")]
    assert times(lines) == [utc(2024, 2, 1, 0, 0, 1)]


def test_an_hour_going_back_is_the_next_day_as_in_gpsd() -> None:
    # gpsd's rule is on the hour alone: a time of day whose hour is below the last one's
    # starts the next day, even when the receiver's clock merely stepped back.
    lines = [zda("150000", "09", "03", "2024"), gga("150000"), gga("145959")]
    assert times(lines) == [utc(2024, 3, 9, 15, 0, 0), utc(2024, 3, 10, 14, 59, 59)]


def test_a_new_date_replaces_the_carried_one() -> None:
    lines = [zda("120000", "09", "03", "2024"), gga("120000"), rmc("120001", "100324")]
    assert times(lines) == [utc(2024, 3, 9, 12, 0, 0), utc(2024, 3, 10, 12, 0, 1)]
