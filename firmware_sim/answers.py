"""What the gateway answered to a replayed capture, per report, sans I/O.

`Answers.of(records)` finds the reports of a capture (envelopes with a readable
`report_id`, and the media their manifests name); `on_downlink` takes each parsed
downlink. A report's answer is final when it is `accepted` or `rejected`, except a
rejection with `server.retry_later` or a `limit.*` code: that is the gateway's state or
the device's budget, not a verdict.
Error notices about a chunk go to the report whose manifest names its media; the rest
(a bad status, an envelope without a readable id) are counted by reason code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from firmware_sim.capture import CaptureRecord
from firmware_sim.downlink import Ack, Downlink, ErrorNotice, Malformed, Reason


@dataclass(slots=True)
class ReportAnswer:
    report_id: str  # lower case, as the gateway answers
    device_id: str
    status: str | None = None  # the last ack's status, None before any
    case_no: str | None = None  # the first accepted ack's
    case_nos: list[str] = field(default_factory=list)  # every distinct one: more is a bug
    reason: Reason | None = None
    acks: int = 0
    errors: list[Reason] = field(default_factory=list)  # notices about its chunks

    @property
    def final(self) -> bool:
        if self.status == "accepted":
            return True
        return self.status == "rejected" and (self.reason is None or not self.reason.retry_later)

    def to_json(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "device_id": self.device_id,
            "status": self.status,
            "final": self.final,
            "case_no": self.case_no,
            "case_nos": self.case_nos,
            "reason": _reason_json(self.reason),
            "acks": self.acks,
            "errors": [_reason_json(reason) for reason in self.errors],
        }


@dataclass(slots=True)
class Answers:
    reports: dict[str, ReportAnswer]  # by report id, in capture order
    media: dict[str, str]  # media id -> report id, both lower case
    errors: Counter[str] = field(default_factory=Counter)  # notices tied to no report
    malformed: int = 0  # downlinks we could not read
    other_acks: int = 0  # acks for reports not in the capture

    @classmethod
    def of(cls, records: Iterable[CaptureRecord]) -> Answers:
        reports: dict[str, ReportAnswer] = {}
        media: dict[str, str] = {}
        for record in records:
            if record.uplink.kind != "report":
                continue
            found = _ids(record.payload)
            if found is None:
                continue
            report_id, media_ids = found
            reports.setdefault(report_id, ReportAnswer(report_id, record.uplink.device_id))
            media.update(dict.fromkeys(media_ids, report_id))
        return cls(reports, media)

    def on_downlink(self, message: Downlink) -> None:
        if isinstance(message, Ack):
            self._ack(message)
        elif isinstance(message, ErrorNotice):
            report_id = self.media.get((message.media_id or "").lower())
            if report_id is not None:
                self.reports[report_id].errors.append(message.reason)
            else:
                self.errors[message.reason.code] += 1
        elif isinstance(message, Malformed):
            self.malformed += 1
        # tasks and config are for an inspector, not about the replay

    def _ack(self, ack: Ack) -> None:
        report = self.reports.get(ack.report_id.lower())
        if report is None:
            self.other_acks += 1
            return
        report.acks += 1
        if report.final:
            # A later "incomplete" (the pipeline still busy with a re-sent envelope) must
            # not undo a verdict; a second case number is recorded, as the bug it would be.
            if ack.status == "accepted" and ack.case_no and ack.case_no not in report.case_nos:
                report.case_nos.append(ack.case_no)
            return
        report.status, report.reason = ack.status, ack.reason
        if ack.status == "accepted" and ack.case_no is not None:
            report.case_no = report.case_no or ack.case_no
            if ack.case_no not in report.case_nos:
                report.case_nos.append(ack.case_no)

    @property
    def pending(self) -> list[ReportAnswer]:
        return [report for report in self.reports.values() if not report.final]

    @property
    def all_final(self) -> bool:
        return not self.pending

    def statuses(self) -> Counter[str]:
        """Reports by their last status; `none` for those never answered."""
        return Counter(report.status or "none" for report in self.reports.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "reports": len(self.reports),
            "statuses": dict(self.statuses()),
            "without_final_answer": len(self.pending),
            "all_final": self.all_final,
            "errors": dict(self.errors),
            "malformed_downlinks": self.malformed,
            "other_acks": self.other_acks,
            "outcomes": [report.to_json() for report in self.reports.values()],
        }


def _ids(payload: bytes) -> tuple[str, list[str]] | None:
    """The report id and media ids of an envelope, lower case; None if it has no id."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("report_id"), str):
        return None
    manifest = body.get("media")
    entries = manifest if isinstance(manifest, list) else []
    media_ids = [
        entry["media_id"].lower()
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("media_id"), str)
    ]
    return body["report_id"].lower(), media_ids


def _reason_json(reason: Reason | None) -> dict[str, Any] | None:
    if reason is None:
        return None
    return {"code": reason.code, "message": reason.message, "field": reason.field}
