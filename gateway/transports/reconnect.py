"""A source of receiver events over a link that comes back by itself: connect, read until
it ends, wait, connect again.

The gpsd client and the serial reader are both one: `events()` runs one session after
another until `stop()`, the delay between them starting at `first`, doubling after each
failure up to `most`, and starting afresh once the link delivers anything; `fixes()`
keeps the events that are fixes. A subclass says how to open its link, how to read one
session of it, and which of its events are fixes.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from structlog.typing import FilteringBoundLogger

from gateway.protocols.gnss import GnssFix

Link = TypeVar("Link", bound=AbstractContextManager[object])
Event = TypeVar("Event")


class ReconnectingSource(ABC, Generic[Link, Event]):
    # What opening the link may raise and is worth another try, and the event that logs it.
    failures: tuple[type[BaseException], ...] = (OSError,)
    open_failed_event = "link.open_failed"

    def __init__(
        self, log: FilteringBoundLogger, backoff: tuple[float, float], poll_s: float
    ) -> None:
        self.log = log
        self.backoff = backoff
        self.poll_s = poll_s  # how soon `stop()` is noticed while the link is quiet
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def fixes(self) -> Iterator[GnssFix]:
        """The fixes among the events, until `stop()`."""
        for event in self.events():
            fix = self.fix_of(event)
            if fix is not None:
                yield fix

    def events(self) -> Iterator[Event]:
        """The events of one session after another, until `stop()`."""
        first, most = self.backoff
        delay = first
        while not self._stop.is_set():
            try:
                link = self.open()
            except self.failures as error:
                self.log.warning(self.open_failed_event, error=str(error), retry_s=delay)
            else:
                with link:
                    for event in self.session(link):
                        delay = first  # the link talks: the next outage starts afresh
                        yield event
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, most)

    @abstractmethod
    def open(self) -> Link: ...

    @abstractmethod
    def session(self, link: Link) -> Iterator[Event]: ...

    @abstractmethod
    def fix_of(self, event: Event) -> GnssFix | None: ...
