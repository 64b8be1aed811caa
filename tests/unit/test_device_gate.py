"""The intake's identity check: open mode without a registry, then only active devices."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from gateway import logs
from gateway.devices import gate as gate_module
from gateway.devices.device_registry import DeviceRegistry
from gateway.devices.gate import DeviceGate
from gateway.devices.passwords import hash_password
from gateway.normalize.codes import CodeProfile
from gateway.runtime.intake import Intake
from gateway.store.db import sqlite_file
from gateway.store.inbox import Inbox
from gateway.store.outbox import Outbox
from tests.factories import encode, envelope, random_upload
from tests.unit.conftest import Feeder


@pytest.fixture
def registry(tmp_path: Path) -> DeviceRegistry:
    registry = DeviceRegistry(tmp_path / "devices.db")
    registry.add("tz-1", "INS-1", "崇川区", hash_password("x"))
    registry.add("tz-2", "INS-2", "崇川区", hash_password("y"))
    registry.move("tz-2", "suspend")
    return registry


@pytest.fixture
def gated(registry: DeviceRegistry, inbox: Inbox, outbox: Outbox, profile: CodeProfile) -> Feeder:
    gate = DeviceGate(sqlite_file(registry.path), logs.get("test"))
    return Feeder(Intake(inbox, outbox, profile, logs.get("test"), gate=gate))


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("cgt_rejected_total", {"reason": reason}) or 0.0


def stored(inbox: Inbox) -> int:
    return int(inbox.conn.execute("SELECT count(*) FROM reports").fetchone()[0])


def test_without_a_registry_every_device_is_taken_and_it_is_said_once(tmp_path: Path) -> None:
    with capture_logs() as logged:
        gate = DeviceGate(tmp_path / "devices.db", logs.get("test"))
        gate.refresh(force=True)
    assert [line["event"] for line in logged] == ["devices.open_mode"]
    assert logged[0]["log_level"] == "warning"
    assert gate.refusal("anyone") is None
    assert not (tmp_path / "devices.db").exists()  # the gate never makes one


def test_the_first_device_added_turns_the_check_on(tmp_path: Path) -> None:
    gate = DeviceGate(tmp_path / "devices.db", logs.get("test"))
    registry = DeviceRegistry(tmp_path / "devices.db")
    registry.add("tz-1", "INS-1", "崇川区", hash_password("x"))
    with capture_logs() as logged:
        gate.refresh(force=True)
    assert [line["event"] for line in logged] == ["devices.enforcing"]
    assert gate.refusal("tz-1") is None
    assert gate.refusal("tz-9") == "device.unknown"


def test_a_revoke_is_seen_within_the_refresh_interval(
    registry: DeviceRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = DeviceGate(sqlite_file(registry.path), logs.get("test"))
    assert gate.refusal("tz-1") is None
    registry.move("tz-1", "revoke")
    gate.refresh()  # within the second: the cached status stands
    assert gate.refusal("tz-1") is None
    monkeypatch.setattr(gate_module, "REFRESH_S", 0.0)
    gate.refresh()
    assert gate.refusal("tz-1") == "device.revoked"
    assert gate.refusal("tz-2") == "device.suspended"


def test_reports_of_unknown_and_suspended_devices_are_refused_and_not_stored(
    gated: Feeder, inbox: Inbox
) -> None:
    before = {code: rejected(code) for code in ("device.unknown", "device.suspended")}
    for device_id, code in (("tz-9", "device.unknown"), ("tz-2", "device.suspended")):
        body = envelope()
        answers = gated((f"cgt/v1/{device_id}/report", encode(body)))
        assert answers == [
            (
                f"cgt/v1/{device_id}/ack",
                {
                    "report_id": body["report_id"],
                    "status": "rejected",
                    "reason": {"code": code, "message": answers[0][1]["reason"]["message"]},
                },
            )
        ]
        assert rejected(code) == before[code] + 1
    assert stored(inbox) == 0
    ok = envelope()
    assert gated(("cgt/v1/tz-1/report", encode(ok))) == []
    assert stored(inbox) == 1


def test_chunks_status_and_tracks_of_an_unknown_device_are_refused(
    gated: Feeder, inbox: Inbox
) -> None:
    upload = random_upload(100, 1024)
    answers = gated(
        (upload.chunk_topic("tz-9", 0), upload.chunks[0]),
        ("cgt/v1/tz-9/status", b'{"online": true}'),
        ("cgt/v1/tz-9/track", b'{"fixes": [{"lat": 32.01, "lon": 120.85}]}'),
    )
    assert [(topic, body["reason"]["code"]) for topic, body in answers] == [
        ("cgt/v1/tz-9/error", "device.unknown")
    ] * 3
    assert answers[0][1]["media_id"] == upload.media_id
    assert inbox.conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    for table in ("device_status", "track"):
        assert inbox.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0  # noqa: S608


def test_an_envelope_claiming_another_device_is_refused(gated: Feeder, inbox: Inbox) -> None:
    """The topic's device is registered and active; the envelope says it is another."""
    before = rejected("envelope.device_mismatch")
    body = envelope() | {"device_id": "tz-2"}
    answers = gated(("cgt/v1/tz-1/report", encode(body)))
    assert answers[0][1]["reason"]["code"] == "envelope.device_mismatch"
    assert rejected("envelope.device_mismatch") == before + 1
    assert stored(inbox) == 0


def test_last_seen_is_written_for_active_devices(
    registry: DeviceRegistry, inbox: Inbox, outbox: Outbox, profile: CodeProfile
) -> None:
    gate = DeviceGate(sqlite_file(registry.path), logs.get("test"))
    feed = Feeder(Intake(inbox, outbox, profile, logs.get("test"), gate=gate))
    feed(("cgt/v1/tz-1/report", encode(envelope())))
    gate.close()
    assert registry.require("tz-1").last_seen_at == "2026-11-28T01:15:03.250000+00:00"
    assert registry.require("tz-2").last_seen_at is None
