"""A gpsd connection that comes back by itself: connect, WATCH, read, reconnect with backoff.

The bytes go to the sans-I/O `GpsdDecoder` (`gateway.protocols.gpsd`); this module only
holds the socket and logs what the decoder rejects and what gpsd says went wrong.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import structlog
from structlog.typing import FilteringBoundLogger

from gateway.protocols.gnss import GnssFix
from gateway.protocols.gpsd import WATCH, Fixed, GpsdDecoder, GpsdError, GpsdEvent, GpsdRejected
from gateway.transports.reconnect import ReconnectingSource

GPSD_PORT = 2947


class GpsdClient(ReconnectingSource[socket.socket, GpsdEvent]):
    """gpsd's reports, from whichever connection is up, until `stop()`. When gpsd goes
    away (or says nothing for `idle_timeout_s`), it reconnects after 0.5 s, 1 s, 2 s ...
    up to `backoff_max_s`."""

    open_failed_event = "gpsd.connect_failed"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = GPSD_PORT,
        *,
        log: FilteringBoundLogger | None = None,
        connect_timeout_s: float = 5.0,
        idle_timeout_s: float = 60.0,
        backoff_first_s: float = 0.5,
        backoff_max_s: float = 30.0,
        poll_s: float = 0.2,
    ) -> None:
        super().__init__(
            log or structlog.get_logger("gpsd").bind(gpsd=f"{host}:{port}"),
            (backoff_first_s, backoff_max_s),
            poll_s,
        )
        self.address = (host, port)
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s

    def open(self) -> socket.socket:
        return socket.create_connection(self.address, self.connect_timeout_s)

    def fix_of(self, event: GpsdEvent) -> GnssFix | None:
        return event.fix if isinstance(event, Fixed) else None

    def session(self, link: socket.socket) -> Iterator[GpsdEvent]:
        decoder = GpsdDecoder()
        try:
            link.sendall(WATCH)
            link.settimeout(self.poll_s)
            self.log.info("gpsd.connected")
            quiet_s = 0.0
            while not self._stop.is_set():
                try:
                    data = link.recv(65536)
                except TimeoutError:
                    quiet_s += self.poll_s
                    if quiet_s >= self.idle_timeout_s:
                        self.log.warning("gpsd.idle", quiet_s=quiet_s)
                        return
                    continue
                if not data:
                    self.log.warning("gpsd.closed")
                    return
                quiet_s = 0.0
                for event in decoder.receive_data(data):
                    if isinstance(event, GpsdRejected):
                        self.log.warning("gpsd.rejected", reason=event.reason, detail=event.detail)
                    elif isinstance(event, GpsdError):
                        self.log.error("gpsd.error", message=event.message)
                    yield event
        except OSError as error:
            self.log.warning("gpsd.disconnected", error=str(error))
