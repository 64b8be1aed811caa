"""The intake against a real SQLite inbox: media intake, idempotency, answers."""

from __future__ import annotations

import time

from gateway.lifecycle import Rejected, Step
from gateway.store.inbox import Inbox
from gateway.store.outbox import READY_CURSOR, Backoff, Outbox
from tests.factories import accepted, encode, envelope, random_upload, registered
from tests.unit.conftest import Feeder

DEVICE = "tz-0001"
REPORT_TOPIC = f"cgt/v1/{DEVICE}/report"


def ready_ids(inbox: Inbox) -> list[str]:
    return [report.report_id for report in inbox.ready_after(0, 100)]


def test_text_report_is_ready_at_once(feed: Feeder, inbox: Inbox) -> None:
    body = envelope()
    assert feed((REPORT_TOPIC, encode(body))) == []
    assert ready_ids(inbox) == [body["report_id"]]


def test_chunks_then_report_is_ready_without_asking(feed: Feeder, inbox: Inbox) -> None:
    upload = random_upload(5000, 1024)
    body = envelope([upload])
    chunks = [(upload.chunk_topic(DEVICE, seq), data) for seq, data in enumerate(upload.chunks)]
    assert feed(*chunks) == []
    assert feed((REPORT_TOPIC, encode(body))) == []
    assert ready_ids(inbox) == [body["report_id"]]


def test_report_first_lists_missing_then_last_chunk_makes_it_ready(
    feed: Feeder, inbox: Inbox
) -> None:
    upload = random_upload(5000, 1024)  # five chunks, the last one short
    body = envelope([upload])
    answers = feed((REPORT_TOPIC, encode(body)))
    assert answers == [
        (
            f"cgt/v1/{DEVICE}/ack",
            {
                "report_id": body["report_id"],
                "status": "incomplete",
                "missing": {upload.media_id: [0, 1, 2, 3, 4]},
            },
        )
    ]
    # out of order, with a duplicate
    for seq in (4, 2, 2, 0, 3):
        assert feed((upload.chunk_topic(DEVICE, seq), upload.chunks[seq])) == []
    assert ready_ids(inbox) == []
    assert inbox.missing_chunks(body["report_id"]) == {upload.media_id: [1]}
    feed((upload.chunk_topic(DEVICE, 1), upload.chunks[1]))
    assert ready_ids(inbox) == [body["report_id"]]
    # a chunk redelivered after completion changes nothing
    assert feed((upload.chunk_topic(DEVICE, 1), upload.chunks[1])) == []
    assert len(ready_ids(inbox)) == 1


def test_early_chunks_that_do_not_fit_the_manifest_are_dropped(feed: Feeder, inbox: Inbox) -> None:
    upload = random_upload(3000, 1024)
    body = envelope([upload])
    feed(
        (upload.chunk_topic(DEVICE, 0), upload.chunks[0]),
        (upload.chunk_topic(DEVICE, 1), b"short"),  # wrong length
        (upload.chunk_topic(DEVICE, 7), b"x" * 1024),  # beyond the end
    )
    answers = feed((REPORT_TOPIC, encode(body)))
    assert answers[0][1]["missing"] == {upload.media_id: [1, 2]}


def test_chunk_of_wrong_size_is_refused_on_the_error_topic(feed: Feeder) -> None:
    upload = random_upload(3000, 1024)
    feed((REPORT_TOPIC, encode(envelope([upload]))))
    answers = feed((upload.chunk_topic(DEVICE, 0), b"x" * 10))
    assert answers == [
        (
            f"cgt/v1/{DEVICE}/error",
            {
                "topic": upload.chunk_topic(DEVICE, 0),
                "reason": {
                    "code": "chunk.size_mismatch",
                    "message": answers[0][1]["reason"]["message"],
                },
                "media_id": upload.media_id,
                "seq": 0,
            },
        )
    ]
    answers = feed((upload.chunk_topic(DEVICE, 3), b"x" * 10))
    assert answers[0][1]["reason"]["code"] == "chunk.seq_out_of_range"


def test_another_devices_chunks_never_mix_into_an_upload(feed: Feeder, inbox: Inbox) -> None:
    upload = random_upload(2048, 1024)
    feed((REPORT_TOPIC, encode(envelope([upload]))))
    intruder = f"cgt/v1/tz-9999/media/{upload.media_id}/0"
    feed((intruder, b"y" * 1024), (intruder.replace("/0", "/1"), b"y" * 1024))
    assert ready_ids(inbox) == []


def test_unknown_class_code_is_rejected_with_its_reason(feed: Feeder, inbox: Inbox) -> None:
    body = envelope(class_code="0999")
    answers = feed((REPORT_TOPIC, encode(body)))
    assert answers[0][0] == f"cgt/v1/{DEVICE}/ack"
    assert answers[0][1]["status"] == "rejected"
    assert answers[0][1]["reason"]["code"] == "class.unknown"
    assert ready_ids(inbox) == []


def test_component_codes_are_checked_against_the_component_table(feed: Feeder) -> None:
    # 0102 is both "sewage manhole cover" (component) and "exposed garbage" (event);
    # 0119 exists only as a component.
    assert feed((REPORT_TOPIC, encode(envelope(kind="component", class_code="0119")))) == []
    answers = feed((REPORT_TOPIC, encode(envelope(kind="event", class_code="0119"))))
    assert answers[0][1]["reason"]["code"] == "class.unknown"


def test_resent_report_changes_nothing_and_hears_where_it_stands(
    feed: Feeder, inbox: Inbox, outbox: Outbox
) -> None:
    upload = random_upload(2048, 1024)
    body = envelope([upload])
    feed((REPORT_TOPIC, encode(body)))
    # still waiting for media: the same missing list again
    again = feed((REPORT_TOPIC, encode(body)))
    assert again[0][1]["missing"] == {upload.media_id: [0, 1]}
    for seq, data in enumerate(upload.chunks):
        feed((upload.chunk_topic(DEVICE, seq), data))
    # ready, not yet decided: incomplete with nothing missing (the accepted ack will come)
    assert feed((REPORT_TOPIC, encode(body))) == [
        (
            f"cgt/v1/{DEVICE}/ack",
            {"report_id": body["report_id"], "status": "incomplete", "missing": {}},
        )
    ]
    # registered: accepted with the same case number, every time
    outbox.record(READY_CURSOR, 1, [accepted(body["report_id"], DEVICE)])
    outbox.apply(
        Step.REGISTRY, [registered(body["report_id"], "E010220261128000007", DEVICE)], Backoff()
    )
    for _ in range(2):
        answers = feed((REPORT_TOPIC, encode(body)))
        assert answers == [
            (
                f"cgt/v1/{DEVICE}/ack",
                {
                    "report_id": body["report_id"],
                    "status": "accepted",
                    "case_no": "E010220261128000007",
                },
            )
        ]
    assert len(ready_ids(inbox)) == 1


def test_resent_rejected_report_hears_the_same_rejection(feed: Feeder, outbox: Outbox) -> None:
    body = envelope()
    feed((REPORT_TOPIC, encode(body)))
    outbox.record(
        READY_CURSOR, 1, [Rejected(body["report_id"], "media.checksum_mismatch", "m", DEVICE)]
    )
    answers = feed((REPORT_TOPIC, encode(body)))
    assert answers[0][1] == {
        "report_id": body["report_id"],
        "status": "rejected",
        "reason": {"code": "media.checksum_mismatch", "message": "m"},
    }


def test_report_id_of_another_device_is_refused(feed: Feeder, inbox: Inbox) -> None:
    body = envelope()
    feed((REPORT_TOPIC, encode(body)))
    answers = feed(("cgt/v1/tz-0002/report", encode(body)))
    assert answers[0][0] == "cgt/v1/tz-0002/ack"
    assert answers[0][1]["reason"]["code"] == "report.id_conflict"
    assert len(ready_ids(inbox)) == 1


def test_media_id_reused_by_the_same_device_is_refused(feed: Feeder) -> None:
    upload = random_upload(100, 1024)
    feed((REPORT_TOPIC, encode(envelope([upload]))))
    answers = feed((REPORT_TOPIC, encode(envelope([upload]))))
    assert answers[0][1]["reason"]["code"] == "media.id_in_use"


def test_back_online_terminal_hears_its_missing_chunks(feed: Feeder) -> None:
    upload = random_upload(2048, 1024)
    body = envelope([upload])
    feed((REPORT_TOPIC, encode(body)), (upload.chunk_topic(DEVICE, 1), upload.chunks[1]))
    answers = feed((f"cgt/v1/{DEVICE}/status", b'{"online": true, "battery_pct": 80}'))
    assert answers == [
        (
            f"cgt/v1/{DEVICE}/ack",
            {
                "report_id": body["report_id"],
                "status": "incomplete",
                "missing": {upload.media_id: [0]},
            },
        )
    ]
    assert feed((f"cgt/v1/{DEVICE}/status", b'{"online": false}')) == []


def test_status_and_track_are_stored(feed: Feeder, inbox: Inbox) -> None:
    feed(
        (f"cgt/v1/{DEVICE}/status", b'{"online": true, "firmware": "fw 1.2", "signal_dbm": -80}'),
        (
            f"cgt/v1/{DEVICE}/track",
            b'{"fixes": [{"lat": 32.0, "lon": 120.8}, {"lat": 32.1, "lon": 120.9}]}',
        ),
    )
    online, firmware = inbox.conn.execute(
        "SELECT online, firmware FROM device_status WHERE device_id = ?", (DEVICE,)
    ).fetchone()
    assert (online, firmware) == (1, "fw 1.2")
    (points,) = inbox.conn.execute("SELECT count(*) FROM track").fetchone()
    assert points == 2


def test_malformed_messages_are_answered_and_leave_no_trace(feed: Feeder, inbox: Inbox) -> None:
    answers = feed(
        (REPORT_TOPIC, b"not json"),
        ("cgt/v1/bad.device/report", encode(envelope())),
        (f"cgt/v1/{DEVICE}/status", b"{}"),
    )
    assert [(topic, body["reason"]["code"]) for topic, body in answers] == [
        (f"cgt/v1/{DEVICE}/error", "payload.not_json"),
        (f"cgt/v1/{DEVICE}/error", "field.missing"),
    ]
    assert inbox.counts() == {"reports_waiting": 0, "chunks": 0, "chunk_bytes": 0}


def test_abandoned_uploads_and_orphans_expire(feed: Feeder, inbox: Inbox) -> None:
    upload = random_upload(2048, 1024)
    body = envelope([upload])
    orphan = random_upload(1024, 1024)
    feed((REPORT_TOPIC, encode(body)), (orphan.chunk_topic(DEVICE, 0), orphan.chunks[0]))
    expired, orphans = inbox.expire(time.time(), upload_ttl_s=3600, orphan_ttl_s=3600)
    assert (expired, orphans) == ([], 0)
    expired, orphans = inbox.expire(time.time() + 7200, upload_ttl_s=3600, orphan_ttl_s=3600)
    assert (expired, orphans) == ([(DEVICE, body["report_id"])], 1)
    # the terminal starts over: a re-send is a new report
    answers = feed((REPORT_TOPIC, encode(body)))
    assert answers[0][1]["status"] == "incomplete"


def test_one_batch_is_one_transaction(feed: Feeder, inbox: Inbox) -> None:
    bodies = [envelope() for _ in range(50)]
    feed(*[(REPORT_TOPIC, encode(body)) for body in bodies])
    assert ready_ids(inbox) == [body["report_id"] for body in bodies]
