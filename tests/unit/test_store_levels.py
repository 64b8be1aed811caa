"""Bounded stores: what the levels mean, and what the intake does at the bound."""

from __future__ import annotations

from pathlib import Path

from gateway import logs
from gateway.normalize.codes import CodeProfile
from gateway.runtime.intake import Intake
from gateway.store.db import sqlite_file
from gateway.store.inbox import Inbox
from gateway.store.levels import StoreLevels, StoreLimits, StoreWatch, judge
from gateway.store.outbox import Outbox
from tests.factories import encode, envelope, random_upload
from tests.unit.conftest import Feeder

DEVICE = "tz-0001"
REPORT_TOPIC = f"cgt/v1/{DEVICE}/report"
ACK_TOPIC = f"cgt/v1/{DEVICE}/ack"
LIMITS = StoreLimits(spool_max_bytes=1000, outbox_max_reports=10, min_free_bytes=100)
MEDIA_FULL = judge(1000, 0, 10**9, LIMITS)
REPORTS_FULL = judge(0, 10, 10**9, LIMITS)


def test_each_bound_and_what_it_refuses() -> None:
    assert judge(999, 9, 100, LIMITS) == StoreLevels(999, 9, 100, None, None)
    assert MEDIA_FULL.media_refusal == "the media spool holds 1000 bytes (limit 1000)"
    assert MEDIA_FULL.report_refusal is None
    assert REPORTS_FULL.report_refusal == "10 reports wait for delivery (limit 10)"
    assert REPORTS_FULL.media_refusal == REPORTS_FULL.report_refusal
    low_disk = judge(0, 0, 99, LIMITS)
    assert low_disk.report_refusal == "the gateway's disk has 99 bytes free, under 100"
    assert low_disk.media_refusal == low_disk.report_refusal


def reason_code(answer: dict[str, object]) -> object:
    reason = answer["reason"]
    assert isinstance(reason, dict)
    return reason["code"]


def feeder(inbox: Inbox, outbox: Outbox, profile: CodeProfile, levels: list[StoreLevels]) -> Feeder:
    """An intake whose levels are whatever `levels[0]` is when it asks."""
    return Feeder(Intake(inbox, outbox, profile, logs.get("test"), lambda: levels[0]))


def test_at_the_spool_bound_media_wait_and_text_reports_go_on(
    inbox: Inbox, outbox: Outbox, profile: CodeProfile
) -> None:
    levels = [MEDIA_FULL]
    feed = feeder(inbox, outbox, profile, levels)
    upload = random_upload(3000, 1024)
    with_photo, text = envelope([upload]), envelope()

    answers = feed((REPORT_TOPIC, encode(with_photo)), (REPORT_TOPIC, encode(text)))

    assert answers == [
        (
            ACK_TOPIC,
            {
                "report_id": with_photo["report_id"],
                "status": "rejected",
                "reason": {
                    "code": "server.retry_later",
                    "message": "the media spool holds 1000 bytes (limit 1000)",
                },
            },
        )
    ]
    assert not inbox.knows(with_photo["report_id"])  # the terminal keeps it, nothing here
    assert inbox.knows(text["report_id"])
    (chunk_answer,) = feed((upload.chunk_topic(DEVICE, 0), upload.chunks[0]))
    assert reason_code(chunk_answer[1]) == "server.retry_later"
    assert inbox.counts()["chunks"] == 0

    levels[0] = StoreLevels()  # the spool drained: the same report is taken now
    assert feed((REPORT_TOPIC, encode(with_photo)))[0][1]["status"] == "incomplete"
    assert inbox.knows(with_photo["report_id"])


def test_at_the_outbox_bound_new_reports_wait_and_known_ones_are_answered(
    inbox: Inbox, outbox: Outbox, profile: CodeProfile
) -> None:
    levels = [StoreLevels()]
    feed = feeder(inbox, outbox, profile, levels)
    upload = random_upload(3000, 1024)
    known = envelope([upload])
    feed((REPORT_TOPIC, encode(known)))
    levels[0] = REPORTS_FULL

    again, new = feed((REPORT_TOPIC, encode(known)), (REPORT_TOPIC, encode(envelope())))

    assert again[1] == {
        "report_id": known["report_id"],
        "status": "incomplete",
        "missing": {upload.media_id: [0, 1, 2]},
    }
    assert new[1]["status"] == "rejected"
    assert reason_code(new[1]) == "server.retry_later"


def test_the_watch_measures_chunks_spool_files_and_pending_deliveries(
    tmp_path: Path, inbox: Inbox, outbox: Outbox, profile: CodeProfile
) -> None:
    feed = Feeder(Intake(inbox, outbox, profile, logs.get("test")))
    upload = random_upload(3000, 1024)
    feed((REPORT_TOPIC, encode(envelope([upload]))))
    feed(*[(upload.chunk_topic(DEVICE, seq), upload.chunks[seq]) for seq in (0, 1)])
    spool = tmp_path / "spool"
    (spool / DEVICE).mkdir(parents=True)
    (spool / DEVICE / "assembled").write_bytes(b"x" * 500)
    limits = StoreLimits(spool_max_bytes=2548, outbox_max_reports=1, min_free_bytes=0)
    watch = StoreWatch(
        tmp_path, sqlite_file(inbox.path), sqlite_file(outbox.path), spool, limits, logs.get("test")
    )

    levels = watch.measure()

    assert levels.spool_bytes == 2048 + 500
    assert levels.outbox_reports == 0
    assert levels.media_refusal == "the media spool holds 2548 bytes (limit 2548)"
    assert levels.report_refusal is None
