"""What the pipeline's publishing threads share: rows the registry keeps until the broker
acknowledged them (tasks for terminals, case events for backends), published every
`poll_s` seconds on a thread of their own, with a registry connection of their own."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

from structlog.typing import FilteringBoundLogger

from gateway.sinks.ports import Publisher


class Closable(Protocol):
    def close(self) -> None: ...


Store = TypeVar("Store", bound=Closable)


class PollingPublisher(ABC, Generic[Store]):
    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        poll_s: float,
        batch: int,
        publish_timeout_s: float,
        log: FilteringBoundLogger,
    ) -> None:
        self.store = store  # this thread's own connection
        self.publisher = publisher
        self.poll_s = poll_s
        self.batch = batch
        self.publish_timeout_s = publish_timeout_s
        self.log = log

    @abstractmethod
    def publish_once(self) -> int:
        """One round; how many the broker acknowledged. Never raises: a failure is logged,
        and the rows stay unpublished for the next round."""

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                # A full batch published means more may wait: go on at once.
                if self.publish_once() < self.batch:
                    stop.wait(self.poll_s)
        finally:
            self.store.close()

    def start(self, name: str, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name=name, daemon=True)
        thread.start()
        return thread
