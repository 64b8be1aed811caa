"""A serial link to a GNSS receiver or a docked terminal: pyserial bytes into NMEA fixes.

`serial_for_url` opens a device path (/dev/ttyUSB0, a pty, a udev symlink) and pyserial's
URLs (loop://, socket://host:port, rfc2217://) alike. Bytes go to the sans-I/O
`EpochAssembler`, which copes with partial lines, noise and non-ASCII bytes; this module
only reads, reopens the port when it goes away, and logs what the assembler rejects.
"""

from __future__ import annotations

from collections.abc import Iterator

import serial
import structlog
from structlog.typing import FilteringBoundLogger

from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import EpochAssembler, Event, NmeaRejected
from gateway.transports.reconnect import ReconnectingSource

NMEA_BAUD = 4800  # NMEA 0183's rate; many receivers and terminals are set to 9600 or more


class SerialReader(ReconnectingSource[serial.SerialBase, Event]):
    """Reads one port until `stop()`. When the device goes away (unplugged, the terminal
    undocked, a pty closed) it reopens it after 0.5 s, 1 s, 2 s ... up to `reopen_max_s`;
    a path that reappears (a udev symlink such as /dev/serial/by-id/...) is picked up.
    Its events are fixes, epochs without a fix, and rejected lines."""

    failures = (serial.SerialException, OSError)
    open_failed_event = "serial.open_failed"

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = NMEA_BAUD,
        log: FilteringBoundLogger | None = None,
        reopen_first_s: float = 0.5,
        reopen_max_s: float = 30.0,
        poll_s: float = 0.2,
    ) -> None:
        super().__init__(
            log or structlog.get_logger("serial").bind(port=url),
            (reopen_first_s, reopen_max_s),
            poll_s,
        )
        self.url = url
        self.baudrate = baudrate

    def open(self) -> serial.SerialBase:
        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=self.poll_s)

    def fix_of(self, event: Event) -> GnssFix | None:
        return event if isinstance(event, GnssFix) else None

    def session(self, link: serial.SerialBase) -> Iterator[Event]:
        self.log.info("serial.opened")
        assembler = EpochAssembler()
        try:
            while not self._stop.is_set():
                data = link.read(1)  # waits up to poll_s for the first byte ...
                if data:  # ... then takes what is there (every port class but the base has it)
                    data += link.read(getattr(link, "in_waiting", 0))
                for event in assembler.receive_data(data):
                    if isinstance(event, NmeaRejected):
                        self.log.info("nmea.rejected", reason=event.reason, detail=event.detail)
                    yield event
        except (serial.SerialException, OSError) as error:
            self.log.warning("serial.lost", error=str(error))
        # The epoch in progress ends with the link; a cut-off line is dropped.
        yield from assembler.flush()
