"""NMEA sentences and epochs: tables of cases, byte-at-a-time feeding, and fuzzing."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import (
    GNSS_TALKERS,
    KNOTS_TO_MPS,
    EpochAssembler,
    Event,
    Gga,
    Gll,
    Gns,
    Gsa,
    Ignored,
    NmeaReason,
    NmeaRejected,
    NoFix,
    Parsed,
    Rmc,
    Vtg,
    Zda,
    fix_from_sentences,
    fixes_from_lines,
    parse_log,
    parse_sentence,
)
from tests.gnss import LOGS, nmea


def epoch(
    hhmmss: str,
    *,
    valid: bool = True,
    day: str = "250215",
    sats: str = "07",
    alt: str = "190.7",
    gsa: str | None = "3",
    talker: str = "GN",
) -> list[str]:
    """A BeiDou-style epoch: GGA, GSA, RMC (the order of the SiRF and BU-353 logs)."""
    status, quality = ("A", "1") if valid else ("V", "0")
    lines = [
        nmea(f"{talker}GGA,{hhmmss},3114.8950,N,12135.2442,E,{quality},{sats},1.1,{alt},M,8.3,M,,"),
        nmea(f"{talker}RMC,{hhmmss},{status},3114.8950,N,12135.2442,E,0.26,4.94,{day},,,A"),
    ]
    if gsa is not None:
        lines.insert(1, nmea(f"BDGSA,A,{gsa},02,03,04,12,,,,,,,,,2.1,1.1,1.8"))
    return lines


# ---- sentences ---------------------------------------------------------------------------

RMC = nmea("GNRMC,074156.799,A,3114.8950,N,12135.2442,E,0.26,4.94,250215,,,A")
GGA = nmea("GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000")
GNS = nmea("GNGNS,074155.799,3114.8770,N,12135.2463,E,ANNA,05,1.3,156.9,8.3,,0000")
GLL = nmea("GNGLL,3114.8950,N,12135.2442,E,074156.799,A,A")
ZDA = nmea("GNZDA,150119.000,09,03,2022,,")
GSA = nmea("GNGSA,A,3,29,20,18,16,51,13,44,26,,,,,0.99,0.54,0.83,1")
VTG = nmea("GNVTG,,T,,M,0.040,N,0.075,K,D")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            RMC,
            Rmc(
                "GN",
                time(7, 41, 56, 799000),
                True,
                31.24825,
                121.58740333333333,
                0.26 * KNOTS_TO_MPS,
                4.94,
                date(2015, 2, 25),
            ),
            id="RMC, BeiDou receiver, multi-GNSS talker",
        ),
        pytest.param(
            GGA,
            Gga(
                "GP",
                time(3, 7, 19),
                -37.78478833333333,
                175.31489666666667,
                1,
                8,
                1.1,
                59.9,
            ),
            id="GGA, southern hemisphere",
        ),
        pytest.param(
            GNS,
            Gns("GN", time(7, 41, 55, 799000), 31.24795, 121.58743833333334, True, 5, 1.3, 156.9),
            id="GNS, GPS and BeiDou modes",
        ),
        pytest.param(
            GLL,
            Gll("GN", time(7, 41, 56, 799000), True, 31.24825, 121.58740333333333),
            id="GLL with time, status and mode",
        ),
        pytest.param(
            nmea("GPGLL,4527.458,S,16709.165,E,225309,A"),
            Gll("GP", time(22, 53, 9), True, -45.457633333333334, 167.15275),
            id="GLL of NMEA 2.0: no mode indicator",
        ),
        pytest.param(
            nmea("GPGLL,4916.45,N,12311.12,W,225444,V,N"),
            Gll("GP", time(22, 54, 44), False, 49.274166666666666, -123.18533333333333),
            id="void GLL parses (the epoch decides)",
        ),
        pytest.param(
            nmea("GPGLL,4916.45,N,12311.12,W,225444,A,N"),
            Gll("GP", time(22, 54, 44), False, 49.274166666666666, -123.18533333333333),
            id="GLL status A, mode N: not valid",
        ),
        pytest.param(ZDA, Zda("GN", time(15, 1, 19), date(2022, 3, 9)), id="ZDA"),
        pytest.param(
            nmea("GPZDA,,,,,,"), Zda("GP", None, None), id="ZDA blank before a fix (u-blox)"
        ),
        pytest.param(
            nmea("GPZDA,160012.71,11,03,,,"),
            Zda("GP", time(16, 0, 12, 710000), None),
            id="ZDA without year: no date",
        ),
        pytest.param(
            GSA,
            Gsa("GN", 3, (29, 20, 18, 16, 51, 13, 44, 26), "1", 0.54),
            id="GSA, NMEA 4.10 system id",
        ),
        pytest.param(VTG, Vtg("GN", True, None, 0.040 * KNOTS_TO_MPS), id="VTG without course"),
        pytest.param(
            nmea("BDGSA,A,3,02,03,04,,,,,,,,,,5.1,1.3,4.9,3.3"),
            Gsa("BD", 3, (2, 3, 4), "BD", 1.3),
            id="BDGSA with SiRF's DOP in the system id field",
        ),
        pytest.param(
            "  " + RMC + "\r\n",
            parse_sentence(RMC),
            id="whitespace and CR LF around the sentence",
        ),
        pytest.param(nmea("GPGSV,3,1,12,17,72,207,32"), Ignored("GP", "GSV"), id="GSV ignored"),
        pytest.param(nmea("GPTXT,01,01,02,ANTSTATUS=OK"), Ignored("GP", "TXT"), id="TXT ignored"),
        pytest.param(nmea("GPXYZ,1,2"), Ignored("GP", "XYZ"), id="unknown type, GNSS talker"),
        pytest.param(nmea("PMTK001,320,2"), Ignored("P", "MTK"), id="proprietary ignored"),
        pytest.param(
            nmea("GNRMC,074150.799,V,,,,,,,250215,,,N"),
            Rmc("GN", time(7, 41, 50, 799000), False, None, None, None, None, date(2015, 2, 25)),
            id="void RMC parses (the epoch decides)",
        ),
        pytest.param(
            nmea("GPGGA,235946.005,8960.000000,N,00000.000000,E,0,0,,137.000,M,13.000,M,,"),
            Gga("GP", time(23, 59, 46, 5000), 90.0, 0.0, 0, 0, None, 137.0),
            id="MediaTek's cold-start GGA: 89 deg 60 min",
        ),
        pytest.param(
            nmea("GPGGA,120317,4221.4394,N,01321.9948,E,,00,99.99,,M,,M,,"),
            Gga("GP", time(12, 3, 17), 42.35732333333333, 13.366580000000001, 0, 0, None, None),
            id="empty quality is no fix, HDOP 99.99 is unknown",
        ),
        pytest.param(
            nmea("GPRMC,120316,V,,N,,E,,,150305,,"),
            Rmc("GP", time(12, 3, 16), False, None, None, None, None, date(2005, 3, 15)),
            id="no position, hemisphere letters kept",
        ),
    ],
)
def test_sentences(text: str, expected: object) -> None:
    assert parse_sentence(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", NmeaReason.FRAMING, id="empty"),
        pytest.param("GPGGA,1,2*00", NmeaReason.FRAMING, id="no $"),
        pytest.param("$GPRMC" + ",0" * 200, NmeaReason.FRAMING, id="too long"),
        pytest.param("$GPRMC,\x00*00", NmeaReason.FRAMING, id="control character"),
        pytest.param("$GPRMC,é*00", NmeaReason.FRAMING, id="not ASCII"),
        pytest.param("$GP$RMC,1*00", NmeaReason.FRAMING, id="two $"),
        pytest.param("$GPRMC,1*2*00", NmeaReason.FRAMING, id="two *"),
        pytest.param(nmea("gprmc,1"), NmeaReason.FRAMING, id="lower-case address"),
        pytest.param(nmea("GP"), NmeaReason.FRAMING, id="no address field"),
        pytest.param(nmea("GPRMC"), NmeaReason.FRAMING, id="no comma"),
        pytest.param(RMC[:-3], NmeaReason.CHECKSUM, id="checksum missing"),
        pytest.param("$POLYN,TIME,RESTART_OCCURRED", NmeaReason.CHECKSUM, id="MediaTek POLYN"),
        pytest.param(RMC[:-2] + "00", NmeaReason.CHECKSUM, id="checksum wrong"),
        pytest.param(RMC[:-2] + "G0", NmeaReason.CHECKSUM, id="checksum not hex"),
        pytest.param(RMC + "0", NmeaReason.CHECKSUM, id="checksum three digits"),
        pytest.param(
            RMC.replace("3114.8950", "3114.8951"), NmeaReason.CHECKSUM, id="one digit changed"
        ),
        pytest.param(nmea("IIHDT,274.07,T"), NmeaReason.UNSUPPORTED, id="instrument talker"),
        pytest.param(nmea("IIXYZ,1"), NmeaReason.UNSUPPORTED, id="instrument, unknown type"),
        pytest.param(nmea("GPGPQ,RMC"), NmeaReason.UNSUPPORTED, id="query"),
        pytest.param(
            nmea("GPRMC,12345,A,4807.038,N,01131.000,E,0.1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="five-digit time (pynmea2 reads 12:34:05)",
        ),
        pytest.param(
            nmea("GPRMC,246000,A,4807.038,N,01131.000,E,0.1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="hour 24",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,X,01131.000,E,0.1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="hemisphere X (pynmea2 gives 0.0)",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,,01131.000,E,0.1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="hemisphere missing",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,N,,,0.1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="latitude without longitude",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,9107.038,N,01131.000,E,0.1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="latitude beyond 90",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807,N,01131.000,E,0.1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="latitude without decimal point",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,N,01131.000,E,1_0,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="speed 1_0 (Python's float takes it)",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,N,01131.000,E,0.1,inf,230394,,"),
            NmeaReason.MALFORMED,
            id="course inf",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,N,01131.000,E,-1,1.0,230394,,"),
            NmeaReason.MALFORMED,
            id="negative speed",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,N,01131.000,E,0.1,361,230394,,"),
            NmeaReason.MALFORMED,
            id="course beyond 360",
        ),
        pytest.param(
            nmea("GPRMC,120000,A,4807.038,N,01131.000,E,0.1,1.0,310294,,"),
            NmeaReason.MALFORMED,
            id="31 February",
        ),
        pytest.param(
            nmea("GPGGA,120000,4807.038,N,01131.000,E,1,08,0.9,nan,M,46.9,M,,"),
            NmeaReason.MALFORMED,
            id="altitude nan",
        ),
        pytest.param(
            nmea("GPGGA,120000,4807.038,N,01131.000,E,one,08,0.9,545.4,M,46.9,M,,"),
            NmeaReason.MALFORMED,
            id="quality not a number",
        ),
        pytest.param(nmea("GPGSA,A,E,01,02"), NmeaReason.MALFORMED, id="GSA fix type E"),
        pytest.param(
            nmea("GPGSA,A,3,01,02,03,04,,,,,,,,,2.1,-1.1,1.8"), NmeaReason.MALFORMED, id="DOP < 0"
        ),
        pytest.param(nmea("GPGSA,A,3,x1"), NmeaReason.MALFORMED, id="GSA satellite id"),
        pytest.param(
            nmea("GNGNS,074155.799,3114.8770,N,12135.2463,E,A1,05,1.3,156.9,8.3,,"),
            NmeaReason.MALFORMED,
            id="GNS mode indicator",
        ),
        pytest.param(
            nmea("GPGLL,4916.45,X,12311.12,W,225444,A,A"),
            NmeaReason.MALFORMED,
            id="GLL hemisphere X",
        ),
        pytest.param(
            nmea("GPGLL,4916.45,N,12311.12,W,2254,A,A"), NmeaReason.MALFORMED, id="GLL time 2254"
        ),
        pytest.param(
            nmea("GPZDA,160012.71,31,02,2004,,"), NmeaReason.MALFORMED, id="ZDA 31 February"
        ),
        pytest.param(
            nmea("GPZDA,160012.71,11,03,04,,"), NmeaReason.MALFORMED, id="ZDA two-digit year"
        ),
        pytest.param(
            nmea("GPZDA,160012.71,11,03,1979,,"), NmeaReason.MALFORMED, id="ZDA before GPS"
        ),
        pytest.param(
            nmea("GPZDA,160012.71,1,3,2004,,"), NmeaReason.MALFORMED, id="ZDA one-digit day"
        ),
        pytest.param(
            nmea("GPZDA,25:00:12,11,03,2004,,"), NmeaReason.MALFORMED, id="ZDA time with colons"
        ),
    ],
)
def test_rejections(text: str, reason: NmeaReason) -> None:
    result = parse_sentence(text)
    assert isinstance(result, NmeaRejected), result
    assert result.reason is reason


def test_every_gnss_talker_is_read() -> None:
    for talker in GNSS_TALKERS:
        parsed = parse_sentence(nmea(RMC[1:-3].replace("GN", talker, 1)))
        assert isinstance(parsed, Rmc)
        assert parsed.talker == talker


# ---- epochs ------------------------------------------------------------------------------


def fixes(lines: list[str]) -> list[GnssFix]:
    return list(fixes_from_lines(lines))


def test_an_epoch_becomes_one_fix() -> None:
    [fix] = fixes(epoch("074156.799"))
    assert fix == GnssFix(
        lat=31.24825,
        lon=121.58740333333333,
        time=datetime(2015, 2, 25, 7, 41, 56, 799000, tzinfo=UTC),
        mode=3,
        alt_m=190.7,
        speed_mps=0.26 * KNOTS_TO_MPS,
        track_deg=4.94,
        satellites=4,  # the GSA's list; GGA's count is 07
        hdop=1.1,
    )


def test_speed_is_knots_as_gpsd_converts_them() -> None:
    # bu353s4.log, 03:07:19: RMC 0.69 kn; gpsd's TPV says "speed":0.355.
    [fix] = fixes([nmea("GPRMC,030719.000,A,3747.0873,S,17518.8938,E,0.69,181.39,311214,,,A")])
    assert fix.speed_mps == pytest.approx(0.355, abs=0.0005)
    assert fix.mode == 2  # RMC alone: no altitude


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        pytest.param(epoch("074150.799", valid=False, gsa=None), NmeaReason.VOID, id="void"),
        pytest.param(
            [epoch("074150.799")[0], epoch("074150.799", valid=False)[2]],
            NmeaReason.VOID,
            id="valid GGA, void RMC",
        ),
        pytest.param(epoch("074150.799", gsa="1"), NmeaReason.VOID, id="GSA says no fix"),
        pytest.param(
            [nmea("GNGNS,074150.799,,,,,NNNN,00,,,0.0,,0000")], NmeaReason.VOID, id="GNS NNNN"
        ),
        pytest.param(
            [nmea("GNRMC,074156.799,A,,,,,0.26,4.94,250215,,,A")],
            NmeaReason.VOID,
            id="valid status, no position",
        ),
        pytest.param([GSA, VTG], NmeaReason.NO_POSITION, id="no timed sentence"),
        pytest.param([nmea("GPGSV,3,1,12,17,72,207,32")], NmeaReason.NO_POSITION, id="GSV"),
        pytest.param([RMC[:-2] + "00"], NmeaReason.CHECKSUM, id="only a bad checksum"),
        pytest.param([], NmeaReason.NO_POSITION, id="nothing"),
    ],
)
def test_no_fix(lines: list[str], reason: NmeaReason) -> None:
    assert fixes(lines) == []
    assert fix_from_sentences(lines) == NoFix(reason)


def test_gns_navigation_status_v_is_not_void() -> None:
    # u-blox sends "V" (not provided) in every sentence's NMEA 4.10 navigation status.
    line = nmea("GNGNS,074155.799,3114.8770,N,12135.2463,E,ANNA,05,1.3,156.9,8.3,,0000,V")
    [fix] = fixes([line])
    assert (fix.mode, fix.alt_m) == (3, 156.9)


def test_mode_without_gsa_needs_four_satellites_for_3d() -> None:
    [three] = fixes(epoch("120000", sats="03", gsa=None))
    [four] = fixes(epoch("120000", sats="04", gsa=None))
    [no_alt] = fixes(epoch("120000", sats="09", gsa=None, alt=""))
    assert (three.mode, four.mode, no_alt.mode) == (2, 3, 2)
    assert (three.satellites, four.satellites) == (3, 4)


def test_gsa_mode_is_the_receivers_word() -> None:
    [fix] = fixes(epoch("120000", sats="09", gsa="2"))
    assert fix.mode == 2


def test_gga_alone_has_no_time_until_an_rmc_gives_the_date() -> None:
    gga_only = [line for line in epoch("235958", gsa=None) if "GGA" in line]
    [undated] = fixes(gga_only)
    assert undated.time is None
    # After an RMC, GGA-only epochs carry its date on, across midnight too.
    lines = epoch("235958") + [
        line for hhmmss in ("235959", "000000") for line in epoch(hhmmss) if "GGA" in line
    ]
    assert [fix.time for fix in fixes(lines)] == [
        datetime(2015, 2, 25, 23, 59, 58, tzinfo=UTC),
        datetime(2015, 2, 25, 23, 59, 59, tzinfo=UTC),
        datetime(2015, 2, 26, 0, 0, 0, tzinfo=UTC),
    ]


def test_void_rmc_gives_no_date() -> None:
    # MediaTek sends 05-01-80 while void; gpsd takes dates from valid RMCs only.
    lines = [
        nmea("GPRMC,081434.590,V,5212.978993,N,00653.097906,E,0.052,0.00,050180,,,N"),
        nmea("GPGGA,081436.000,5212.982135,N,00653.101394,E,1,3,2.88,102.907,M,47.093,M,,"),
    ]
    [fix] = fixes(lines)
    assert fix.time is None


def test_epoch_ends_with_its_cycle_not_only_with_the_next_time() -> None:
    assembler = EpochAssembler()
    out: list[list[Event]] = []
    for second in range(1, 5):
        for line in epoch(f"12000{second}"):
            out.append(assembler.feed(line))
    # Epochs 1 and 2 end when the next time arrives (at its GGA); from epoch 3 on, the
    # pattern of epoch 2 is known and each epoch ends on its own last sentence (RMC).
    lengths = [len(events) for events in out]
    assert lengths == [0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1]
    assert assembler.flush() == []


def test_late_sentences_of_an_ended_epoch_are_dropped() -> None:
    lines = epoch("120001") + epoch("120002") + epoch("120003")
    late_gsa = nmea("BDGSA,A,2,02,03,04,12,,,,,,,,,2.1,1.1,1.8")
    late = epoch("120003")[0]  # its GGA again: a time that does not advance
    assert fixes([*lines, late_gsa, late]) == fixes(lines)


def test_gsa_before_any_timed_sentence_is_dropped() -> None:
    assert fixes([GSA, *epoch("120000", gsa=None)]) == fixes(epoch("120000", gsa=None))


def test_noise_before_dollar_is_reported_and_the_sentence_read() -> None:
    assembler = EpochAssembler()
    events = assembler.feed("\x07garbage" + RMC)
    assert [type(event) for event in events] == [NmeaRejected]
    assert [type(event) for event in assembler.flush()] == [GnssFix]


def test_two_sentences_on_one_line() -> None:
    assert fixes(["".join(epoch("120000"))]) == fixes(epoch("120000"))


def test_fix_from_sentences_prefers_the_latest_epoch_with_a_fix() -> None:
    first, second = epoch("120000"), epoch("120001")
    latest = fix_from_sentences([*first, *second])
    assert isinstance(latest, GnssFix)
    assert latest.time == datetime(2015, 2, 25, 12, 0, 1, tzinfo=UTC)
    # A void epoch after it does not hide it; a bad sentence is skipped.
    after = fix_from_sentences([*first, "$GARBAGE*00", *epoch("120001", valid=False)])
    assert isinstance(after, GnssFix)
    assert after.time == datetime(2015, 2, 25, 12, 0, 0, tzinfo=UTC)


def test_the_simulator_epoch_is_read() -> None:
    from firmware_sim.nmea import epoch as simulated  # noqa: PLC0415

    when = datetime(2026, 5, 4, 9, 30, 15, 250000, tzinfo=UTC)
    fix = fix_from_sentences(simulated(when, 31.2304, 121.4737, speed_mps=1.5, alt_m=4.0))
    assert isinstance(fix, GnssFix)
    assert fix.time == when
    assert (fix.lat, fix.lon) == pytest.approx((31.2304, 121.4737), abs=1e-6)
    assert fix.speed_mps == pytest.approx(1.5, abs=0.01)
    assert fix.mode == 3


# ---- bytes -------------------------------------------------------------------------------

LOG_BYTES = (LOGS / "beidou-bd.log").read_bytes()


def from_bytes(chunks: list[bytes]) -> list[Event]:
    assembler = EpochAssembler()
    events = [event for chunk in chunks for event in assembler.receive_data(chunk)]
    return events + list(assembler.flush())


def test_bytes_one_at_a_time_give_what_whole_lines_give() -> None:
    lines = [line for line in LOG_BYTES.decode().splitlines() if not line.startswith("#")]
    whole = from_bytes(["\n".join(lines).encode()])
    assert [e for e in whole if isinstance(e, GnssFix)] == fixes(lines)
    one_by_one = from_bytes([bytes([byte]) for byte in "\n".join(lines).encode()])
    assert one_by_one == whole


def test_non_utf8_and_endless_lines_are_noise() -> None:
    events = from_bytes([b"\xff\xfe" + RMC.encode() + b"\r\n", b"\x00" * 5000])
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["NmeaRejected", "NmeaRejected", "GnssFix"]


def test_parse_log_skips_comments(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("# receiver: test\n" + "\n".join(epoch("120000")) + "\n")
    assert list(parse_log(log)) == fixes(epoch("120000"))


# ---- fuzz: a result or a rejection, never another exception ------------------------------

FIELD = st.text(alphabet=string.digits + ".-+ENSWAVDMTKnx_,", max_size=14)


@st.composite
def checked_sentences(draw: st.DrawFn) -> str:
    """Sentences with a right checksum and fields of digits and letters: the converters'
    input, which plain random text almost never reaches."""
    talker = draw(st.sampled_from([*sorted(GNSS_TALKERS), "II", "P"]))
    kind = draw(st.sampled_from(["RMC", "GGA", "GNS", "GLL", "GSA", "VTG", "GSV", "ZDA", "MTK"]))
    fields = draw(st.lists(FIELD, max_size=20))
    return nmea(talker + kind + "," + ",".join(fields))


REAL = [RMC, GGA, GNS, GLL, ZDA, GSA, VTG, *epoch("120000")]


@st.composite
def mutated_sentences(draw: st.DrawFn) -> str:
    """A real sentence with one field replaced, checksum recomputed: every converter meets
    bad input beside otherwise good fields."""
    fields = draw(st.sampled_from(REAL))[1:-3].split(",")
    fields[draw(st.integers(1, len(fields) - 1))] = draw(FIELD | st.text(max_size=8))
    return nmea(",".join(fields))


@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    assert isinstance(parse_sentence(text), Parsed)


@settings(max_examples=500)
@given(checked_sentences() | mutated_sentences())
def test_fuzz_checked_sentences(text: str) -> None:
    parsed = parse_sentence(text)
    assert isinstance(parsed, Parsed)
    if isinstance(parsed, NmeaRejected):
        assert parsed.reason in NmeaReason


@given(st.lists(st.one_of(checked_sentences(), st.sampled_from(epoch("120000")), st.text())))
def test_fuzz_epochs(lines: list[str]) -> None:
    result = fix_from_sentences(lines)
    assert isinstance(result, GnssFix | NoFix)
    for fix in fixes_from_lines(lines):
        assert -90 <= fix.lat <= 90
        assert -180 <= fix.lon <= 180
        assert fix.mode in (2, 3)


@given(st.lists(st.binary(max_size=300)))
def test_fuzz_bytes(chunks: list[bytes]) -> None:
    assembler = EpochAssembler()
    for chunk in chunks:
        for event in assembler.receive_data(chunk):
            assert isinstance(event, GnssFix | NoFix | NmeaRejected)
