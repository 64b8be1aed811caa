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


def uplink_rejected(log: FilteringBoundLogger, rejected: UplinkRejected) -> None:
    """Count and log an uplink refused at the door (the intake answers it)."""
    metrics.REJECTED.labels(rejected.reason.value).inc()
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
