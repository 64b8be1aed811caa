"""What a replay makes of the gateway's answers, per report of the capture."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from firmware_sim.answers import Answers
from firmware_sim.capture import CaptureRecord
from firmware_sim.downlink import Reason, parse_downlink

REPORT_A = "6F1C2D2E-4B8E-4A53-9A8E-2F7D0B5C1A90"  # as a terminal may write it
REPORT_B = "7a2d3e3f-5c9f-4b64-8b9f-3a8e1c6d2ba1"
PHOTO_A = "0b7e5a1c-1111-4a53-9a8e-2f7d0b5c1a90"


def capture() -> list[CaptureRecord]:
    return [
        CaptureRecord(0.0, "cgt/v1/tz-1/status", b'{"online":true}', retain=True),
        CaptureRecord(
            0.1,
            "cgt/v1/tz-1/report",
            orjson.dumps({"report_id": REPORT_A, "media": [{"media_id": PHOTO_A}]}),
        ),
        CaptureRecord(0.2, f"cgt/v1/tz-1/media/{PHOTO_A}/0", b"\xff\xd8"),
        CaptureRecord(0.3, "cgt/v1/tz-2/report", orjson.dumps({"report_id": REPORT_B})),
        CaptureRecord(0.4, "cgt/v1/tz-2/report", orjson.dumps({"report_id": REPORT_B})),
        CaptureRecord(0.5, "cgt/v1/tz-2/report", b"{no id"),
    ]


def feed(answers: Answers, device_id: str, message: str, body: Mapping[str, Any]) -> None:
    answers.on_downlink(parse_downlink(f"cgt/v1/{device_id}/{message}", orjson.dumps(body)))


def rejected(report_id: str, code: str) -> dict[str, object]:
    return {"report_id": report_id, "status": "rejected", "reason": {"code": code, "message": "m"}}


def test_the_reports_of_a_capture_are_its_envelopes_with_an_id_once_each() -> None:
    answers = Answers.of(capture())
    assert [(r.report_id, r.device_id) for r in answers.reports.values()] == [
        (REPORT_A.lower(), "tz-1"),
        (REPORT_B, "tz-2"),
    ]
    assert answers.media == {PHOTO_A: REPORT_A.lower()}
    assert not answers.all_final
    assert answers.statuses() == {"none": 2}


def test_accepted_and_rejected_are_final_incomplete_and_retry_later_are_not() -> None:
    answers = Answers.of(capture())
    incomplete = {"report_id": REPORT_A.lower(), "status": "incomplete", "missing": {PHOTO_A: [0]}}
    feed(answers, "tz-1", "ack", incomplete)
    feed(answers, "tz-2", "ack", rejected(REPORT_B, "server.retry_later"))
    assert [r.report_id for r in answers.pending] == [REPORT_A.lower(), REPORT_B]

    feed(answers, "tz-1", "ack", {"report_id": REPORT_A, "status": "accepted", "case_no": "C-1"})
    feed(answers, "tz-2", "ack", rejected(REPORT_B, "class.unknown"))
    assert answers.all_final
    assert answers.statuses() == {"accepted": 1, "rejected": 1}
    for code in ("limit.reports_per_minute", "limit.media_bytes_per_hour", "limit.spool_bytes"):
        report_b = Answers.of(capture()).reports[REPORT_B]
        report_b.status, report_b.reason = "rejected", Reason(code, "m")
        assert not report_b.final  # the device's budget, not a verdict
    body = answers.to_json()
    assert (body["without_final_answer"], body["all_final"]) == (0, True)
    assert body["outcomes"][1]["reason"] == {"code": "class.unknown", "message": "m", "field": None}


def test_a_verdict_stays_and_a_second_case_number_is_recorded() -> None:
    answers = Answers.of(capture())
    accepted = {"report_id": REPORT_A, "status": "accepted", "case_no": "C-1"}
    feed(answers, "tz-1", "ack", accepted)
    feed(answers, "tz-1", "ack", {"report_id": REPORT_A, "status": "incomplete", "missing": {}})
    feed(answers, "tz-1", "ack", accepted)
    feed(answers, "tz-1", "ack", accepted | {"case_no": "C-2"})

    report = answers.reports[REPORT_A.lower()]
    assert (report.status, report.case_no, report.case_nos, report.acks) == (
        "accepted",
        "C-1",
        ["C-1", "C-2"],
        4,
    )


def test_error_notices_go_to_the_report_of_their_media_or_are_counted_by_code() -> None:
    answers = Answers.of(capture())
    chunk_topic = f"cgt/v1/tz-1/media/{PHOTO_A}/0"
    bad_size = {"code": "chunk.size_mismatch", "message": "m"}
    feed(answers, "tz-1", "error", {"topic": chunk_topic, "media_id": PHOTO_A, "reason": bad_size})
    not_json = {"code": "payload.not_json", "message": "m"}
    feed(answers, "tz-2", "error", {"topic": "cgt/v1/tz-2/report", "reason": not_json})
    stranger = "11111111-1111-4111-8111-111111111111"
    feed(answers, "tz-2", "ack", {"report_id": stranger, "status": "accepted", "case_no": "C-9"})
    answers.on_downlink(parse_downlink("cgt/v1/tz-2/ack", b"[]"))

    assert [e.code for e in answers.reports[REPORT_A.lower()].errors] == ["chunk.size_mismatch"]
    assert answers.errors == {"payload.not_json": 1}
    assert (answers.other_acks, answers.malformed) == (1, 1)
    assert answers.statuses() == {"none": 2}  # none of that is an answer to a report
