"""The serial reader through a pseudo-terminal pair: the test writes a receiver's NMEA to
the master side, the reader opens the slave side by a symlink, as it would a udev name
such as /dev/serial/by-id/usb-u-blox_GNSS-if00."""

from __future__ import annotations

import os
import queue
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import Event, NmeaRejected, fixes_from_lines
from gateway.transports.serial_reader import SerialReader
from tests.gnss import LOGS, log_lines

pytestmark = pytest.mark.integration


class Pty:
    """A pty pair whose slave is reachable at `link`; `unplug()` makes it vanish."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing, before the reader opens it
        temporary = link.with_suffix(".new")
        temporary.symlink_to(os.ttyname(self.slave))
        temporary.replace(link)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class Reader:
    def __init__(self, link: Path) -> None:
        self.reader = SerialReader(str(link), reopen_first_s=0.05, reopen_max_s=0.2, poll_s=0.05)
        self.events: queue.Queue[Event] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="serial-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for event in self.reader.events():
            self.events.put(event)

    def fixes(self, count: int, timeout_s: float = 10) -> tuple[list[GnssFix], list[Event]]:
        """The next `count` fixes, and every event that came with them."""
        events: list[Event] = []
        deadline = time.monotonic() + timeout_s
        while sum(isinstance(event, GnssFix) for event in events) < count:
            events.append(self.events.get(timeout=max(0.0, deadline - time.monotonic())))
        return [event for event in events if isinstance(event, GnssFix)], events

    def stop(self) -> None:
        self.reader.stop()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "gps"


@pytest.fixture
def reader(link: Path) -> Iterator[Reader]:
    running = Reader(link)
    yield running
    running.stop()


def opened() -> None:
    """Give the reader (polling every 0.05 s) time to open the new pty: pyserial empties
    a port's input buffer when it opens it."""
    time.sleep(0.3)


def test_fixes_from_a_pty_with_noise_and_a_split_line(link: Path, reader: Reader) -> None:
    lines = log_lines(LOGS / "ublox-neo-m9n-nmea.log")[:120]  # its first six epochs
    expected = list(fixes_from_lines(lines))
    pty = Pty(link)
    opened()
    data = ("\r\n".join(lines) + "\r\n").encode()
    cut = data.index(b"$GNGGA", 2000) + 20  # a GGA split mid-sentence across two writes
    pty.write(b"\xff\xfe\x00garbage, not NMEA\r\n" + data[:cut])
    time.sleep(0.1)
    pty.write(data[cut:])
    got, events = reader.fixes(len(expected) - 1)
    rejected = [event for event in events if isinstance(event, NmeaRejected)]
    assert [(event.reason.value, event.detail) for event in rejected] == [("nmea.framing", "no $")]
    # The last epoch has no successor to end it; the end of the link does. (Closing the
    # master discards what the reader has not read yet: let it read first.)
    time.sleep(0.3)
    pty.unplug()
    last, _ = reader.fixes(1)
    assert got + last == expected


def test_the_reader_comes_back_when_the_device_does(link: Path, reader: Reader) -> None:
    lines = log_lines(LOGS / "quectel-L70.log")
    cut = lines.index(next(line for line in lines[50:] if line.startswith("$GPZDA")))
    expected = list(fixes_from_lines(lines))
    first = Pty(link)
    opened()
    first.write(("\n".join(lines[:cut]) + "\n").encode())
    before, _ = reader.fixes(len(list(fixes_from_lines(lines[:cut]))) - 1)
    time.sleep(0.3)
    first.unplug()  # the receiver is unplugged: the pty and its path are gone
    last, _ = reader.fixes(1)  # the epoch in progress ends with the link
    time.sleep(0.3)  # the reader retries a path that is not there
    second = Pty(link)  # plugged in again: a new pty behind the same name
    opened()
    second.write(("\n".join(lines[cut:]) + "\n").encode())
    after, _ = reader.fixes(len(expected) - len(before) - 2)
    second.unplug()
    after += reader.fixes(1)[0]
    assert before + last + after == expected
