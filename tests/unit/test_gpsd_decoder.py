"""gpsd's JSON reports: real lines, malformed ones by name, byte-at-a-time, and fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocols.gnss import GnssFix
from gateway.protocols.gpsd import (
    MAX_REPORT_BYTES,
    WATCH,
    Devices,
    Fixed,
    GpsdDecoder,
    GpsdError,
    GpsdEvent,
    GpsdReason,
    GpsdRejected,
    Ignored,
    Sky,
    Unfixed,
    Version,
    Watching,
    decode_report,
)
from tests.gnss import LOGS

# A session with gpsd 3.22 fed by gpsfake (quectel-L70.log), as it came off the socket.
SESSION = [
    '{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}',
    '{"class":"DEVICES","devices":[{"class":"DEVICE","path":"/dev/pts/1","activated":'
    '"2026-11-28T05:16:24.052Z","native":0,"bps":4800,"parity":"N","stopbits":1,"cycle":1.00}]}',
    '{"class":"WATCH","enable":true,"json":true,"nmea":false,"raw":0,"scaled":false,'
    '"timing":false,"split24":false,"pps":false}',
    '{"class":"TPV","device":"/dev/pts/1","mode":1}',
    '{"class":"SKY","device":"/dev/pts/1","hdop":0.94,"uSat":8}',
    '{"class":"TPV","device":"/dev/pts/1","mode":3,"time":"2022-03-09T15:01:19.000Z",'
    '"ept":0.005,"lat":51.068098333,"lon":-114.095645000,"altHAE":1084.9000,'
    '"altMSL":1102.4000,"alt":1102.4000,"epx":7.123,"epy":9.881,"epv":32.650,'
    '"track":194.1700,"magtrack":208.5412,"magvar":14.4,"speed":0.046,"climb":0.000,'
    '"eph":17.760,"sep":36.120,"geoidSep":-17.500}',
    '{"class":"GST","device":"/dev/pts/1","time":"2022-03-09T15:01:19.000Z","rms":4.000}',
    '{"class":"ERROR","message":"Unrecognized request \'WATC\'"}',
]


def test_a_gpsd_session() -> None:
    events = [decode_report(line) for line in SESSION]
    fix = GnssFix(
        lat=51.068098333,
        lon=-114.095645,
        time=datetime(2022, 3, 9, 15, 1, 19, tzinfo=UTC),
        mode=3,
        alt_m=1102.4,
        speed_mps=0.046,
        track_deg=194.17,
        accuracy_m=17.76,
        source="gpsd",
    )
    assert events == [
        Version("3.22", 3, 14),
        Devices(("/dev/pts/1",)),
        Watching(enabled=True),
        Unfixed("/dev/pts/1", 1),
        Sky("/dev/pts/1", 8, 0.94),
        Fixed("/dev/pts/1", fix),
        Ignored("GST"),
        GpsdError("Unrecognized request 'WATC'"),
    ]


def test_the_decoder_joins_the_last_sky_to_a_fix() -> None:
    [*_, fixed, _, _] = GpsdDecoder().receive_data("\n".join(SESSION).encode() + b"\n")
    assert isinstance(fixed, Fixed)
    assert (fixed.fix.satellites, fixed.fix.hdop) == (8, 0.94)


def test_bytes_one_at_a_time() -> None:
    data = ("\r\n".join(SESSION) + "\r\n").encode()
    decoder = GpsdDecoder()
    one_by_one = [event for byte in data for event in decoder.receive_data(bytes([byte]))]
    assert one_by_one == GpsdDecoder().receive_data(data)
    assert len(one_by_one) == len(SESSION)


def test_watch_command() -> None:
    assert json.loads(WATCH.removeprefix(b"?WATCH=")) == {"enable": True, "json": True}
    assert WATCH.endswith(b"\n")


def test_every_tpv_of_gpsds_own_logs_decodes() -> None:
    count = 0
    for chk in sorted(LOGS.glob("*.chk")):
        for line in chk.read_text().splitlines():
            if line.startswith('{"class":"TPV"'):
                event = decode_report(line)
                report = json.loads(line)
                assert isinstance(event, Fixed | Unfixed), line
                if isinstance(event, Fixed):
                    assert (event.fix.lat, event.fix.lon) == (report["lat"], report["lon"])
                    count += 1
    assert count > 250  # 280 TPVs with a fix in the eight captures


def tpv(**fields: Any) -> str:
    return json.dumps({"class": "TPV", "mode": 2, "lat": 31.2, "lon": 121.5, **fields})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param("not json", GpsdReason.NOT_JSON, id="not JSON"),
        pytest.param('{"class":"TPV"', GpsdReason.NOT_JSON, id="cut short"),
        pytest.param('{"class":"TPV","lat":NaN}', GpsdReason.NOT_JSON, id="NaN is not JSON"),
        pytest.param("[1,2]", GpsdReason.NOT_OBJECT, id="an array"),
        pytest.param('{"mode":3}', GpsdReason.NOT_OBJECT, id="no class"),
        pytest.param('{"class":3}', GpsdReason.NOT_OBJECT, id="class not a string"),
        pytest.param(tpv(mode="3"), GpsdReason.MALFORMED, id="TPV: mode a string"),
        pytest.param(tpv(mode=True), GpsdReason.MALFORMED, id="TPV: mode a boolean"),
        pytest.param(tpv(mode=7), GpsdReason.MALFORMED, id="TPV: mode 7"),
        pytest.param(tpv(lat=None), GpsdReason.MALFORMED, id="TPV: fix without latitude"),
        pytest.param(tpv(lat=91.0), GpsdReason.MALFORMED, id="TPV: latitude beyond 90"),
        pytest.param(tpv(lon="121.5"), GpsdReason.MALFORMED, id="TPV: longitude a string"),
        pytest.param(tpv(speed=-1), GpsdReason.MALFORMED, id="TPV: negative speed"),
        pytest.param(tpv(track=400), GpsdReason.MALFORMED, id="TPV: track beyond 360"),
        pytest.param(tpv(altMSL=[1]), GpsdReason.MALFORMED, id="TPV: altitude a list"),
        pytest.param(tpv(time="yesterday"), GpsdReason.MALFORMED, id="TPV: time not RFC 3339"),
        pytest.param(tpv(time="2022-03-09T15:01:19"), GpsdReason.MALFORMED, id="TPV: no zone"),
        pytest.param(tpv(device=1), GpsdReason.MALFORMED, id="TPV: device a number"),
        pytest.param('{"class":"SKY","uSat":"8"}', GpsdReason.MALFORMED, id="SKY: uSat string"),
        pytest.param('{"class":"DEVICES","devices":{}}', GpsdReason.MALFORMED, id="DEVICES"),
        pytest.param('{"class":"WATCH","enable":1}', GpsdReason.MALFORMED, id="WATCH"),
        pytest.param('{"class":"VERSION","proto_major":"3"}', GpsdReason.MALFORMED, id="VERSION"),
    ],
)
def test_rejections(line: str, reason: GpsdReason) -> None:
    event = decode_report(line)
    assert isinstance(event, GpsdRejected), event
    assert event.reason is reason


def test_a_time_with_an_offset_becomes_utc() -> None:
    event = decode_report(tpv(time="2022-03-09T23:01:19.5+08:00"))
    assert isinstance(event, Fixed)
    assert event.fix.time == datetime(2022, 3, 9, 15, 1, 19, 500000, tzinfo=UTC)


def test_sky_without_usat_counts_used_satellites() -> None:
    line = '{"class":"SKY","satellites":[{"used":true},{"used":false},{"used":true},7]}'
    assert decode_report(line) == Sky(None, 2, None)


def test_endless_lines_are_rejected_and_the_stream_goes_on() -> None:
    decoder = GpsdDecoder()
    events = decoder.receive_data(b"x" * (MAX_REPORT_BYTES + 1))
    events += decoder.receive_data(SESSION[0].encode() + b"\n")
    assert [type(event) for event in events] == [GpsdRejected, Version]
    assert isinstance(events[0], GpsdRejected)
    assert events[0].reason is GpsdReason.TOO_LONG


# ---- fuzz: an event or a rejection, never another exception ------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ["mode", "lat", "lon", "time", "speed", "track", "alt", "altMSL", "eph", "device"]


@st.composite
def reports(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["TPV", "SKY", "VERSION", "DEVICES", "WATCH", "ERROR", "PPS"]))
    fields = draw(st.dictionaries(st.sampled_from([*KEYS, "uSat", "hdop", "devices"]), JSON))
    return json.dumps({"class": kind, **fields})


EVENTS = (Version, Devices, Watching, Fixed, Unfixed, Sky, GpsdError, Ignored, GpsdRejected)


@given(st.text() | st.binary() | reports())
def test_fuzz_lines(line: str | bytes) -> None:
    assert isinstance(decode_report(line), EVENTS)


@given(st.lists(st.binary(max_size=200) | reports().map(str.encode)))
def test_fuzz_streams(chunks: list[bytes]) -> None:
    decoder = GpsdDecoder()
    events: list[GpsdEvent] = [event for chunk in chunks for event in decoder.receive_data(chunk)]
    assert all(isinstance(event, EVENTS) for event in events)
