"""The intake with per-device budgets: over one, its reason; the other devices untouched."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from gateway import logs
from gateway.devices.limits import DeviceLimits, DeviceQuotas
from gateway.lifecycle import Step
from gateway.normalize.codes import CodeProfile
from gateway.runtime.intake import Intake
from gateway.store.db import connect
from gateway.store.inbox import MIGRATIONS, Inbox
from gateway.store.outbox import READY_CURSOR, Backoff, Outbox
from tests.factories import accepted, encode, envelope, random_upload, registered
from tests.unit.conftest import Feeder

F, G = "tz-flood", "tz-good"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def limited(
    inbox: Inbox, outbox: Outbox, profile: CodeProfile, clock: Clock, **budgets: int
) -> Feeder:
    values = {"reports_per_minute": 120, "media_bytes_per_hour": 1 << 30, "spool_bytes": 1 << 30}
    quotas = DeviceQuotas(DeviceLimits(**(values | budgets)), clock)
    return Feeder(Intake(inbox, outbox, profile, logs.get("test"), quotas=quotas))


def rejected_total(reason: str) -> float:
    return REGISTRY.get_sample_value("cgt_rejected_total", {"reason": reason}) or 0.0


def report_topic(device_id: str) -> str:
    return f"cgt/v1/{device_id}/report"


def test_new_reports_over_the_minute_are_refused_and_resent_ones_still_answered(
    inbox: Inbox, outbox: Outbox, profile: CodeProfile, clock: Clock
) -> None:
    feed = limited(inbox, outbox, profile, clock, reports_per_minute=2)
    first, second, third = envelope(), envelope(), envelope()
    assert feed((report_topic(F), encode(first)), (report_topic(F), encode(second))) == []
    before = rejected_total("limit.reports_per_minute")
    [(topic, answer)] = feed((report_topic(F), encode(third)))
    assert topic == f"cgt/v1/{F}/ack"
    assert (answer["status"], answer["reason"]["code"]) == ("rejected", "limit.reports_per_minute")
    assert rejected_total("limit.reports_per_minute") == before + 1
    assert not inbox.knows(third["report_id"])
    # a report it already holds is answered where it stands, at no cost to the budget
    outbox.record(READY_CURSOR, 1, [accepted(first["report_id"], F)])
    outbox.apply(
        Step.REGISTRY, [registered(first["report_id"], "E010220261128000007", F)], Backoff()
    )
    for _ in range(5):
        [(_, again)] = feed((report_topic(F), encode(first)))
        assert (again["status"], again["case_no"]) == ("accepted", "E010220261128000007")
    # another device has a budget of its own
    assert feed((report_topic(G), encode(envelope()))) == []
    clock.now += 30  # half a minute refills one report
    assert feed((report_topic(F), encode(third))) == []
    assert inbox.knows(third["report_id"])


def test_chunks_over_the_hourly_media_budget_are_refused_and_not_stored(
    inbox: Inbox, outbox: Outbox, profile: CodeProfile, clock: Clock
) -> None:
    feed = limited(inbox, outbox, profile, clock, media_bytes_per_hour=3 * 1024)
    upload = random_upload(5 * 1024, 1024)
    body = envelope([upload])
    feed((report_topic(F), encode(body)))
    chunks = [(upload.chunk_topic(F, seq), data) for seq, data in enumerate(upload.chunks)]
    before = rejected_total("limit.media_bytes_per_hour")
    with capture_logs() as logged:
        answers = feed(*chunks)
    assert [answer["seq"] for _, answer in answers] == [3, 4]
    assert {answer["reason"]["code"] for _, answer in answers} == {"limit.media_bytes_per_hour"}
    assert {topic for topic, _ in answers} == {f"cgt/v1/{F}/error"}
    assert rejected_total("limit.media_bytes_per_hour") == before + 2
    assert inbox.missing_chunks(body["report_id"]) == {upload.media_id: [3, 4]}
    assert inbox.spool_bytes(F) == 3 * 1024
    # one warning for the device and limit; each refusal at debug only
    [over] = [line for line in logged if line["event"] == "limits.device_over"]
    assert (over["device_id"], over["limit"], over["refused"]) == (
        F,
        "limit.media_bytes_per_hour",
        1,
    )
    assert {line["log_level"] for line in logged if line["event"] == "uplink.rejected"} == {"debug"}
    # a duplicate of a stored chunk is ignored as ever, not refused
    assert feed(chunks[0]) == []
    # another device's budget is untouched
    other = random_upload(3 * 1024, 1024)
    assert feed(*[(other.chunk_topic(G, seq), data) for seq, data in enumerate(other.chunks)]) == []
    assert feed((report_topic(G), encode(envelope([other])))) == []
    # refilled pro rata: the 2 KiB left fit 40 minutes later
    clock.now += 2400
    assert feed(*chunks[3:]) == []
    assert inbox.missing_chunks(body["report_id"]) == {}


def test_chunks_over_the_devices_spool_are_refused_until_it_drains(
    inbox: Inbox, outbox: Outbox, profile: CodeProfile, clock: Clock
) -> None:
    feed = limited(inbox, outbox, profile, clock, spool_bytes=4 * 1024)
    orphans = [random_upload(1024, 1024) for _ in range(6)]  # chunks whose report never came
    answers = feed(*[(upload.chunk_topic(F, 0), upload.data) for upload in orphans])
    assert [answer["reason"]["code"] for _, answer in answers] == ["limit.spool_bytes"] * 2
    assert [answer["media_id"] for _, answer in answers] == [u.media_id for u in orphans[4:]]
    assert inbox.spool_bytes(F) == 4 * 1024
    assert inbox.counts()["chunks"] == 4
    other = random_upload(3 * 1024, 1024)
    assert feed(*[(other.chunk_topic(G, seq), data) for seq, data in enumerate(other.chunks)]) == []
    # the pipeline assembled (or expiry dropped) what it held: room again
    inbox.drop_chunks([(F, upload.media_id) for upload in orphans[:4]])
    assert inbox.spool_bytes(F) == 0
    assert feed(*[(upload.chunk_topic(F, 0), upload.data) for upload in orphans[4:]]) == []
    assert inbox.spool_bytes(F) == 2 * 1024


def test_without_quotas_nothing_is_limited(feed: Feeder, inbox: Inbox) -> None:
    answers = feed(*[(report_topic(F), encode(envelope())) for _ in range(300)])
    assert answers == []
    assert len(inbox.ready_after(0, 1000)) == 300


def spooled_by_device(inbox: Inbox) -> dict[str, int]:
    """The slow truth the trigger-kept counter must equal."""
    rows = inbox.conn.execute(
        "SELECT device_id, sum(length(data)) FROM chunks GROUP BY device_id"
    ).fetchall()
    return dict(rows)


def counted(inbox: Inbox) -> dict[str, int]:
    return dict(inbox.conn.execute("SELECT device_id, bytes FROM device_spool").fetchall())


def test_the_spool_counter_follows_every_writer(feed: Feeder, inbox: Inbox) -> None:
    upload = random_upload(4 * 1024, 1024)
    early = [(upload.chunk_topic(F, seq), data) for seq, data in enumerate(upload.chunks)]
    feed(*early[:2], (upload.chunk_topic(F, 9), b"x" * 1024))  # one beyond the manifest's end
    feed((f"cgt/v1/{G}/media/{random_upload().media_id}/0", b"y" * 700))  # an orphan
    assert counted(inbox) == spooled_by_device(inbox) == {F: 3 * 1024, G: 700}
    body = envelope([upload])
    feed((report_topic(F), encode(body)))  # the misfit goes
    assert counted(inbox) == spooled_by_device(inbox) == {F: 2 * 1024, G: 700}
    feed(*early[2:])
    inbox.restart_upload(F, upload.media_id)  # a corrupt upload starts again
    assert counted(inbox) == {G: 700}  # emptied rows go: the table stays as small as the spool
    feed(*early)
    inbox.drop_chunks([(F, upload.media_id)])  # assembled
    inbox.expire(now=2e9, upload_ttl_s=1, orphan_ttl_s=1)
    assert counted(inbox) == spooled_by_device(inbox) == {}


def test_an_inbox_from_before_the_counter_is_counted_when_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    with closing(connect(path, MIGRATIONS[:1])) as old:
        old.executemany(
            "INSERT INTO chunks (device_id, media_id, seq, data, received_at)"
            " VALUES (?, ?, ?, ?, 0)",
            [(F, "m1", 0, b"x" * 100), (F, "m1", 1, b"x" * 50), (G, "m2", 0, b"y" * 7)],
        )
    inbox = Inbox(path)
    assert (inbox.spool_bytes(F), inbox.spool_bytes(G), inbox.spool_bytes("nobody")) == (150, 7, 0)
    inbox.close()


def test_a_batch_that_fails_and_is_tried_again_pays_once(
    inbox: Inbox,
    outbox: Outbox,
    profile: CodeProfile,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed = limited(inbox, outbox, profile, clock, reports_per_minute=1)
    body = envelope()
    add_report = inbox.add_report

    def full_disk(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(inbox, "add_report", add_report)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(inbox, "add_report", full_disk)
    with pytest.raises(sqlite3.OperationalError):
        feed((report_topic(F), encode(body)))
    assert feed((report_topic(F), encode(body))) == []  # the retry (commit_loop's) is taken
    assert inbox.knows(body["report_id"])
