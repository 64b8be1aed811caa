"""Saying no, the same way everywhere: a rejection is counted (`cgt_rejected` by reason),
logged with its reason code, and turned into what the terminal is told.

Two kinds: an uplink refused at the door (`uplink.rejected`: a bad topic or envelope, a
device not let in, a budget spent, a full store), answered at once by the intake; and a
report rejected once it was taken (`report.rejected`: by the verdict, a media file that
cannot be decoded, the registry not knowing a verification's task), which becomes the
lifecycle's `Rejected` and reaches the terminal through the `ack` step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from structlog.typing import FilteringBoundLogger

from gateway import metrics
from gateway.errors import REASON_TEXT, Reason
from gateway.lifecycle import Rejected
from gateway.protocols.terminal import UplinkRejected

# Refusals that are the gateway's state or a device's budget, not the terminal's mistake:
# they come by the thousand while it lasts, so each is logged at debug only (the state by
# `store.media_refused`, a device over budget by `limits.device_over`).
QUIET = frozenset(
    {
        Reason.RETRY_LATER,
        Reason.LIMIT_REPORTS_PER_MINUTE,
        Reason.LIMIT_MEDIA_BYTES_PER_HOUR,
        Reason.LIMIT_SPOOL_BYTES,
    }
)
MESSAGE_CHARS = 500  # what the ack's reason message may hold


class DoorRefusals:
    """Each device's uplinks refused at the door since this process started, for the
    console's fleet page: how many, and the latest reason. Bounded: past `devices_max`
    devices (ids made up by a flood, in open mode), the longest quiet ones are forgotten."""

    def __init__(self, devices_max: int = 10_000) -> None:
        self.devices_max = devices_max
        self._by_device: OrderedDict[str, tuple[int, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, device_id: str, reason: str) -> None:
        with self._lock:
            count = self._by_device.pop(device_id, (0, "", 0.0))[0]
            self._by_device[device_id] = (count + 1, reason, time.time())
            while len(self._by_device) > self.devices_max:
                self._by_device.popitem(last=False)

    def snapshot(self) -> dict[str, tuple[int, str, float]]:
        with self._lock:
            return dict(self._by_device)


# This process's tally (the intake's): read by the console, which runs beside it.
DOOR = DoorRefusals()


def uplink_rejected(log: FilteringBoundLogger, rejected: UplinkRejected) -> None:
    """Count and log an uplink refused at the door (the intake answers it)."""
    metrics.REJECTED.labels(rejected.reason.value).inc()
    if rejected.device_id:
        DOOR.add(rejected.device_id, rejected.reason.value)
    log.log(
        logging.DEBUG if rejected.reason in QUIET else logging.WARNING,
        "uplink.rejected",
        reason=rejected.reason.value,
        detail=rejected.message,
        topic=rejected.topic,
        device_id=rejected.device_id,
        report_id=rejected.report_id,
        field=rejected.field,
    )


def report_rejected(
    log: FilteringBoundLogger,
    *,
    step: str,
    report_id: str,
    device_id: str,
    reason: Reason,
    detail: str,
    **context: str | None,
) -> Rejected:
    """Count and log a report rejected by the pipeline; what the terminal will be told."""
    metrics.REJECTED.labels(reason.value).inc()
    log.warning(
        "report.rejected",
        step=step,
        device_id=device_id,
        report_id=report_id,
        reason=reason.value,
        detail=detail,
        **context,
    )
    message = f"{REASON_TEXT[reason]}: {detail}"[:MESSAGE_CHARS]
    return Rejected(report_id, reason.value, message, device_id)
