"""The intake: decoded uplink events into the inbox, in batches, and the answers they need.

`Intake.apply` runs one batch in one transaction and returns the downlinks to send; the
caller acknowledges the batch's messages to the broker only after it returns, i.e. after
the commit. Answers that need no pipeline work (a rejection, chunks still missing, the
status of a known report) go out from here at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC

from structlog.typing import FilteringBoundLogger

from gateway import metrics
from gateway.devices.gate import DeviceGate
from gateway.devices.limits import DeviceQuotas, OverLimit, OverLimitNotices
from gateway.errors import REASON_TEXT, Reason
from gateway.lifecycle import ReportState
from gateway.normalize.codes import CodeProfile
from gateway.protocols import terminal
from gateway.protocols.payloads import Fix, ReasonBody
from gateway.protocols.terminal import (
    ChunkReceived,
    ReportReceived,
    StatusReceived,
    TrackReceived,
    UplinkEvent,
    UplinkRejected,
)
from gateway.runtime.rejections import uplink_rejected
from gateway.store.inbox import (
    Added,
    ChunkIgnored,
    ChunkStored,
    Inbox,
    InboxRefusal,
    Known,
    TrackPoint,
)
from gateway.store.levels import StoreLevels
from gateway.store.outbox import Outbox

_MESSAGE_TYPES: dict[type, str] = {
    ReportReceived: "report",
    ChunkReceived: "chunk",
    StatusReceived: "status",
    TrackReceived: "track",
}


@dataclass(frozen=True, slots=True)
class Downlink:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Arrived:
    event: UplinkEvent
    received_at: str  # RFC 3339, UTC


class Intake:
    def __init__(
        self,
        inbox: Inbox,
        outbox: Outbox,
        profile: CodeProfile,
        log: FilteringBoundLogger,
        levels: Callable[[], StoreLevels] = StoreLevels,
        gate: DeviceGate | None = None,
        quotas: DeviceQuotas | None = None,
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.profile = profile
        self.log = log
        self.levels = levels  # how full the stores are (gateway.store.levels)
        self.gate = gate  # who may send (gateway.devices.gate); None: everyone
        self.quotas = quotas  # each device's budgets (gateway.devices.limits); None: none
        self._notices = OverLimitNotices(quotas.clock if quotas else time.monotonic)
        self._track: list[TrackPoint] = []

    def apply(self, batch: Sequence[Arrived]) -> list[Downlink]:
        """Apply a batch in one durable transaction; returns the downlinks it calls for."""
        downlinks: list[Downlink] = []
        if self.gate is not None:
            self.gate.refresh()
        spending = self.quotas.batch() if self.quotas is not None else nullcontext()
        self._track = []  # the batch's positions, stored in one statement
        with spending, self.inbox.batch():
            self.inbox.lock_uploads(_uploads(batch))
            for arrived in batch:
                downlinks.extend(self._apply(arrived.event, arrived.received_at))
            self.inbox.add_track(self._track)
        return downlinks

    def _apply(self, event: UplinkEvent, received_at: str) -> list[Downlink]:
        if self.gate is not None and not isinstance(event, UplinkRejected):
            reason = self.gate.refusal(event.device_id)
            if reason is not None:
                metrics.MESSAGES.labels("rejected").inc()
                return self._refuse(_refused_device(event, reason))
            self.gate.seen(event.device_id, received_at)
        metrics.MESSAGES.labels(_MESSAGE_TYPES.get(type(event), "rejected")).inc()
        if isinstance(event, ChunkReceived):
            return self._chunk(event)
        if isinstance(event, ReportReceived):
            return self._report(event, received_at)
        if isinstance(event, StatusReceived):
            return self._status(event, received_at)
        if isinstance(event, TrackReceived):
            self._track += [_point(event.device_id, fix, received_at) for fix in event.track.fixes]
            return []
        return self._refuse(event)

    def _report(self, event: ReportReceived, received_at: str) -> list[Downlink]:
        envelope = event.envelope
        ids = {"device_id": event.device_id, "report_id": event.report_id}
        if self.profile.lookup(envelope.kind, envelope.class_code) is None:
            return self._refuse_report(
                event,
                Reason.CLASS_UNKNOWN,
                f"{envelope.kind} {envelope.class_code} is not in profile {self.profile.name}",
            )
        levels = self.levels()
        full = levels.report_refusal or (levels.media_refusal if envelope.media else None)
        # A full store and the budgets refuse only new reports: a re-sent one is answered
        # where it stands (the budget is asked by the inbox, once it knows the report new).
        if full is not None and not self.inbox.knows(event.report_id):
            return self._refuse_report(event, Reason.RETRY_LATER, full)
        result = self.inbox.add_report(
            event.device_id,
            event.report_id,
            envelope,
            event.payload,
            received_at,
            self._admit_report if self.quotas is not None else None,
        )
        if isinstance(result, InboxRefusal):
            return self._refuse_report(event, result.reason, result.message)
        if isinstance(result, Added):
            metrics.REPORTS_RECEIVED.inc()
            if envelope.fix is not None:  # a position of the device's, for later jump checks
                self._track.append(_point(event.device_id, envelope.fix, received_at))
            self.log.debug("report.received", media=len(envelope.media), **ids)
            return self._incomplete(event.device_id, event.report_id, result.missing)
        if result.device_id != event.device_id:
            return self._refuse_report(
                event, Reason.REPORT_ID_CONFLICT, REASON_TEXT[Reason.REPORT_ID_CONFLICT]
            )
        self.log.debug("report.resent", **ids)
        return self._where_it_stands(event.device_id, event.report_id, result)

    def _where_it_stands(self, device_id: str, report_id: str, known: Known) -> list[Downlink]:
        """Answer a re-sent report: accepted with its case, rejected, or chunks missing."""
        state = self.outbox.state_of(report_id)
        topic = terminal.ack_topic(device_id)
        if state is not None and state.case_no is not None:
            return [Downlink(topic, terminal.encode_accepted(report_id, state.case_no))]
        if state is not None and state.state is ReportState.REJECTED:
            reason = ReasonBody(code=state.reason_code or "", message=state.reason_message or "")
            return [Downlink(topic, terminal.encode_rejected(report_id, reason))]
        # Not decided yet: chunks are missing, or (an empty list) the pipeline has it in hand.
        return [Downlink(topic, terminal.encode_incomplete(report_id, known.missing))]

    def _incomplete(
        self, device_id: str, report_id: str, missing: dict[str, list[int]]
    ) -> list[Downlink]:
        """Ask for missing chunks; nothing to say when none are."""
        if not missing:
            return []
        payload = terminal.encode_incomplete(report_id, missing)
        return [Downlink(terminal.ack_topic(device_id), payload)]

    def _chunk(self, event: ChunkReceived) -> list[Downlink]:
        full = self.levels().media_refusal
        result = (
            InboxRefusal(Reason.RETRY_LATER, full)
            if full is not None
            else self.inbox.add_chunk(
                event.device_id,
                event.media_id,
                event.seq,
                event.data,
                self._admit if self.quotas is not None else None,
            )
        )
        if isinstance(result, ChunkStored | ChunkIgnored):
            return []
        return self._refuse(
            UplinkRejected(
                terminal.media_topic(event.device_id, event.media_id, event.seq),
                result.reason,
                result.message,
                event.device_id,
                media_id=event.media_id,
                seq=event.seq,
            )
        )

    def _admit_report(self, device_id: str) -> InboxRefusal | None:
        """Asked by the inbox before it stores a new report: within the device's budget?"""
        over = self.quotas.take_report(device_id) if self.quotas is not None else None
        if over is None:
            return None
        self._over_limit(device_id, over)
        return InboxRefusal(over.reason, over.message)

    def _admit(self, device_id: str, size: int) -> InboxRefusal | None:
        """Asked by the inbox before it stores a new chunk: within the device's budgets?"""
        if self.quotas is None:
            return None
        over = self.quotas.take_media(device_id, size, self.inbox.spool_bytes(device_id))
        if over is None:
            return None
        self._over_limit(device_id, over)
        return InboxRefusal(over.reason, over.message)

    def _over_limit(self, device_id: str, over: OverLimit) -> None:
        refused = self._notices.refused(device_id, over.reason)
        if refused is not None:
            self.log.warning(
                "limits.device_over",
                device_id=device_id,
                limit=over.reason.value,
                refused=refused,  # since the last line for this device and limit
                detail=over.message,
            )

    def _status(self, event: StatusReceived, received_at: str) -> list[Downlink]:
        status = event.status
        self.inbox.set_status(
            event.device_id,
            status.online,
            status.battery_pct,
            status.firmware,
            status.signal_dbm,
            received_at,
        )
        if not status.online:
            return []
        # Back online: tell the terminal at once which chunks of its uploads are missing,
        # so it resumes with just those.
        downlinks: list[Downlink] = []
        for report_id in self.inbox.waiting_reports(event.device_id):
            missing = self.inbox.missing_chunks(report_id)
            downlinks.extend(self._incomplete(event.device_id, report_id, missing))
        return downlinks

    def _refuse_report(self, event: ReportReceived, reason: Reason, message: str) -> list[Downlink]:
        return self._refuse(
            UplinkRejected(
                terminal.report_topic(event.device_id),
                reason,
                message,
                event.device_id,
                event.report_id,
            )
        )

    def _refuse(self, rejected: UplinkRejected) -> list[Downlink]:
        uplink_rejected(self.log, rejected)
        reply = terminal.reply_to(rejected)
        return [Downlink(*reply)] if reply else []


def _refused_device(event: UplinkEvent, reason: Reason) -> UplinkRejected:
    """A message from a device the registry does not let in; nothing of it is stored."""
    text = REASON_TEXT[reason]
    if isinstance(event, ReportReceived):
        topic = terminal.report_topic(event.device_id)
        return UplinkRejected(topic, reason, text, event.device_id, event.report_id)
    if isinstance(event, ChunkReceived):
        topic = terminal.media_topic(event.device_id, event.media_id, event.seq)
        return UplinkRejected(
            topic, reason, text, event.device_id, media_id=event.media_id, seq=event.seq
        )
    if isinstance(event, StatusReceived | TrackReceived):
        kind = "status" if isinstance(event, StatusReceived) else "track"
        topic = f"{terminal.PREFIX}/{event.device_id}/{kind}"
        return UplinkRejected(topic, reason, text, event.device_id)
    return event


def _uploads(batch: Sequence[Arrived]) -> list[tuple[str, str]]:
    """The (device, media id) uploads a batch's chunks and reports touch."""
    uploads = []
    for arrived in batch:
        event = arrived.event
        if isinstance(event, ChunkReceived):
            uploads.append((event.device_id, event.media_id))
        elif isinstance(event, ReportReceived):
            uploads.extend((event.device_id, m.media_id.lower()) for m in event.envelope.media)
    return uploads


def _point(device_id: str, fix: Fix, received_at: str) -> TrackPoint:
    """A track row: times in UTC, so the store orders them as text."""
    when = fix.time.astimezone(UTC).isoformat() if fix.time is not None else None
    return device_id, when, fix.lat, fix.lon, fix.accuracy_m, received_at
