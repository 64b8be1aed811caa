"""The pipeline with in-memory sinks: assembly, normalization, deliveries, retries."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from structlog.testing import capture_logs

from gateway import logs
from gateway.config import load_config
from gateway.errors import PermanentSinkError, RetryableSinkError
from gateway.geo.checks import FixChecks
from gateway.geo.places import load_locator
from gateway.geo.report_location import Geo
from gateway.media.pool import InlineRunner
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import CodeProfile
from gateway.protocols.payloads import Task
from gateway.runtime.pipeline import Pipeline, idle_wait
from gateway.sinks.memory import MemoryObjectStore, MemoryPublisher, MemoryRegistry
from gateway.store.db import sqlite_file
from gateway.store.inbox import Inbox
from gateway.store.outbox import Outbox
from gateway.store.spool import LocalSpool
from tests.factories import (
    FAST_PIPELINE,
    encode,
    envelope,
    photo_upload,
    random_upload,
    voice_upload,
)
from tests.unit.conftest import Feeder

DEVICE = "tz-0001"
REPORT_TOPIC = f"cgt/v1/{DEVICE}/report"
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "gateway/schemas/normalized-report.schema.json").read_text()
)


class Rig:
    def __init__(self, inbox: Inbox, outbox: Outbox, profile: CodeProfile, spool: Path) -> None:
        self.registry = MemoryRegistry()
        self.objects = MemoryObjectStore()
        self.publisher = MemoryPublisher()
        self.outbox = outbox
        self.pipeline = Pipeline(
            inbox=Inbox(sqlite_file(inbox.path)),
            outbox=Outbox(sqlite_file(outbox.path)),
            spool=LocalSpool(spool),
            media=InlineRunner(),
            registry=self.registry,
            objects=self.objects,
            publisher=self.publisher,
            profile=profile,
            window=AcceptanceWindow(ZoneInfo("Asia/Shanghai"), time(8), time(18)),
            geo=Geo(load_locator(load_config(None).geo), FixChecks()),
            settings=FAST_PIPELINE,
            log=logs.get("test"),
        )

    def drain(self, steps: int = 20) -> bool:
        """Step until idle (True) or `steps` ran out (False: a sink keeps failing)."""
        return any(self.pipeline.step() == 0 for _ in range(steps))

    def acks(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.publisher.messages if t.endswith("/ack")]

    def normalized(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.publisher.messages if "/normalized/" in t]


@pytest.fixture
def rig(inbox: Inbox, outbox: Outbox, profile: CodeProfile, tmp_path: Path) -> Rig:
    return Rig(inbox, outbox, profile, tmp_path / "spool")


def send_with_media(feed: Feeder, body: dict[str, Any], uploads: list[Any]) -> None:
    for upload in uploads:
        feed(*[(upload.chunk_topic(DEVICE, seq), data) for seq, data in enumerate(upload.chunks)])
    feed((REPORT_TOPIC, encode(body)))


def test_report_with_media_goes_all_the_way(feed: Feeder, rig: Rig, inbox: Inbox) -> None:
    photo = photo_upload(chunk_bytes=4096, orientation=6)
    voice = voice_upload(chunk_bytes=4096)
    body = envelope([photo, voice])
    send_with_media(feed, body, [photo, voice])
    assert rig.drain()

    case_no, case = rig.registry.cases[body["report_id"]]
    assert rig.acks() == [
        {"report_id": body["report_id"], "status": "accepted", "case_no": case_no}
    ]
    [published] = rig.normalized()
    assert published["case_no"] == case_no
    jsonschema.validate(published, SCHEMA)
    assert rig.publisher.messages[0][0] == "cgt/v1/normalized/event/0102"
    # the originals, content-addressed, byte for byte; the report JSON under its id
    for upload in (photo, voice):
        sha = hashlib.sha256(upload.data).hexdigest()
        key = next(k for k in rig.objects.objects if sha in k)
        assert rig.objects.objects[key] == upload.data
    assert json.loads(rig.objects.objects[f"reports/{body['report_id']}/report.json"]) == published
    # spool and chunks are cleared once the objects are stored
    assert inbox.counts()["chunks"] == 0
    assert not any(p.is_file() for p in rig.pipeline.spool.root.rglob("*"))
    assert case.description == "路边暴露垃圾一堆"
    # derivatives: stored under the report, named in the document, upright and measured
    photo_entry, voice_entry = published["media"]
    assert [d["name"] for d in photo_entry["derivatives"]] == ["display.jpg", "thumb.jpg"]
    display, thumb = photo_entry["derivatives"]
    assert (display["width"], display["height"]) == (480, 640)  # orientation 6 applied
    assert (thumb["width"], thumb["height"]) == (240, 320)
    assert display["key"] == f"reports/{body['report_id']}/media/{photo.media_id}/display.jpg"
    for derivative in (display, thumb, voice_entry["derivatives"][0]):
        stored = rig.objects.objects[derivative["key"]]
        assert hashlib.sha256(stored).hexdigest() == derivative["sha256"]
        assert len(stored) == derivative["bytes"]
    assert photo_entry["metadata"]["orientation"] == 6
    assert voice_entry["derivatives"][0]["mime"] == "audio/ogg"
    assert voice_entry["derivatives"][0]["duration_s"] == pytest.approx(1.0, abs=0.05)
    assert voice_entry["metadata"]["codec"] == "pcm_s16le"


def test_normalized_report_content(feed: Feeder, rig: Rig) -> None:
    body = envelope(kind="component", class_code="0101", object_code="3206020101000001")
    feed((REPORT_TOPIC, encode(body)))
    rig.drain()
    [doc] = rig.normalized()
    jsonschema.validate(doc, SCHEMA)
    assert doc["class"] == {
        "type": "component",
        "code": "0101",
        "major": {"code": "01", "name": "公用设施"},
        "minor": {"code": "01", "name": "上水井盖"},
        "name_en": "water-supply manhole cover",
        "profile": "gbt30428",
    }
    assert doc["reporter"] == {"device_id": DEVICE, "inspector_id": "INS-0042", "unit": None}
    location = doc["location"]
    assert location["wgs84"] == {
        "lat": 32.0109,
        "lon": 120.8551,
        "accuracy_m": 6.5,
        "time": "2026-11-28T01:14:58Z",
        "alt_m": None,
        "hdop": None,
        "satellites": None,
    }
    assert location["source"] == "fix"
    assert location["flags"] == []
    assert location["segment"]["segment_ids"] == ["S07", "S20"]  # 桃坞路: a division, a squadron
    assert [unit["unit_zh"] for unit in location["responsible_units"]] == ["指挥协调处", "二中队"]
    assert location["coverage"]["district_zh"] == "崇川区"
    assert location["grid_code"].startswith("320600")
    assert location["gcj02"]["lon"] > 120.8551
    # received 01:15 UTC = 09:15 in Nantong: inside 08:00-18:00
    assert doc["acceptance"] == {
        "inside_window": True,
        "window": "08:00-18:00",
        "timezone": "Asia/Shanghai",
    }
    assert doc["reported_at"] == "2026-11-28T09:15:02+08:00"


def test_many_reports_each_one_case(feed: Feeder, rig: Rig) -> None:
    bodies = [envelope() for _ in range(250)]
    feed(*[(REPORT_TOPIC, encode(body)) for body in bodies])
    rig.drain()
    assert len(rig.registry.cases) == 250
    assert {a["report_id"] for a in rig.acks()} == {b["report_id"] for b in bodies}


def test_reprocessing_after_a_lost_cursor_makes_no_second_case(
    feed: Feeder, rig: Rig, outbox: Outbox
) -> None:
    bodies = [envelope() for _ in range(5)]
    feed(*[(REPORT_TOPIC, encode(body)) for body in bodies])
    rig.drain()
    outbox.conn.execute("UPDATE cursors SET value = 0")  # as if the verdicts' commit was lost
    rig.drain()
    assert len(rig.registry.cases) == 5
    assert len(rig.acks()) == 5


def test_a_failing_registry_holds_back_only_what_needs_a_case_number(
    feed: Feeder, rig: Rig, outbox: Outbox
) -> None:
    rig.registry.failure = RetryableSinkError("connection refused")
    body = envelope()
    feed((REPORT_TOPIC, encode(body)))
    rig.drain()
    assert rig.publisher.messages == []
    (attempts, error) = outbox.conn.execute(
        "SELECT attempts, last_error FROM deliveries WHERE sink = 'registry'"
    ).fetchone()
    assert attempts >= 1
    assert error == "connection refused"
    rig.registry.failure = None
    rig.drain()
    assert len(rig.acks()) == 1


def test_failing_objects_never_block_bus_and_acks(feed: Feeder, rig: Rig, outbox: Outbox) -> None:
    rig.objects.failure = RetryableSinkError("503 slow down")
    feed(*[(REPORT_TOPIC, encode(envelope())) for _ in range(3)])
    rig.drain()
    assert len(rig.acks()) == 3
    assert len(rig.normalized()) == 3
    assert outbox.depths()["objects"][0] == 3
    rig.objects.failure = None
    rig.drain()
    assert outbox.depths()["objects"][0] == 0
    assert len(rig.objects.objects) == 3
    # and nothing was sent twice meanwhile
    assert len(rig.acks()) == 3


def test_permanent_failure_is_a_dead_letter_until_revived(
    feed: Feeder, rig: Rig, outbox: Outbox
) -> None:
    rig.objects.failure = PermanentSinkError("NoSuchBucket")
    body = envelope()
    feed((REPORT_TOPIC, encode(body)))
    rig.drain()
    [letter] = outbox.dead_letters()
    assert (letter.report_id, letter.sink, letter.last_error) == (
        body["report_id"],
        "objects",
        "NoSuchBucket",
    )
    rig.objects.failure = None
    rig.drain()
    assert rig.objects.objects == {}  # a dead letter waits for an operator
    assert outbox.revive("objects") == 1
    rig.drain()
    assert f"reports/{body['report_id']}/report.json" in rig.objects.objects
    assert outbox.dead_letters() == []


def test_unconfirmed_publishes_are_retried(feed: Feeder, rig: Rig) -> None:
    rig.publisher.failure = RetryableSinkError("not connected to the broker")
    feed((REPORT_TOPIC, encode(envelope())))
    rig.drain()
    assert rig.publisher.messages == []
    rig.publisher.failure = None
    rig.drain()
    assert len(rig.acks()) == 1
    assert len(rig.normalized()) == 1


def test_corrupt_upload_is_asked_again_then_rejected(feed: Feeder, rig: Rig, inbox: Inbox) -> None:
    photo = random_upload(2048, 1024)
    manifest = photo.manifest | {"sha256": "0" * 64}
    body = envelope()
    body["media"] = [manifest]
    for attempt in range(3):
        send_with_media(feed, body, [photo])
        rig.drain()
        if attempt < 2:
            assert rig.acks() == []
            assert inbox.missing_chunks(body["report_id"]) == {photo.media_id: [0, 1]}
    [ack] = rig.acks()
    assert ack["status"] == "rejected"
    assert ack["reason"]["code"] == "media.checksum_mismatch"
    assert rig.registry.cases == {}


def test_restart_after_assembly_finds_the_spooled_file(
    feed: Feeder, rig: Rig, inbox: Inbox, outbox: Outbox
) -> None:
    photo = photo_upload(chunk_bytes=4096)
    body = envelope([photo])
    send_with_media(feed, body, [photo])
    rig.drain()
    outbox.conn.execute("DELETE FROM outcomes")
    outbox.conn.execute("DELETE FROM deliveries")
    outbox.conn.execute("UPDATE cursors SET value = 0")
    rig.objects.objects.clear()
    # the spool file was removed after objects were stored; chunks are gone too, so a
    # reprocessed report can only be rebuilt from the spool: put it back as if we crashed
    # between assembly and recording the verdict.
    target = rig.pipeline.spool.path(DEVICE, photo.media_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(photo.data)
    rig.drain()
    assert len(rig.registry.cases) == 1
    assert photo.data in rig.objects.objects.values()


def test_a_photo_that_is_not_one_rejects_the_report_with_its_reason(feed: Feeder, rig: Rig) -> None:
    fake = random_upload(3000, 1024)  # random bytes announced as image/jpeg
    voice = voice_upload(chunk_bytes=4096)
    body = envelope([fake, voice])
    send_with_media(feed, body, [fake, voice])
    assert rig.drain()
    [ack] = rig.acks()
    assert ack["status"] == "rejected"
    assert ack["reason"]["code"] == "photo.unreadable"
    assert fake.media_id in ack["reason"]["message"]
    assert rig.registry.cases == {}
    assert rig.objects.objects == {}
    assert not any(p.is_file() for p in rig.pipeline.spool.root.rglob("*"))


def test_reprocessing_gives_the_same_keys_and_bytes(feed: Feeder, rig: Rig, outbox: Outbox) -> None:
    photo = photo_upload(chunk_bytes=4096)
    body = envelope([photo])
    send_with_media(feed, body, [photo])
    assert rig.drain()
    first = dict(rig.objects.objects)
    target = rig.pipeline.spool.path(DEVICE, photo.media_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(photo.data)  # as if the spool had been kept
    outbox.conn.execute("DELETE FROM outcomes")
    outbox.conn.execute("DELETE FROM deliveries")
    outbox.conn.execute("UPDATE cursors SET value = 0")
    rig.objects.objects.clear()
    assert rig.drain()
    assert rig.objects.objects.keys() == first.keys()
    derived = [k for k in first if "/media/" in k]
    assert derived
    assert all(rig.objects.objects[k] == first[k] for k in derived)


def test_nmea_places_a_report_without_a_fix_and_checks_one_with(feed: Feeder, rig: Rig) -> None:
    # Taowu Road (32.0109 N, 120.8551 E), 4 s before the report, 12 satellites
    sentences = [
        "$GNRMC,011458.00,A,3200.6540,N,12051.3060,E,0.5,54.7,281126,,,A*70",
        "$GNGGA,011458.00,3200.6540,N,12051.3060,E,1,12,0.8,5.0,M,3.2,M,,*40",
    ]
    only_nmea = envelope(fix=None, nmea=sentences)
    far_fix = {"lat": 32.0150, "lon": 120.8551, "accuracy_m": 5.0, "time": "2026-11-28T01:14:58Z"}
    both_far = envelope(fix=far_fix, nmea=sentences)  # 450 m from what the receiver said
    void = envelope(
        fix=None, nmea=["$GNRMC,011458.00,V,3200.6540,N,12051.3060,E,0.5,54.7,281126,,,A*67"]
    )
    feed(*[(REPORT_TOPIC, encode(body)) for body in (only_nmea, both_far, void)])
    assert rig.drain()
    by_id = {doc["report_id"]: doc["location"] for doc in rig.normalized()}
    placed = by_id[only_nmea["report_id"]]
    assert placed["source"] == "nmea"
    assert placed["wgs84"]["lat"] == pytest.approx(32.0109, abs=1e-6)
    assert placed["wgs84"]["satellites"] == 12
    assert placed["flags"] == []
    assert by_id[both_far["report_id"]]["flags"] == ["fix.nmea_disagrees"]
    assert by_id[void["report_id"]]["flags"] == ["nmea.void", "location.unknown"]


def _issue(rig: Rig, case_no: str, device_id: str = DEVICE) -> str:
    task_id = str(uuid.uuid4())
    rig.registry.add_task(device_id, Task(task_id=task_id, case_no=case_no, kind="verify"))
    return task_id


def test_a_verification_report_is_answered_with_its_tasks_case(feed: Feeder, rig: Rig) -> None:
    original = envelope()
    feed((REPORT_TOPIC, encode(original)))
    assert rig.drain()
    [first] = rig.acks()
    task_id = _issue(rig, first["case_no"])

    photo = photo_upload(chunk_bytes=4096)
    answer = envelope([photo], task_id=task_id.upper(), description="井盖已更换")
    send_with_media(feed, answer, [photo])
    assert rig.drain()

    assert rig.acks()[1] == {
        "report_id": answer["report_id"],
        "status": "accepted",
        "case_no": first["case_no"],
    }
    published = rig.normalized()[1]
    assert (published["case_no"], published["task_id"]) == (first["case_no"], task_id)
    jsonschema.validate(published, SCHEMA)
    assert list(rig.registry.cases) == [original["report_id"]]  # no new case
    assert list(rig.registry.verifications) == [answer["report_id"]]
    stored = json.loads(rig.objects.objects[f"reports/{answer['report_id']}/report.json"])
    assert stored["case_no"] == first["case_no"]


def test_a_verification_of_an_unknown_task_is_rejected_and_its_media_let_go(
    feed: Feeder, rig: Rig, outbox: Outbox
) -> None:
    original = envelope()
    feed((REPORT_TOPIC, encode(original)))
    assert rig.drain()
    theirs = _issue(rig, rig.acks()[0]["case_no"], device_id="tz-0002")
    photo = photo_upload(chunk_bytes=4096)
    answer = envelope([photo], task_id=theirs)

    with capture_logs() as logged:
        send_with_media(feed, answer, [photo])
        assert rig.drain()

    ack = rig.acks()[1]
    assert (ack["status"], ack["reason"]["code"]) == ("rejected", "task.unknown")
    assert theirs in ack["reason"]["message"]
    assert rig.registry.verifications == {}
    assert list(rig.registry.cases) == [original["report_id"]]
    assert len(rig.normalized()) == 1  # only the original went to the bus
    assert not any(p.is_file() for p in rig.pipeline.spool.root.rglob("*"))
    assert outbox.depths()["registry"] == (0, 0.0, 0)  # done with, not dead or pending
    [warning] = [line for line in logged if line["event"] == "report.rejected"]
    assert (warning["report_id"], warning["task_id"]) == (answer["report_id"], theirs)
    assert (warning["reason"], warning["step"]) == ("task.unknown", "registry")


def test_a_fix_far_from_the_devices_previous_one_is_flagged_a_jump(feed: Feeder, rig: Rig) -> None:
    """The previous position comes from the device's track in the inbox, read for the
    whole batch at once: a later report of the same device 11 km off in 10 s is a jump;
    another device's report in the same batch is not."""
    first = envelope()
    jumped = envelope(
        fix={"lat": 32.1108, "lon": 120.855, "accuracy_m": 6.5, "time": "2026-11-28T01:15:08Z"}
    )
    elsewhere = envelope(
        fix={"lat": 32.1108, "lon": 120.855, "accuracy_m": 6.5, "time": "2026-11-28T01:15:08Z"}
    )
    feed((REPORT_TOPIC, encode(first)))
    feed((REPORT_TOPIC, encode(jumped)), ("cgt/v1/tz-0002/report", encode(elsewhere)))
    assert rig.drain()
    flags = {doc["report_id"]: doc["location"]["flags"] for doc in rig.normalized()}
    assert "fix.jump" not in flags[first["report_id"]]
    assert "fix.jump" in flags[jumped["report_id"]]
    assert "fix.jump" not in flags[elsewhere["report_id"]]


def test_an_idle_pipeline_polls_a_shared_store_less_and_less() -> None:
    waits = [0.005]
    for _ in range(6):
        waits.append(idle_wait(waits[-1], 0.005, shared=True, worked=False))
    assert waits == [0.005, 0.01, 0.02, 0.04, 0.05, 0.05, 0.05]
    assert idle_wait(0.05, 0.005, shared=True, worked=True) == 0.005  # work: at once again
    assert idle_wait(0.005, 0.005, shared=False, worked=False) == 0.005  # SQLite: as ever
