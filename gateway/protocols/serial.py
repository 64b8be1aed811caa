"""A serial link to a GNSS receiver or a docked terminal: pyserial bytes into NMEA fixes.

`serial_for_url` opens a device path (/dev/ttyUSB0, a pty, a udev symlink) and pyserial's
URLs (loop://, socket://host:port, rfc2217://) alike. Bytes go to the sans-I/O
`EpochAssembler`, which copes with partial lines, noise and non-ASCII bytes; this module
only reads, reopens the port when it goes away, and logs what the assembler rejects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import serial
import structlog
from structlog.typing import FilteringBoundLogger

from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import EpochAssembler, Event, Rejected
from gateway.protocols.reconnect import reconnecting

NMEA_BAUD = 4800  # NMEA 0183's rate; many receivers and terminals are set to 9600 or more


class SerialReader:
    """Reads one port until `stop()`. When the device goes away (unplugged, the terminal
    undocked, a pty closed) it reopens it after 0.5 s, 1 s, 2 s ... up to `reopen_max_s`;
    a path that reappears (a udev symlink such as /dev/serial/by-id/...) is picked up."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = NMEA_BAUD,
        log: FilteringBoundLogger | None = None,
        reopen_first_s: float = 0.5,
        reopen_max_s: float = 30.0,
        poll_s: float = 0.2,  # how soon `stop()` is noticed while the line is quiet
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.log: FilteringBoundLogger = log or structlog.get_logger("serial").bind(port=url)
        self.backoff = (reopen_first_s, reopen_max_s)
        self.poll_s = poll_s
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def fixes(self) -> Iterator[GnssFix]:
        for event in self.events():
            if isinstance(event, GnssFix):
                yield event

    def events(self) -> Iterator[Event]:
        """Fixes, epochs without a fix, and rejected lines, across reopenings."""

        def failed(error: BaseException, retry_s: float) -> None:
            self.log.warning("serial.open_failed", error=str(error), retry_s=retry_s)

        return reconnecting(
            lambda: serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=self.poll_s),
            self._read,
            (serial.SerialException, OSError),
            failed,
            self._stop,
            self.backoff,
        )

    def _read(self, port: serial.SerialBase) -> Iterator[Event]:
        self.log.info("serial.opened")
        assembler = EpochAssembler()
        try:
            while not self._stop.is_set():
                data = port.read(1)  # waits up to poll_s for the first byte ...
                if data:  # ... then takes what is there (every port class but the base has it)
                    data += port.read(getattr(port, "in_waiting", 0))
                for event in assembler.receive_data(data):
                    if isinstance(event, Rejected):
                        self.log.info("nmea.rejected", reason=event.reason, detail=event.detail)
                    yield event
        except (serial.SerialException, OSError) as error:
            self.log.warning("serial.lost", error=str(error))
        # The epoch in progress ends with the link; a cut-off line is dropped.
        yield from assembler.flush()
