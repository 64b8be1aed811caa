"""A terminal's report through real Mosquitto and the real gateway process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

from gateway.harness.mosquitto import Mosquitto
from tests.factories import encode, envelope, photo_upload, voice_upload
from tests.integration.helpers import Client, GatewayProcess, Terminal, wait_until

pytestmark = pytest.mark.integration
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "gateway/schemas/normalized-report.schema.json").read_text()
)


def test_report_with_photo_and_voice_is_accepted_stored_and_published(
    broker: Mosquitto, gateway: GatewayProcess
) -> None:
    backend = Client(broker.url, "backend-sanitation", ["cgt/v1/normalized/event/#"])
    terminal = Terminal(broker.url, "tz-0001")
    photo = photo_upload(size=(1200, 900), orientation=6)  # several 64-KiB chunks
    voice = voice_upload(seconds=2.0)
    body = envelope([photo, voice])
    terminal.send(body, [photo, voice])

    ack = terminal.wait_final(body["report_id"])
    assert ack["status"] == "accepted"
    case_no = ack["case_no"]
    assert case_no.startswith("E0102")
    assert gateway.cases() == [(body["report_id"], case_no)]

    topic, payload = backend.received.get(timeout=10)
    assert topic == "cgt/v1/normalized/event/0102"
    normalized = json.loads(payload)
    jsonschema.validate(normalized, SCHEMA)
    assert normalized["case_no"] == case_no

    objects = gateway.data_dir / "objects"
    stored_report = objects / f"reports/{body['report_id']}/report.json"
    wait_until(stored_report.exists, 10, "objects")
    for media, upload in zip(normalized["media"], (photo, voice), strict=True):
        stored = (objects / media["original"]["key"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == media["original"]["sha256"]
        assert stored == upload.data
        assert media["derivatives"]
        for derivative in media["derivatives"]:
            data = (objects / derivative["key"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == derivative["sha256"]
    display = normalized["media"][0]["derivatives"][0]
    assert (display["width"], display["height"]) == (900, 1200)  # upright
    assert normalized["media"][1]["derivatives"][0]["duration_s"] == pytest.approx(2.0, abs=0.05)
    assert (
        json.loads((objects / f"reports/{body['report_id']}/report.json").read_text()) == normalized
    )
    backend.close()
    terminal.close()


def test_the_same_report_twice_is_one_case(broker: Mosquitto, gateway: GatewayProcess) -> None:
    terminal = Terminal(broker.url, "tz-0002")
    body = envelope()
    terminal.send(body)
    first = terminal.wait_final(body["report_id"])
    terminal.send(body)
    terminal.send(body)
    wait_until(
        lambda: len(terminal.acks.get(body["report_id"], [])) >= 3 or (terminal.pump() and False),
        10,
        "three acks",
    )
    assert {ack["case_no"] for ack in terminal.acks[body["report_id"]]} == {first["case_no"]}
    assert gateway.cases() == [(body["report_id"], first["case_no"])]
    terminal.close()


def test_malformed_input_gets_its_reason(broker: Mosquitto, gateway: GatewayProcess) -> None:
    terminal = Terminal(broker.url, "tz-0003")
    unknown_class = envelope(class_code="0999")
    terminal.send(unknown_class)
    ack = terminal.wait_final(unknown_class["report_id"])
    assert ack["status"] == "rejected"
    assert ack["reason"]["code"] == "class.unknown"

    terminal.publish("cgt/v1/tz-0003/report", b"{not json")
    terminal.publish("cgt/v1/tz-0003/media/not-a-uuid/0", b"x")
    wait_until(lambda: (terminal.pump(), len(terminal.errors) >= 2)[1], 10, "two error notices")
    assert [error["reason"]["code"] for error in terminal.errors] == [
        "payload.not_json",
        "topic.media_id",
    ]
    assert gateway.cases() == []
    # ... and each was logged with its reason code, never the report's description
    rejections = [line for line in gateway.log_lines() if line.get("event") == "uplink.rejected"]
    assert {line["reason"] for line in rejections} == {
        "class.unknown",
        "payload.not_json",
        "topic.media_id",
    }
    assert all(line["device_id"] == "tz-0003" for line in rejections)
    assert "暴露垃圾" not in gateway.log_path.read_text()
    terminal.close()


def test_every_log_line_about_a_report_names_device_and_report(
    broker: Mosquitto, gateway: GatewayProcess
) -> None:
    terminal = Terminal(broker.url, "tz-0004")
    body = envelope()
    terminal.send(body)
    terminal.wait_final(body["report_id"])
    about = [line for line in gateway.log_lines() if line.get("report_id") == body["report_id"]]
    assert {line["event"] for line in about} >= {"report.registered"}
    assert all(line["device_id"] == "tz-0004" for line in about)
    terminal.close()


def test_incomplete_upload_resumes_with_only_the_missing_chunks(
    broker: Mosquitto, gateway: GatewayProcess
) -> None:
    terminal = Terminal(broker.url, "tz-0005")
    photo = photo_upload(size=(640, 480), chunk_bytes=65536)
    assert len(photo.chunks) == 4
    body = envelope([photo])
    for seq in (0, 2):
        terminal.publish(photo.chunk_topic("tz-0005", seq), photo.chunks[seq])
    terminal.publish("cgt/v1/tz-0005/report", encode(body))
    wait_until(
        lambda: bool(terminal.pump() or terminal.acks.get(body["report_id"])), 10, "incomplete"
    )
    [incomplete] = terminal.acks[body["report_id"]]
    assert incomplete == {
        "report_id": body["report_id"],
        "status": "incomplete",
        "missing": {photo.media_id: [1, 3]},
    }
    for seq in incomplete["missing"][photo.media_id]:
        terminal.publish(photo.chunk_topic("tz-0005", seq), photo.chunks[seq])
    assert terminal.wait_final(body["report_id"])["status"] == "accepted"
    terminal.close()
