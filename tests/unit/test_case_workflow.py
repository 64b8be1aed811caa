"""The case lifecycle's state machine (pure): every legal step from every state, every
illegal one refused with its reason, and what each step keeps."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.cases.settings import CasesSettings
from gateway.cases.timekeeping import timekeeper
from gateway.cases.workflow import (
    FINAL,
    TRANSITIONS,
    Action,
    CaseEvent,
    CaseLife,
    Command,
    Refusal,
    RefusalCode,
    State,
    decide,
    parse_action,
)
from tests.clocks import NaturalHours

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
CLOCK = NaturalHours(hours=24)
# The city's Timekeeper measures lights (yellow at 80%, [cases] yellow_at's default).
CITY = timekeeper(CasesSettings(), ZoneInfo("Asia/Shanghai"))
UNITS = ("市容环卫处", "城东中队")


def life_in(state: State) -> CaseLife:
    """A case standing in `state`, with what the steps to it would have left."""
    life = CaseLife("E0102202611020000001", "event", "0102", state=state, seq=3)
    if state in (State.HANDLING, State.SUSPENDED, State.HANDLED, State.VERIFIED):
        life = dataclasses.replace(
            life,
            units=UNITS,
            time_limit="24 hours",
            started_at=T0,
            deadline_at=T0 + timedelta(hours=24),
            dispatched_at=T0,
        )
    if state is State.SUSPENDED:
        life = dataclasses.replace(
            life, paused_at=T0 + timedelta(hours=2), resume_to=State.HANDLING
        )
    if state in (State.HANDLED, State.VERIFIED):
        life = dataclasses.replace(life, handled_at=T0 + timedelta(hours=3), handled_on_time=True)
    return life


def command(action: Action, hours: float = 5, **more: object) -> Command:
    units = UNITS[:1] if action in (Action.DISPATCH, Action.RETURN, Action.FEEDBACK) else ()
    fields: dict[str, object] = {"units": units, "by": "张三"} | more
    return Command(
        case_no="E0102202611020000001",
        action=action,
        at=T0 + timedelta(hours=hours),
        via="test",
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("action", list(Action))
def test_every_step_from_every_state_is_taken_or_refused_by_the_table(
    state: State, action: Action
) -> None:
    sources, target = TRANSITIONS[action]
    outcome = decide(life_in(state), command(action), CLOCK)
    if state not in sources:
        assert isinstance(outcome, Refusal)
        assert outcome.code is RefusalCode.ILLEGAL
        assert f"cannot {action.value} a case that is {state.value}" in outcome.detail
        return
    assert not isinstance(outcome, Refusal), outcome
    life, event = outcome
    expected = target or State.HANDLING  # resume: back where it was suspended
    assert life.state is event.to_state is expected
    assert event.from_state is state
    assert life.seq == event.seq == 4
    assert event.action is action
    assert event.by == "张三"


def test_final_states_allow_nothing() -> None:
    for state in FINAL:
        refusal = decide(life_in(state), command(Action.CANCEL), CLOCK)
        assert isinstance(refusal, Refusal)
        assert "allowed: nothing, it is final" in refusal.detail


def test_dispatch_needs_a_unit_and_sets_the_deadline_from_the_limit() -> None:
    filed = life_in(State.FILED)
    refusal = decide(filed, command(Action.DISPATCH, units=()), CLOCK)
    assert isinstance(refusal, Refusal)
    assert refusal.code is RefusalCode.UNIT_REQUIRED
    outcome = decide(filed, command(Action.DISPATCH, units=UNITS, condition="紧急"), CLOCK)
    assert not isinstance(outcome, Refusal)
    life, event = outcome
    assert life.time_limit == "2 hours"  # NaturalHours: 紧急 is 24 h / 12
    assert life.deadline_at == T0 + timedelta(hours=5 + 2)
    assert event.deadline_at == life.deadline_at
    assert life.units == UNITS
    assert life.dispatched_at == T0 + timedelta(hours=5)


def test_an_unknown_condition_is_refused() -> None:
    refusal = decide(life_in(State.ACCEPTED), command(Action.FILE, condition="随便"), CLOCK)
    assert isinstance(refusal, Refusal)
    assert refusal.code is RefusalCode.CONDITION_UNKNOWN


def test_only_a_dispatched_unit_may_give_feedback_or_return_the_case() -> None:
    handling = life_in(State.HANDLING)
    for action in (Action.FEEDBACK, Action.RETURN, Action.EXTEND):
        refusal = decide(handling, command(action, units=("园林处",)), CLOCK)
        assert isinstance(refusal, Refusal)
        assert refusal.code is RefusalCode.UNIT_NOT_DISPATCHED
        assert "园林处" in refusal.detail


def test_feedback_is_on_time_until_the_deadline_and_closing_keeps_that() -> None:
    handling = life_in(State.HANDLING)
    on_time = decide(handling, command(Action.FEEDBACK, hours=24), CLOCK)
    late = decide(handling, command(Action.FEEDBACK, hours=24.01), CLOCK)
    assert not isinstance(on_time, Refusal)
    assert not isinstance(late, Refusal)
    assert on_time[0].handled_on_time is True
    assert late[0].handled_on_time is False
    verified = dataclasses.replace(late[0], state=State.VERIFIED)
    closed = decide(verified, command(Action.CLOSE, hours=30), CLOCK)
    assert not isinstance(closed, Refusal)
    assert closed[0].closed_on_time is False
    assert closed[0].closed_at == T0 + timedelta(hours=30)


def test_a_failed_check_sends_the_case_back_to_its_units_with_a_fresh_limit() -> None:
    outcome = decide(life_in(State.HANDLED), command(Action.FAIL, hours=10), CLOCK)
    assert not isinstance(outcome, Refusal)
    life, event = outcome
    assert life.state is State.HANDLING
    assert life.units == UNITS
    assert life.reworks == 1
    assert life.handled_at is None
    assert life.handled_on_time is None
    assert life.deadline_at == T0 + timedelta(hours=10 + 24)
    assert event.units == UNITS


def test_a_return_sends_the_case_back_to_dispatch_and_counts() -> None:
    outcome = decide(life_in(State.HANDLING), command(Action.RETURN), CLOCK)
    assert not isinstance(outcome, Refusal)
    life, _ = outcome
    assert life.state is State.FILED
    assert (life.units, life.deadline_at, life.returns) == ((), None, 1)
    again = decide(life, command(Action.DISPATCH, units=("园林处",)), CLOCK)  # 改派
    assert not isinstance(again, Refusal)
    assert again[0].units == ("园林处",)
    assert again[0].dispatched_at == T0  # the first dispatch is kept


def test_an_extension_grants_the_limit_once_more_from_the_deadline() -> None:
    outcome = decide(life_in(State.HANDLING), command(Action.EXTEND), CLOCK)
    assert not isinstance(outcome, Refusal)
    assert outcome[0].deadline_at == T0 + timedelta(hours=48)
    assert outcome[0].extensions == 1


def test_a_suspension_pauses_the_clock_and_resuming_moves_the_deadline_on() -> None:
    handling = life_in(State.HANDLING)
    suspended = decide(handling, command(Action.SUSPEND, hours=2), CLOCK)
    assert not isinstance(suspended, Refusal)
    paused = suspended[0]
    assert (paused.state, paused.resume_to, paused.suspensions) == (
        State.SUSPENDED,
        State.HANDLING,
        1,
    )
    # While suspended the light stands still, however late it gets.
    assert CITY.light(paused, T0 + timedelta(days=10)) == "green"
    resumed = decide(paused, command(Action.RESUME, hours=12), CLOCK)
    assert not isinstance(resumed, Refusal)
    life = resumed[0]
    assert life.state is State.HANDLING
    assert life.deadline_at == T0 + timedelta(hours=24 + 10)
    assert life.started_at == T0 + timedelta(hours=10)
    assert life.paused_at is None


def test_a_suspended_filed_case_resumes_to_dispatch() -> None:
    suspended = decide(life_in(State.FILED), command(Action.SUSPEND), CLOCK)
    assert not isinstance(suspended, Refusal)
    resumed = decide(suspended[0], command(Action.RESUME, hours=9), CLOCK)
    assert not isinstance(resumed, Refusal)
    assert resumed[0].state is State.FILED
    assert resumed[0].deadline_at is None


def test_self_handled_counts_as_accepted_filed_handled_and_closed_on_time() -> None:
    outcome = decide(life_in(State.REPORTED), command(Action.SELF_HANDLED), CLOCK)
    assert not isinstance(outcome, Refusal)
    life = outcome[0]
    at = T0 + timedelta(hours=5)
    assert life.state is State.CLOSED
    assert (life.accepted_at, life.filed_at, life.handled_at, life.closed_at) == (at,) * 4
    assert life.self_handled
    assert life.handled_on_time
    assert life.closed_on_time


def test_the_light_turns_yellow_at_80_percent_and_red_past_the_deadline() -> None:
    handling = life_in(State.HANDLING)  # 24 natural hours from T0
    assert CITY.light(handling, T0 + timedelta(hours=19)) == "green"
    assert CITY.light(handling, T0 + timedelta(hours=19.2)) == "yellow"
    assert CITY.light(handling, T0 + timedelta(hours=24)) == "yellow"
    assert CITY.light(handling, T0 + timedelta(hours=24.01)) == "red"
    assert CITY.light(life_in(State.FILED), T0) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [({"note": "x" * 501}, "note"), ({"by": ""}, "by"), ({"units": ("",)}, "unit"),
     ({"units": ("环卫处", "环卫处")}, "unit")],
)  # fmt: skip
def test_fields_too_long_or_empty_are_refused(change: dict[str, object], field: str) -> None:
    refusal = decide(life_in(State.FILED), command(Action.DISPATCH, 5, **change), CLOCK)
    assert isinstance(refusal, Refusal)
    assert refusal.code is RefusalCode.FIELD_INVALID
    assert refusal.detail.startswith(field)


def test_an_unknown_action_is_named_with_the_known_ones() -> None:
    assert parse_action("dispatch") is Action.DISPATCH
    refusal = parse_action("teleport")
    assert isinstance(refusal, Refusal)
    assert refusal.code is RefusalCode.ACTION_UNKNOWN
    assert "self-handled" in refusal.detail


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Action)), st.sampled_from([(), UNITS[:1], UNITS])),
        max_size=30,
    )
)
def test_any_sequence_of_commands_keeps_the_lifecycle_consistent(
    steps: list[tuple[Action, tuple[str, ...]]],
) -> None:
    life = CaseLife("E0102202611020000001", "event", "0102")
    events: list[CaseEvent] = []
    for hour, (action, units) in enumerate(steps):
        outcome = decide(life, command(action, hours=hour, units=units), CLOCK)
        if isinstance(outcome, Refusal):
            continue
        assert outcome[1].from_state is life.state
        life, event = outcome
        events.append(event)
        if life.state in (State.HANDLING, State.SUSPENDED, State.HANDLED, State.VERIFIED):
            assert life.units
            assert life.deadline_at is not None
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert life.seq == len(events)
    for earlier, later in itertools.pairwise(events):
        assert later.from_state is earlier.to_state
        assert earlier.to_state not in FINAL
    assert life.closed_at is not None or life.state is not State.CLOSED
