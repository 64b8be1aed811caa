"""Casework backends drive the case lifecycle over MQTT, against the real Mosquitto set up
as an operator does (`gateway devices casework add`, `gateway broker-config`: the
project's password file and ACL) and the gateway on its SQLite registry:

    backend ─ cgt/v1/cases/commands/casework.desk ─▶ gateway ─ answers/casework.desk ─▶ backend
                                                         └──── events/{case_no} ─────▶ backends
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import envelope
from tests.integration.helpers import (
    OperatorStack,
    Probe,
    casework_account,
    connected,
    operator_stack,
    wait_until,
)

pytestmark = pytest.mark.integration

DESK = "casework.desk"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[OperatorStack]:
    config = tmp_path / "gateway.toml"
    config.write_text("[pipeline]\ncase_events_poll_s = 0.2\n")
    with operator_stack(tmp_path, ("tz-a",), config=config) as running:
        yield running


def test_a_backend_drives_a_case_over_mqtt_and_every_step_is_published(
    stack: OperatorStack,
) -> None:
    terminal = stack.terminal("tz-a")
    report = envelope()
    terminal.send(report)
    ack = terminal.wait_final(report["report_id"])
    assert ack["status"] == "accepted", ack
    case_no = ack["case_no"]
    desk = connected(stack, DESK, casework_account(stack, "desk"))
    dispatch_password = casework_account(stack, "dispatch")

    steps: list[tuple[str, dict[str, Any], str]] = [
        ("accept", {}, "accepted"),
        ("file", {"note": "属实"}, "filed"),
        ("dispatch", {"units": ["环卫处"]}, "handling"),
        ("feedback", {"units": ["环卫处"], "note": "已修复"}, "handled"),
    ]
    feedback_id = ""
    for seq, (action, more, state) in enumerate(steps, start=1):
        command_id = str(uuid.uuid4())
        answer = desk.ask(case_no, action, command_id, **more)
        assert (answer["result"], answer["state"], answer["seq"]) == ("applied", state, seq), answer
        assert answer["case_no"] == case_no
        feedback_id = command_id
    assert desk.answers[feedback_id]["deadline_at"] is not None  # dispatched: a deadline runs

    events = desk.wait_events(len(steps))
    assert {topic for topic, _ in events} == {f"cgt/v1/cases/events/{case_no}"}
    by_seq = {body["seq"]: body for _, body in events}
    assert [by_seq[seq]["to"] for seq in (1, 2, 3, 4)] == [state for *_, state in steps]
    dispatched = by_seq[3]
    assert (dispatched["from"], dispatched["action"], dispatched["units"]) == (
        "filed", "dispatch", ["环卫处"],
    )  # fmt: skip
    assert (dispatched["via"], dispatched["by"]) == ("mqtt:casework.desk", "王受理")
    assert dispatched["deadline_at"] is not None

    # An illegal step changes nothing and says why.
    illegal = desk.ask(case_no, "close")
    assert illegal["result"] == "refused"
    assert illegal["reason"]["code"] == "case.illegal_transition"
    assert (illegal["state"], illegal["seq"]) == ("handled", 4)
    # The same command again: `repeated`, and no second event.
    again = desk.ask(case_no, "feedback", feedback_id, units=["环卫处"], note="已修复")
    assert (again["result"], again["seq"], again["state"]) == ("repeated", 4, "handled")
    # A malformed one is answered with its code.
    desk.publish(f"cgt/v1/cases/commands/{DESK}", b"{not json")
    wait_until(lambda: desk.pump() or None in desk.answers, 20, "the answer to a malformed one")
    malformed = desk.answers[None]
    assert (malformed["result"], malformed["reason"]["code"]) == ("refused", "payload.not_json")

    # A terminal may not write commands, neither its own nor a backend's topic.
    probe = Probe(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    assert probe.connack() == "Success"
    forged = json.dumps({
        "v": 1, "command_id": str(uuid.uuid4()), "case_no": case_no, "action": "pass", "by": "x",
    }).encode()  # fmt: skip
    assert probe.publish("cgt/v1/cases/commands/tz-a", forged) == "Not authorized"
    assert probe.publish(f"cgt/v1/cases/commands/{DESK}", forged) == "Not authorized"
    assert probe.publish(f"cgt/v1/cases/events/{case_no}", b"{}") == "Not authorized"
    probe.close()
    # Nor may one backend write another's.
    impostor = Probe(stack.broker.url, "casework.dispatch", dispatch_password)
    assert impostor.connack() == "Success"
    assert impostor.publish(f"cgt/v1/cases/commands/{DESK}", forged) == "Not authorized"
    assert impostor.publish(f"cgt/v1/cases/answers/{DESK}", b"{}") == "Not authorized"
    impostor.close()

    # A last legal step, after the forgeries: once its event is in, theirs would have been.
    passed = desk.ask(case_no, "pass")
    assert (passed["result"], passed["state"], passed["seq"]) == ("applied", "verified", 5)
    events = desk.wait_events(5)
    time.sleep(0.6)  # three more rounds of the events thread: nothing further comes
    desk.pump()
    seqs = sorted(body["seq"] for _, body in desk.events)
    assert seqs == [1, 2, 3, 4, 5], seqs
    assert stack.gateway.count("registry.db", "SELECT count(*) FROM case_events") == 5
    assert (
        stack.gateway.count(
            "registry.db", "SELECT count(*) FROM case_events WHERE published_at IS NULL"
        )
        == 0
    )

    logged = [
        line for line in stack.gateway.log_lines() if line["event"].startswith("case.command")
    ]
    refused = {line["reason"] for line in logged if line["event"] == "case.command_refused"}
    assert refused == {"case.illegal_transition", "payload.not_json"}
    assert [line["event"] for line in logged].count("case.command_repeated") == 1
    desk.close()
    terminal.close()
