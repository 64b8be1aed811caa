"""`firmware-sim gps`: a receiver on patrol, read back by the gateway's own NMEA code."""

from __future__ import annotations

import io
import itertools
import random
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from firmware_sim.gps import PtyFeed, course, feed, patrol
from firmware_sim.routes import load_roads
from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import fixes_from_lines
from gateway.transports.serial_reader import SerialReader
from tests.sim.test_reports import metres_from_road

START = datetime(2026, 11, 28, 1, 15, tzinfo=UTC)


def test_a_patrol_walks_its_road_at_its_pace_and_turns_back_at_the_end() -> None:
    road = load_roads()[0]
    seconds = int(road.length_m / 5) + 30  # past the end at 5 m/s, and some way back
    epochs = patrol(road, START, speed_mps=5.0, rng=random.Random(3))
    lines = [
        line for _, sentences in zip(range(seconds), epochs, strict=False) for line in sentences
    ]

    fixes = list(fixes_from_lines(lines))  # the gateway's parser: checksums, epochs, fields

    assert len(fixes) == seconds
    assert [fix.time for fix in fixes] == [START + timedelta(seconds=n) for n in range(seconds)]
    assert all(metres_from_road(fix.lat, fix.lon, road) < 15 for fix in fixes)  # sigma 3 m
    assert all(fix.speed_mps == pytest.approx(5.0, abs=0.01) for fix in fixes)
    assert {fix.mode for fix in fixes} == {3}
    out_bound = course(road.points[0], road.points[-1])
    first, last = fixes[0].track_deg, fixes[-1].track_deg
    assert first is not None
    assert last is not None
    assert abs((first - out_bound + 180) % 360 - 180) < 60  # setting out along the road
    assert abs((last - out_bound) % 360 - 180) < 60  # coming back


def test_feed_writes_whole_epochs_with_crlf_and_stops_at_its_count() -> None:
    out = io.BytesIO()
    pauses: list[float] = []
    road = load_roads()[0]

    written = feed(out, patrol(road, START), interval_s=0.5, count=3, sleep=pauses.append)

    text = out.getvalue().decode("ascii")
    assert written == 3
    assert pauses == [0.5, 0.5, 0.5]
    assert text.count("\r\n") == 6
    assert text.endswith("\r\n")
    assert [line[3:6] for line in text.split("\r\n")[:-1]] == ["RMC", "GGA"] * 3


def assert_one_second_apart(fixes: list[GnssFix]) -> None:
    times = [fix.time for fix in fixes]
    assert None not in times
    assert all(b == a + timedelta(seconds=1) for a, b in itertools.pairwise(times) if a and b)


def test_the_pty_feed_is_read_by_the_gateways_serial_reader() -> None:
    road = load_roads()[0]
    with PtyFeed() as pty:
        # pyserial flushes what waits when it opens a port: keep writing meanwhile.
        writer = threading.Thread(
            target=feed,
            args=(pty.stream, patrol(road, START, rng=random.Random(1))),
            kwargs={"interval_s": 0.05, "count": 60},
            daemon=True,
        )
        writer.start()
        reader = SerialReader(pty.path, poll_s=0.05)
        fixes = []
        for fix in reader.fixes():
            fixes.append(fix)
            if len(fixes) == 3:
                reader.stop()
        writer.join(10)
    assert all(metres_from_road(fix.lat, fix.lon, road) < 15 for fix in fixes)
    assert_one_second_apart(fixes)


def test_the_command_prints_its_pty_and_feeds_it() -> None:
    road = load_roads()[1]
    command = [sys.executable, "-m", "firmware_sim", "gps", "--segment", road.segment_id,
               "--seconds", "30", "--interval-s", "0.05", "--seed", "7"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        path = process.stdout.readline().decode().strip()
        assert path.startswith("/dev/pts/")
        reader = SerialReader(path, poll_s=0.05)
        fixes = []
        for fix in reader.fixes():
            fixes.append(fix)
            if len(fixes) == 5:
                reader.stop()
        process.terminate()
        process.wait(10)
    assert all(metres_from_road(fix.lat, fix.lon, road) < 15 for fix in fixes)
    assert_one_second_apart(fixes)
