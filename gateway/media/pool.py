"""The media worker pool: CPU-heavy stages in worker processes, each with a hard time limit.

pebble's process pool kills a worker that overruns its task's time limit (a decoder stuck
in C cannot be interrupted any other way) and replaces workers that die or have served
`max_tasks` (bounding leaks from native code). Workers are spawned, never forked: the
pipeline process has threads and open databases that a fork would copy mid-flight.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Protocol

from pebble import ProcessExpired, ProcessPool
from structlog.typing import FilteringBoundLogger

from gateway.errors import REASON_TEXT, Reason
from gateway.media import derive
from gateway.media.jobs import MediaJob, MediaRefused, MediaResult

TASKS_PER_WORKER = 500


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) or 1


class MediaRunner(Protocol):
    def run(self, batch: Sequence[MediaJob]) -> list[MediaResult]: ...

    def close(self) -> None: ...


class InlineRunner:
    """Jobs on the calling thread, without time limits: for unit tests and one-off tools."""

    def run(self, batch: Sequence[MediaJob]) -> list[MediaResult]:
        return [derive.run(job) for job in batch]

    def close(self) -> None:
        return None


class MediaPool:
    def __init__(self, workers: int, timeout_s: float, log: FilteringBoundLogger) -> None:
        self.timeout_s = timeout_s
        self.log = log
        self._pool = ProcessPool(
            max_workers=workers or default_workers(),
            max_tasks=TASKS_PER_WORKER,
            context=multiprocessing.get_context("spawn"),
        )

    def run(self, batch: Sequence[MediaJob]) -> list[MediaResult]:
        """Run a batch across the workers; every job ends in a result, never an exception."""
        futures = [self._pool.schedule(derive.run, (job,), timeout=self.timeout_s) for job in batch]
        results: list[MediaResult] = []
        for job, future in zip(batch, futures, strict=True):
            try:
                results.append(future.result())
            except FutureTimeout:
                results.append(
                    MediaRefused(
                        job.media_id, Reason.MEDIA_TIMEOUT.value, f"over {self.timeout_s} s"
                    )
                )
            except ProcessExpired as error:
                self.log.error(  # noqa: TRY400 - a dead worker has no traceback worth printing
                    "media.worker_died", media_id=job.media_id, exit=error.exitcode
                )
                results.append(
                    MediaRefused(
                        job.media_id,
                        Reason.MEDIA_DECODER_FAILED.value,
                        REASON_TEXT[Reason.MEDIA_DECODER_FAILED],
                    )
                )
        return results

    def close(self) -> None:
        self._pool.close()  # type: ignore[no-untyped-call]
        self._pool.join()
