"""A link that comes back by itself: connect, read until it ends, wait, connect again.

Shared by the gpsd client and the serial reader: the delay starts at `first`, doubles
after each failure up to `most`, and starts afresh once the link delivers anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

Link = TypeVar("Link", bound=AbstractContextManager[object])
Event = TypeVar("Event")


def reconnecting(
    connect: Callable[[], Link],
    session: Callable[[Link], Iterator[Event]],
    failures: tuple[type[BaseException], ...],
    on_failure: Callable[[BaseException, float], None],
    stop: threading.Event,
    backoff: tuple[float, float],
) -> Iterator[Event]:
    """The events of one session after another, until `stop` is set."""
    first, most = backoff
    delay = first
    while not stop.is_set():
        try:
            link = connect()
        except failures as error:
            on_failure(error, delay)
        else:
            with link:
                for event in session(link):
                    delay = first  # the link talks: the next outage starts afresh
                    yield event
        if stop.wait(delay):
            return
        delay = min(delay * 2, most)
