"""The case after acceptance, end to end on real servers: simulated terminals report, a
casework backend drives the cases over MQTT with its own account (a terminal's account
cannot), a terminal verifies a handled case on site, and then `gateway stats` and
`gateway bulletin` say what happened.

    firmware_sim ─report─▶ Mosquitto ─▶ gateway ─case no─▶ firmware_sim
    backend ─commands─▶ gateway (case desk) ─feedback─▶ verification task ─▶ firmware_sim
    firmware_sim ─verification report─▶ gateway ─▶ backend: pass, close
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from firmware_sim.fleet import FleetSettings, run_fleet
from firmware_sim.identity import Identity
from tests.commands import gateway
from tests.integration.helpers import (
    OperatorStack,
    Probe,
    casework_account,
    connected,
    operator_stack,
)
from tests.sim.conftest import SMALL_PHOTO

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
DEVICES = ("sim-0001", "sim-0002", "sim-0003")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[OperatorStack]:
    config = tmp_path / "gateway.toml"
    config.write_text("[pipeline]\ncase_events_poll_s = 0.2\n[tasks]\npoll_s = 0.2\n")
    with operator_stack(tmp_path, DEVICES, config=config) as running:
        yield running


def patrol(stack: OperatorStack, queue: Path, **run: Any) -> Any:
    """The three terminals on patrol, each logged in as itself."""
    settings = FleetSettings(
        broker=stack.broker.url, terminals=len(DEVICES), seed=16, queue_dir=queue,
        identity=Identity(username="{device_id}", passwords=stack.passwords),
        photo_size=SMALL_PHOTO, photo_pool=1, ack_timeout_s=10, task_travel_max_s=1,
        voice_share=0.0, **run,
    )  # fmt: skip
    return run_fleet(settings)


def test_reports_become_cases_that_backends_drive_to_their_end_and_statistics_agree(
    stack: OperatorStack, tmp_path: Path
) -> None:
    today = datetime.now(TZ).date()
    queue = tmp_path / "queue"
    first = patrol(stack, queue, reports_per_terminal=2)
    assert [outcome.status for outcome in first.outcomes] == ["accepted"] * 6
    cases = [outcome.case_no for outcome in first.outcomes]
    a, b, c, d, e, f = cases
    desk = connected(stack, "casework.desk", casework_account(stack, "desk"))

    def drive(case_no: str, *steps: tuple[str, dict[str, Any]]) -> None:
        for action, more in steps:
            answer = desk.ask(case_no, action, **more)
            assert answer["result"] == "applied", answer

    units = {"units": ["市容环卫处"]}
    drive(a, ("accept", {}), ("file", {}), ("dispatch", units), ("feedback", units))
    drive(b, ("refuse", {"note": "重复上报"}))
    drive(c, ("self-handled", {}))
    drive(d, ("accept", {}), ("file", {}), ("dispatch", {"units": ["城东中队"]}))
    drive(e, ("accept", {}), ("decline", {}))
    drive(f, ("accept", {}), ("file", {}), ("dispatch", units), ("return", units))

    # A terminal's account cannot drive a case: the broker refuses it, nothing changes.
    probe = Probe(stack.broker.url, DEVICES[0], stack.passwords[DEVICES[0]])
    assert probe.connack() == "Success"
    forged = {"v": 1, "command_id": "f0rged", "case_no": d, "action": "feedback", "by": "x",
              "units": ["城东中队"]}  # fmt: skip
    for topic in ("cgt/v1/cases/commands/casework.desk", f"cgt/v1/cases/commands/{DEVICES[0]}"):
        assert probe.publish(topic, json.dumps(forged).encode()) == "Not authorized"
    probe.close()

    # Case a was handled: the terminal that reported it gets a verification task and,
    # back on patrol, answers it from the place; the report is filed under the case.
    second = patrol(stack, queue, duration_s=8, reports_per_hour=1e-6)
    assert second.tasks == {"received": 1, "answered": 1}
    [verification] = second.outcomes
    assert (verification.status, verification.case_no) == ("accepted", a)
    filed = f"SELECT count(*) FROM verifications WHERE case_no = '{a}'"  # noqa: S608 - ours
    assert stack.gateway.count("registry.db", filed) == 1
    drive(a, ("pass", {}), ("close", {"note": "核查属实, 结案"}))
    shown = json.loads(
        gateway("case", d, "show", "--json", "--data-dir", str(stack.gateway.data_dir)).stdout
    )
    assert shown["state"] == "handling"  # the forged feedback changed nothing
    assert shown["light"] == "green"
    desk.close()

    # gateway stats: what happened, counted.
    window = ("--from", str(today - timedelta(days=1)), "--to", str(today + timedelta(days=1)))
    where = ("--data-dir", str(stack.gateway.data_dir))
    done = gateway("stats", *window, "--by", "unit", "--json", *where)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    total = stats["total"]
    assert {key: total[key] for key in (
        "reported", "accepted", "filed", "dispatched", "handled", "closed", "returned",
        "self_handled", "cancelled", "reworked", "extended", "suspended", "overdue",
    )} == {
        "reported": 6,      # a–f
        "accepted": 5,      # all but b (refused)
        "filed": 4,         # a, c (self-handled), d, f; e declined
        "dispatched": 3,    # a, d, f
        "handled": 2,       # a (feedback), c (self-handled)
        "closed": 2,        # a, c
        "returned": 1,      # f
        "self_handled": 1,  # c
        "cancelled": 0, "reworked": 0, "extended": 0, "suspended": 0,
        "overdue": 0,       # d runs within its limit
    }  # fmt: skip
    assert total["filing_rate"] == pytest.approx(4 / 5)  # filed / accepted
    assert total["closing_rate"] == 1.0  # closed 2 / due 2 (a and c handled; d not due)
    assert total["on_time_closing_rate"] == 1.0
    by_unit = {group["key"]: group for group in stats["groups"]}
    assert by_unit["市容环卫处"]["closed"] == 1  # a; f was returned and leads nowhere now
    assert by_unit["城东中队"]["dispatched"] == 1
    assert sum(group["reported"] for group in stats["groups"]) == 6

    inspectors = json.loads(gateway("stats", *window, "--by", "inspector", "--json", *where).stdout)
    verified = [g for g in inspectors["groups"] if g["on_time_verification_rate"] is not None]
    assert [g["on_time_verification_rate"] for g in verified] == [1.0]  # a's, answered at once

    # gateway bulletin: the same figures, in the month's bulletin.
    out = tmp_path / "bulletin.html"
    made = gateway("bulletin", "--month", today.strftime("%Y-%m"), "--out", str(out), *where)
    assert made.returncode == 0, made.stderr
    text = out.read_text("utf-8")
    assert "上报6件" in text
    assert "立案4件" in text
    assert "结案2件" in text
    assert "市容环卫处" in text
    assert "城东中队" in text
