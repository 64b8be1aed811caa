"""Replays and clocks against real Mosquitto and the real gateway process: a report sent
again, after it was accepted and after the gateway restarted (gently or killed), hears
its case number again and never makes a second case; a terminal clock years off is
flagged and the gateway judges the report by its own clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.harness.mosquitto import Mosquitto
from tests.factories import envelope, photo_upload
from tests.integration.helpers import GatewayProcess, Terminal, wait_until

pytestmark = pytest.mark.integration


def resend_and_wait(terminal: Terminal, body: dict[str, Any]) -> dict[str, Any]:
    """Send the report again and wait for the answer to this sending."""
    answered = len(terminal.acks.get(body["report_id"], []))
    terminal.send(body)
    wait_until(
        lambda: terminal.pump() or len(terminal.acks.get(body["report_id"], [])) > answered,
        20,
        "an answer to the report sent again",
    )
    ack: dict[str, Any] = terminal.acks[body["report_id"]][-1]
    return ack


def test_a_report_sent_again_after_restarts_hears_its_case_number_and_is_one_case(
    broker: Mosquitto, gateway: GatewayProcess
) -> None:
    terminal = Terminal(broker.url, "tz-0031")
    photo = photo_upload(size=(320, 240), chunk_bytes=8192)
    body = envelope([photo])
    terminal.send(body, [photo])
    first = terminal.wait_final(body["report_id"])
    assert first["status"] == "accepted"
    case_no = first["case_no"]

    assert resend_and_wait(terminal, body) == first  # still running: where it stands
    assert gateway.stop() == 0  # SIGTERM: a gentle restart
    gateway.start()
    assert resend_and_wait(terminal, body) == first
    gateway.kill()  # SIGKILL: nothing flushed on the way out
    gateway.start()
    assert resend_and_wait(terminal, body) == first
    terminal.send(body, [photo])  # and the whole upload once more, chunks and all
    wait_until(
        lambda: terminal.pump() or len(terminal.acks[body["report_id"]]) >= 5, 20, "fifth ack"
    )

    assert {ack.get("case_no") for ack in terminal.acks[body["report_id"]]} == {case_no}
    assert gateway.cases() == [(body["report_id"], case_no)]
    terminal.close()


def stored_report(gateway: GatewayProcess, report_id: str) -> dict[str, Any]:
    path = gateway.data_dir / "objects" / "reports" / report_id / "report.json"
    wait_until(path.exists, 20, f"{path} stored")
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_a_terminal_clock_years_off_is_flagged_and_the_gateways_clock_decides(
    broker: Mosquitto, gateway: GatewayProcess
) -> None:
    terminal = Terminal(broker.url, "tz-0032")
    terminal_tz = timezone(timedelta(hours=8))
    now = datetime.now(terminal_tz).replace(microsecond=0)
    ahead = envelope(created_at=(now + timedelta(days=400)).isoformat())
    behind = envelope(created_at=datetime(2000, 1, 1, 3, tzinfo=terminal_tz).isoformat())
    honest = envelope(created_at=now.isoformat())
    sent_at = datetime.now(UTC)
    for body in (ahead, behind, honest):
        terminal.send(body)
    answers = {
        body["report_id"]: terminal.wait_final(body["report_id"])
        for body in (ahead, behind, honest)
    }
    done_at = datetime.now(UTC)

    shanghai = ZoneInfo("Asia/Shanghai")
    for body, flags in ((ahead, ["clock.ahead"]), (behind, ["clock.behind"]), (honest, [])):
        document = stored_report(gateway, body["report_id"])
        assert document["clock"]["flags"] == flags
        assert document["reported_at"] == body["created_at"]  # kept as the terminal said
        received = datetime.fromisoformat(document["received_at"])
        assert sent_at - timedelta(seconds=1) <= received <= done_at  # the gateway's clock
        assert document["acceptance"]["inside_window"] == (
            8 <= received.astimezone(shanghai).hour < 18
        )
        case_day = received.astimezone(shanghai).strftime("%Y%m%d")
        assert answers[body["report_id"]]["case_no"][5:13] == case_day
    terminal.close()
