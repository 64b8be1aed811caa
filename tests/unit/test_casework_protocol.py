"""The casework protocol (gateway/protocols/casework.py): any topic and any bytes give a
command or a refusal with a stable code, never an exception; and the case desk
(gateway/runtime/case_desk.py) applies, answers and acknowledges in that order."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import logs
from gateway.cases.workflow import Action, RefusalCode
from gateway.errors import RetryableSinkError
from gateway.protocols import casework
from gateway.runtime.case_desk import CaseDesk
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.transports.mqtt import Received
from tests.clocks import NaturalHours
from tests.factories import normalized

ACCOUNT = "casework.desk"
TOPIC = casework.commands_topic(ACCOUNT)
CODES = set(casework.reason_text())
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def command(**fields: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "command_id": str(uuid.uuid4()),
        "case_no": "E010220261102000001",
        "action": "accept",
        "by": "张三",
    } | fields


def check(decoded: casework.CommandReceived | casework.CommandRefused) -> None:
    if isinstance(decoded, casework.CommandRefused):
        assert decoded.code in CODES, decoded
        reply = casework.reply_to(decoded)
        if decoded.account is not None:
            assert reply is not None
            assert reply[0] == casework.answers_topic(decoded.account)
            answer = orjson.loads(reply[1])
            assert answer["result"] == "refused"
            assert answer["reason"]["code"] == decoded.code
        else:
            assert reply is None
    else:
        assert isinstance(decoded.to_command(T0).action, Action)


@settings(max_examples=500)
@given(st.binary(max_size=2048))
def test_any_bytes_get_a_command_or_a_reason(payload: bytes) -> None:
    check(casework.decode_command(TOPIC, payload))


@settings(max_examples=300)
@given(st.text(max_size=200), st.binary(max_size=64))
def test_any_topic_gets_a_command_or_a_reason(topic: str, payload: bytes) -> None:
    check(casework.decode_command(topic, payload))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["v", "command_id", "case_no", "action", "units", "note", "by", "condition", "extra"]


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=9), st.booleans())
def test_any_json_object_gets_a_command_or_a_reason(fields: dict[str, Any], whole: bool) -> None:
    body = command() | fields if whole else fields
    # json, not orjson: big integers are JSON too.
    check(casework.decode_command(TOPIC, json.dumps(body, ensure_ascii=False).encode()))


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        (b"not json", "payload.not_json", None),
        (b"[1]", "payload.not_object", None),
        (b"x" * (casework.COMMAND_BYTES + 1), "payload.too_large", None),
        (orjson.dumps(command(v=2)), "field.invalid", "v"),
        (orjson.dumps(command(command_id="7")), "field.invalid", "command_id"),
        (orjson.dumps(command(case_no="E01/#")), "field.invalid", "case_no"),
        (orjson.dumps(command(units="环卫处")), "field.invalid", "units"),
        (orjson.dumps(command(by="")), "field.invalid", "by"),
        (orjson.dumps(command(colour="red")), "field.unknown", "colour"),
        (orjson.dumps(command(action="approve")), "case.action_unknown", "action"),
        (orjson.dumps({k: v for k, v in command().items() if k != "by"}), "field.missing", "by"),
    ],
)
def test_malformed_commands_get_their_reason(payload: bytes, code: str, field: str | None) -> None:
    refused = casework.decode_command(TOPIC, payload)
    assert isinstance(refused, casework.CommandRefused)
    assert (refused.code, refused.field, refused.account) == (code, field, ACCOUNT)


def test_the_ids_of_a_malformed_command_come_back_with_its_answer() -> None:
    body = command(action="approve")
    refused = casework.decode_command(TOPIC, orjson.dumps(body))
    assert isinstance(refused, casework.CommandRefused)
    reply = casework.reply_to(refused)
    assert reply is not None
    answer = orjson.loads(reply[1])
    assert (answer["command_id"], answer["case_no"]) == (body["command_id"], body["case_no"])


@pytest.mark.parametrize(
    "topic",
    [
        "cgt/v1/cases/commands/tz-1",  # a device id: not an account
        "cgt/v1/cases/commands/casework.",
        "cgt/v1/cases/commands/casework.Desk",
        "cgt/v1/cases/commands/casework.desk/x",
        "cgt/v1/cases/answers/casework.desk",
        "cgt/v1/tz-1/report",
    ],
)
def test_topics_outside_the_grammar_have_nobody_to_answer(topic: str) -> None:
    refused = casework.decode_command(topic, orjson.dumps(command()))
    assert isinstance(refused, casework.CommandRefused)
    assert (refused.code, refused.account) == ("topic.malformed", None)
    assert casework.reply_to(refused) is None


def test_a_command_becomes_the_workflows_with_the_gateways_clock_and_channel() -> None:
    body = command(action="dispatch", units=["环卫处"], condition="一般", note="请处理")
    body["command_id"] = body["command_id"].upper()
    received = casework.decode_command(TOPIC, orjson.dumps(body))
    assert isinstance(received, casework.CommandReceived)
    made = received.to_command(T0)
    assert (made.action, made.at, made.via, made.by) == (
        Action.DISPATCH,
        T0,
        "mqtt:casework.desk",
        "张三",
    )
    assert (made.units, made.condition, made.note) == (("环卫处",), "一般", "请处理")
    assert made.command_id == body["command_id"].lower()


# ---- the desk, on a real SQLite registry --------------------------------------------------


class FakeLink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def ack(self, message: Received) -> None:
        self.calls.append(("ack", message.mid))

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.calls.append(("publish", (topic, orjson.loads(payload))))


class FailingOnce:
    """A registry whose first `act` fails as a down PostgreSQL would."""

    def __init__(self, inner: SqliteRegistry) -> None:
        self.inner = inner
        self.failed = False

    def act(self, *args: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise RetryableSinkError("registry down")
        return self.inner.act(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def registry(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "registry.db", ZoneInfo("Asia/Shanghai"))


def a_case(registry: SqliteRegistry) -> str:
    (case_no,) = registry.register([normalized(received_at=T0.isoformat())])
    assert isinstance(case_no, str)
    return case_no


def message(body: dict[str, Any], mid: int = 1, topic: str = TOPIC) -> Received:
    return Received(topic, orjson.dumps(body), mid, 1, 1)


def test_the_desk_applies_then_acks_then_answers(registry: SqliteRegistry) -> None:
    case_no = a_case(registry)
    link = FakeLink()
    desk = CaseDesk(registry, NaturalHours(), link, logs.get("test"), now=lambda: T0)
    accept = command(case_no=case_no)
    assert desk.handle(message(accept, 1))
    assert link.calls[0] == ("ack", 1)
    topic, answer = link.calls[1][1]
    assert topic == "cgt/v1/cases/answers/casework.desk"
    assert answer == {
        "v": 1, "command_id": accept["command_id"], "case_no": case_no, "result": "applied",
        "reason": None, "state": "accepted", "seq": 1, "deadline_at": None,
    }  # fmt: skip
    assert desk.handle(message(accept, 2))  # sent again: the same step, not a second one
    assert link.calls[3][1][1]["result"] == "repeated"
    life = registry.life(case_no)
    assert life is not None
    assert life.seq == 1

    close = command(case_no=case_no, action="close")
    assert desk.handle(message(close, 3))
    refused = link.calls[5][1][1]
    assert refused["result"] == "refused"
    assert refused["reason"]["code"] == RefusalCode.ILLEGAL.value
    assert (refused["state"], refused["seq"]) == ("accepted", 1)
    unknown = command(case_no="E010220261102999999")
    assert desk.handle(message(unknown, 4))
    assert link.calls[7][1][1]["reason"]["code"] == "case.unknown"
    [(_, event)] = registry.unpublished_events(10)
    assert (event.via, event.by, event.at) == ("mqtt:casework.desk", "张三", T0)
    registry.close()


def test_a_registry_failure_leaves_the_command_unacknowledged(registry: SqliteRegistry) -> None:
    case_no = a_case(registry)
    link = FakeLink()
    failing: Any = FailingOnce(registry)
    desk = CaseDesk(failing, NaturalHours(), link, logs.get("test"), now=lambda: T0)
    body = message(command(case_no=case_no))
    assert not desk.handle(body)
    assert link.calls == []  # no ack, no answer: the broker keeps it
    assert desk.handle(body)
    assert [kind for kind, _ in link.calls] == ["ack", "publish"]
    registry.close()


def test_a_malformed_command_is_acked_and_answered_or_only_logged(registry: SqliteRegistry) -> None:
    link = FakeLink()
    desk = CaseDesk(registry, NaturalHours(), link, logs.get("test"))
    assert desk.handle(Received(TOPIC, b"{", 5, 1, 1))
    assert link.calls[0] == ("ack", 5)
    assert link.calls[1][1][1]["reason"]["code"] == "payload.not_json"
    assert desk.handle(Received("cgt/v1/cases/commands/x y", b"{}", 6, 1, 1))
    assert link.calls[2:] == [("ack", 6)]
    registry.close()


def test_events_are_encoded_with_their_from_and_to(registry: SqliteRegistry) -> None:
    case_no = a_case(registry)
    desk = CaseDesk(registry, NaturalHours(), FakeLink(), logs.get("test"), now=lambda: T0)
    desk.handle(message(command(case_no=case_no, note="受理")))
    [(_, event)] = registry.unpublished_events(10)
    assert orjson.loads(casework.encode_event(event)) == {
        "v": 1, "case_no": case_no, "seq": 1, "action": "accept", "from": "reported",
        "to": "accepted", "at": "2026-11-02T01:00:00Z", "via": "mqtt:casework.desk",
        "by": "张三", "units": [], "note": "受理", "deadline_at": None,
    }  # fmt: skip
    assert casework.events_topic(case_no) == f"cgt/v1/cases/events/{case_no}"
    registry.close()
