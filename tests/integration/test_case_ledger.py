"""A case's lifecycle kept by both registries (SQLite and a real PostgreSQL): steps under
the case's lock, the history, idempotent commands, overdue cases, events to publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.cases.workflow import Action, Command, Refusal, RefusalCode, State
from gateway.sinks.case_ledger import Applied
from tests.clocks import NaturalHours
from tests.factories import normalized, placed

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
CLOCK = NaturalHours(hours=24)


def a_case(registry: Any, **placing: Any) -> str:
    report = placed(normalized(received_at=T0.isoformat()), district="崇川区", **placing)
    (case_no,) = registry.register([report])
    return str(case_no)


def step(registry: Any, case_no: str, action: str, hours: float = 0, **more: Any) -> Any:
    command = Command(
        case_no=case_no,
        action=Action(action),
        at=T0 + timedelta(hours=hours),
        via="test",
        by="张三",
        **more,
    )
    return registry.act(command, CLOCK)


def test_a_case_goes_from_report_to_closing_and_its_history_says_how(registry: Any) -> None:
    case_no = a_case(registry)
    life = registry.life(case_no)
    assert life.state is State.REPORTED
    assert life.seq == 0
    steps: list[tuple[str, float, dict[str, Any]]] = [
        ("accept", 0.1, {}),
        ("file", 0.2, {"condition": "一般"}),
        ("dispatch", 0.3, {"units": ("环卫处", "城东中队")}),
        ("feedback", 10, {"units": ("环卫处",), "note": "已清理"}),
        ("pass", 12, {}),
        ("close", 13, {}),
    ]
    for action, hours, more in steps:
        done = step(registry, case_no, action, hours, **more)
        assert isinstance(done, Applied), done
    life = registry.life(case_no)
    assert life.state is State.CLOSED
    assert life.units == ("环卫处", "城东中队")
    assert life.time_limit == "24 hours"
    assert life.deadline_at == T0 + timedelta(hours=24.3)
    assert life.handled_on_time is True
    assert life.closed_on_time is True
    assert life.closed_at == T0 + timedelta(hours=13)
    events = registry.history(case_no)
    assert [event.action for event in events] == [
        Action.ACCEPT, Action.FILE, Action.DISPATCH, Action.FEEDBACK, Action.PASS, Action.CLOSE
    ]  # fmt: skip
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    assert events[3].units == ("环卫处",)
    assert events[3].note == "已清理"
    assert events[3].by == "张三"
    assert events[2].deadline_at == T0 + timedelta(hours=24.3)


def test_an_illegal_step_is_refused_and_changes_nothing(registry: Any) -> None:
    case_no = a_case(registry)
    refused = step(registry, case_no, "dispatch", units=("环卫处",))
    assert isinstance(refused, Refusal)
    assert refused.code is RefusalCode.ILLEGAL
    assert "reported" in refused.detail
    assert registry.life(case_no).state is State.REPORTED
    assert registry.history(case_no) == []
    unknown = step(registry, "E0102202611020099999", "accept")
    assert isinstance(unknown, Refusal)
    assert unknown.code is RefusalCode.CASE_UNKNOWN


def test_a_command_sent_twice_is_applied_once(registry: Any) -> None:
    case_no = a_case(registry)
    first = step(registry, case_no, "accept", command_id="cmd-1")
    again = step(registry, case_no, "accept", 1, command_id="cmd-1")
    assert isinstance(first, Applied)
    assert isinstance(again, Applied)
    assert again.repeated
    assert again.event == first.event
    assert len(registry.history(case_no)) == 1
    reused = step(registry, case_no, "file", command_id="cmd-1")
    assert isinstance(reused, Refusal)
    assert reused.code is RefusalCode.COMMAND_REUSED


def test_overdue_cases_are_those_handling_past_their_deadline(registry: Any) -> None:
    late, paused, done = (a_case(registry) for _ in range(3))
    for case_no in (late, paused, done):
        for action, units in [("accept", ()), ("file", ()), ("dispatch", ("环卫处",))]:
            assert isinstance(step(registry, case_no, action, units=units), Applied)
    assert isinstance(step(registry, paused, "suspend", 1), Applied)
    assert isinstance(step(registry, done, "feedback", 2), Applied)
    listed = registry.overdue(T0 + timedelta(hours=30), 10)
    assert [case.case_no for case in listed] == [late]
    assert listed[0].units == ("环卫处",)
    assert registry.overdue(T0 + timedelta(hours=10), 10) == []
    # Resumed 5 hours later: its deadline moved on by the 5 hours paused.
    assert isinstance(step(registry, paused, "resume", 6), Applied)
    assert registry.life(paused).deadline_at == T0 + timedelta(hours=29)


def test_events_wait_for_publication_until_marked(registry: Any) -> None:
    case_no = a_case(registry)
    step(registry, case_no, "accept")
    assert isinstance(step(registry, case_no, "refuse"), Refusal)  # accepted: no event
    step(registry, case_no, "self-handled", 0.5)
    waiting = registry.unpublished_events(10)
    assert [event.action for _, event in waiting] == [Action.ACCEPT, Action.SELF_HANDLED]
    assert waiting[1][1].to_state is State.CLOSED
    registry.mark_events_published([waiting[0][0]])
    assert [event_id for event_id, _ in registry.unpublished_events(10)] == [waiting[1][0]]
    life = registry.life(case_no)
    assert life.self_handled
    assert life.closed_on_time


def test_feedback_sends_the_case_back_to_its_inspector_for_verification(registry: Any) -> None:
    case_no = a_case(registry)
    for action, hours, units in [
        ("accept", 0, ()),
        ("file", 0, ()),
        ("dispatch", 1, ("环卫处",)),
        ("feedback", 5, ("环卫处",)),
    ]:
        assert isinstance(step(registry, case_no, action, hours, units=units), Applied)
    again = step(registry, case_no, "feedback", 6, units=("环卫处",))
    assert isinstance(again, Refusal)  # handled already: no second task either
    (task,) = registry.tasks(case_no=case_no)
    report = registry.get_case(case_no).report
    assert task.device_id == report.reporter.device_id
    assert task.task.kind == "verify"
    assert task.task.deadline == T0 + timedelta(hours=5 + 4)  # NaturalHours: 4 h to verify
    assert task.task.note.startswith("核查: 环卫处")
    assert task.sent_at is None  # the gateway's task dispatcher publishes it
