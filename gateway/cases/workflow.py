"""A case's lifecycle after acceptance, as one explicit state machine (pure: no clock, no I/O).

The terms are those of GB/T 30428.8-2020 (立案、处置和结案; successor of CJ/T 315-2009) and
of the platforms cities run:

    上报 reported ─accept→ 受理 accepted ─file→ 立案 filed ─dispatch→ 处置中 handling
      ├refuse→ 不予受理 (final)     └decline→ 不予立案 (final)
      └self-handled→ 结案 closed (自处置; also from accepted)
    处置中 handling ─feedback→ 处置反馈 handled ─pass→ 核查通过 verified ─close→ 结案 closed
      ├return→ 立案 filed (回退; dispatched again: 改派)      └fail→ 处置中 (返工, same units)
      ├extend→ 处置中 (延期: the limit granted once more)
      └suspend→ 挂账 suspended ─resume→ where it was (also from filed; the clock paused)
    cancel (作废): from filed, handling, suspended, handled or verified → cancelled (final)

`decide` takes a case's lifecycle (`CaseLife`) and a command, and gives either the case's
next lifecycle with the event to record, or a `Refusal` with a stable reason code. The
registries (SQLite, PostgreSQL) read the lifecycle under a lock, call `decide`, and write
both back in the same transaction; they spell no state or rule of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol

NOTE_MAX: Final = 500
UNIT_MAX: Final = 100
BY_MAX: Final = 100


class State(StrEnum):
    REPORTED = "reported"  # 上报: registered by the gateway, awaiting the acceptance desk
    ACCEPTED = "accepted"  # 受理
    REFUSED = "refused"  # 不予受理 (final)
    FILED = "filed"  # 立案: awaiting dispatch (again after a 回退)
    DECLINED = "declined"  # 不予立案 (final)
    HANDLING = "handling"  # 处置中: dispatched to its units, the clock running
    SUSPENDED = "suspended"  # 挂账/缓办: the clock paused
    HANDLED = "handled"  # 处置反馈: the units reported it done, awaiting verification
    VERIFIED = "verified"  # 核查通过: awaiting the shift leader's closing
    CLOSED = "closed"  # 结案 (final)
    CANCELLED = "cancelled"  # 作废 (final)


class Action(StrEnum):
    ACCEPT = "accept"  # 受理
    REFUSE = "refuse"  # 不予受理
    FILE = "file"  # 立案
    DECLINE = "decline"  # 不予立案
    DISPATCH = "dispatch"  # 派遣 (改派 after a return)
    RETURN = "return"  # 回退: a unit says it was sent wrongly
    EXTEND = "extend"  # 延期 (approved)
    SUSPEND = "suspend"  # 挂账/缓办
    RESUME = "resume"  # 恢复
    FEEDBACK = "feedback"  # 处置反馈
    PASS = "pass"  # 核查通过  # noqa: S105 - not a password
    FAIL = "fail"  # 核查不通过: 返工 to the same units
    CLOSE = "close"  # 结案
    CANCEL = "cancel"  # 作废 (approved)
    SELF_HANDLED = "self-handled"  # 自处置: the inspector fixed it on the spot


STATE_ZH: Final[Mapping[State, str]] = {
    State.REPORTED: "上报",
    State.ACCEPTED: "受理",
    State.REFUSED: "不予受理",
    State.FILED: "立案",
    State.DECLINED: "不予立案",
    State.HANDLING: "处置中",
    State.SUSPENDED: "挂账",
    State.HANDLED: "处置反馈",
    State.VERIFIED: "核查通过",
    State.CLOSED: "结案",
    State.CANCELLED: "作废",
}

ACTION_ZH: Final[Mapping[Action, str]] = {
    Action.ACCEPT: "受理",
    Action.REFUSE: "不予受理",
    Action.FILE: "立案",
    Action.DECLINE: "不予立案",
    Action.DISPATCH: "派遣",
    Action.RETURN: "回退",
    Action.EXTEND: "延期",
    Action.SUSPEND: "挂账",
    Action.RESUME: "恢复",
    Action.FEEDBACK: "处置反馈",
    Action.PASS: "核查通过",
    Action.FAIL: "返工",
    Action.CLOSE: "结案",
    Action.CANCEL: "作废",
    Action.SELF_HANDLED: "自处置",
}

FINAL: Final = frozenset({State.REFUSED, State.DECLINED, State.CLOSED, State.CANCELLED})

# action → (the states it may start from, the state it leads to; None: see `decide`).
TRANSITIONS: Final[Mapping[Action, tuple[frozenset[State], State | None]]] = {
    Action.ACCEPT: (frozenset({State.REPORTED}), State.ACCEPTED),
    Action.REFUSE: (frozenset({State.REPORTED}), State.REFUSED),
    Action.FILE: (frozenset({State.ACCEPTED}), State.FILED),
    Action.DECLINE: (frozenset({State.ACCEPTED}), State.DECLINED),
    Action.DISPATCH: (frozenset({State.FILED}), State.HANDLING),
    Action.RETURN: (frozenset({State.HANDLING}), State.FILED),
    Action.EXTEND: (frozenset({State.HANDLING}), State.HANDLING),
    Action.SUSPEND: (frozenset({State.FILED, State.HANDLING}), State.SUSPENDED),
    Action.RESUME: (frozenset({State.SUSPENDED}), None),  # back where it was suspended
    Action.FEEDBACK: (frozenset({State.HANDLING}), State.HANDLED),
    Action.PASS: (frozenset({State.HANDLED}), State.VERIFIED),
    Action.FAIL: (frozenset({State.HANDLED}), State.HANDLING),
    Action.CLOSE: (frozenset({State.VERIFIED}), State.CLOSED),
    Action.CANCEL: (
        frozenset({State.FILED, State.HANDLING, State.SUSPENDED, State.HANDLED, State.VERIFIED}),
        State.CANCELLED,
    ),
    Action.SELF_HANDLED: (frozenset({State.REPORTED, State.ACCEPTED}), State.CLOSED),
}


class RefusalCode(StrEnum):
    """Stable codes for a command that changes nothing; backends branch on them."""

    CASE_UNKNOWN = "case.unknown"
    ACTION_UNKNOWN = "case.action_unknown"
    ILLEGAL = "case.illegal_transition"
    UNIT_REQUIRED = "case.unit_required"
    UNIT_NOT_DISPATCHED = "case.unit_not_dispatched"
    CONDITION_UNKNOWN = "case.condition_unknown"
    FIELD_INVALID = "case.field_invalid"
    COMMAND_REUSED = "case.command_id_reused"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    detail: str


class Timekeeper(Protocol):
    """Deadlines in a city's time: its limit table and its working calendar
    (`gateway/cases/timekeeping.py`)."""

    def limit_for(self, kind: str, class_code: str, condition: str | None) -> str:
        """The handling time limit for the class under the filing condition, as text
        that `deadline` takes (e.g. "1 working day")."""

    def conditions(self, kind: str, class_code: str) -> list[str]:
        """The filing conditions the limit table knows for the class (the default first)."""

    def deadline(self, start: datetime, limit: str) -> datetime: ...

    def shifted(
        self, deadline: datetime, paused: datetime, resumed: datetime, limit: str
    ) -> datetime:
        """The deadline pushed on by the time paused, counted on the limit's own clock."""

    def verify_deadline(self, handled_at: datetime) -> datetime:
        """When the on-site check (核查) of a case handled at `handled_at` falls due."""

    def light(self, life: CaseLife, now: datetime) -> str | None:
        """green / yellow / red by the share of its limit used on the limit's own clock,
        measured at `life.measured_at(now)`; None when no deadline runs."""


@dataclass(frozen=True, slots=True)
class CaseLife:
    """What the registry keeps of a case's lifecycle, beside its report."""

    case_no: str
    kind: str  # component | event
    class_code: str
    state: State = State.REPORTED
    seq: int = 0  # transitions so far
    units: tuple[str, ...] = ()  # the units it is dispatched to
    condition: str | None = None  # the filing condition (立案条件) its limit follows
    time_limit: str | None = None  # e.g. "1 working day"
    started_at: datetime | None = None  # when the current handling period began
    deadline_at: datetime | None = None
    paused_at: datetime | None = None
    resume_to: State | None = None
    accepted_at: datetime | None = None
    filed_at: datetime | None = None
    dispatched_at: datetime | None = None  # the first dispatch
    handled_at: datetime | None = None  # the last feedback
    handled_on_time: bool | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    closed_on_time: bool | None = None
    cancelled_at: datetime | None = None
    reworks: int = 0
    extensions: int = 0
    returns: int = 0
    suspensions: int = 0
    self_handled: bool = False

    def measured_at(self, now: datetime) -> datetime | None:
        """The instant its deadline light is measured at: now while it is handled, the
        moment it was suspended while it is (its clock stands still), None when no
        deadline runs (then it has no light)."""
        if self.deadline_at is None or self.started_at is None or self.time_limit is None:
            return None
        if self.state is State.SUSPENDED:
            return self.paused_at or now
        return now if self.state is State.HANDLING else None


@dataclass(frozen=True, slots=True)
class Command:
    """One step asked of a case, by a person (`by`) through a channel (`via`)."""

    case_no: str
    action: Action
    at: datetime
    via: str  # cli | console:<user> | mqtt:<account>
    by: str | None = None
    units: tuple[str, ...] = ()
    note: str | None = None
    condition: str | None = None  # at filing or dispatch: the filing condition
    command_id: str | None = None  # the sender's idempotency key


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """A recorded transition: what the history shows and the bus publishes."""

    case_no: str
    seq: int
    action: Action
    from_state: State
    to_state: State
    at: datetime
    via: str
    by: str | None
    units: tuple[str, ...]
    note: str | None
    deadline_at: datetime | None
    command_id: str | None


def parse_action(text: str) -> Action | Refusal:
    try:
        return Action(text)
    except ValueError:
        known = ", ".join(action.value for action in Action)
        return Refusal(RefusalCode.ACTION_UNKNOWN, f"unknown action {text!r}; one of {known}")


def check_fields(command: Command) -> Refusal | None:
    """Lengths and shapes any channel may send wrong."""
    if command.note is not None and len(command.note) > NOTE_MAX:
        return Refusal(RefusalCode.FIELD_INVALID, f"note: at most {NOTE_MAX} characters")
    if command.by is not None and not 0 < len(command.by) <= BY_MAX:
        return Refusal(RefusalCode.FIELD_INVALID, f"by: 1 to {BY_MAX} characters")
    for unit in command.units:
        if not unit.strip() or len(unit) > UNIT_MAX:
            return Refusal(RefusalCode.FIELD_INVALID, f"unit: 1 to {UNIT_MAX} characters")
    if len(set(command.units)) != len(command.units):
        return Refusal(RefusalCode.FIELD_INVALID, "unit: named twice")
    return None


def decide(
    life: CaseLife, command: Command, clock: Timekeeper
) -> tuple[CaseLife, CaseEvent] | Refusal:
    """The case's next lifecycle and the event recording the step, or why not."""
    wrong = check_fields(command)
    if wrong is not None:
        return wrong
    action, at = command.action, command.at
    sources, target = TRANSITIONS[action]
    if life.state not in sources:
        allowed = ", ".join(sorted(a.value for a, (s, _) in TRANSITIONS.items() if life.state in s))
        return Refusal(
            RefusalCode.ILLEGAL,
            f"cannot {action.value} a case that is {life.state.value}"
            f" ({STATE_ZH[life.state]}); allowed: {allowed or 'nothing, it is final'}",
        )
    condition = command.condition or life.condition
    if command.condition is not None and command.condition not in clock.conditions(
        life.kind, life.class_code
    ):
        return Refusal(
            RefusalCode.CONDITION_UNKNOWN,
            f"no time limit for class {life.kind} {life.class_code} under {command.condition!r}",
        )
    step = _effect(life, command, clock, condition)
    if isinstance(step, Refusal):
        return step
    nxt = dataclasses.replace(step, state=target or step.state, seq=life.seq + 1)
    event = CaseEvent(
        case_no=life.case_no,
        seq=nxt.seq,
        action=action,
        from_state=life.state,
        to_state=nxt.state,
        at=at,
        via=command.via,
        by=command.by,
        units=command.units or nxt.units,
        note=command.note,
        deadline_at=nxt.deadline_at,
        command_id=command.command_id,
    )
    return nxt, event


# ---- each action's effect on the lifecycle (its state is set by `decide`) -------------------


def _effect(  # noqa: PLR0912 - one branch an action, side by side
    life: CaseLife, command: Command, clock: Timekeeper, condition: str | None
) -> CaseLife | Refusal:
    at = command.at
    replace = dataclasses.replace
    match command.action:
        case Action.ACCEPT:
            return replace(life, accepted_at=at)
        case Action.REFUSE | Action.DECLINE:
            return life  # nothing to keep: the state says it
        case Action.FILE:
            return replace(life, filed_at=at, condition=condition)
        case Action.DISPATCH:
            if not command.units:
                return Refusal(RefusalCode.UNIT_REQUIRED, "dispatch names the responsible unit(s)")
            limit = clock.limit_for(life.kind, life.class_code, condition)
            return replace(
                life,
                units=command.units,
                condition=condition,
                time_limit=limit,
                started_at=at,
                deadline_at=clock.deadline(at, limit),
                dispatched_at=life.dispatched_at or at,
                handled_on_time=None,
            )
        case Action.RETURN:
            return _of_its_units(life, command) or replace(
                life, units=(), started_at=None, deadline_at=None, returns=life.returns + 1
            )
        case Action.EXTEND:
            # An approved extension grants the case's time limit once more, from its deadline.
            deadline, limit = _running(life)
            return _of_its_units(life, command) or replace(
                life, deadline_at=clock.deadline(deadline, limit), extensions=life.extensions + 1
            )
        case Action.SUSPEND:
            return replace(
                life, paused_at=at, resume_to=life.state, suspensions=life.suspensions + 1
            )
        case Action.RESUME:
            # The handling period's start and end both move on by the time paused, so the
            # light measures only the time the units had.
            started, ends = life.started_at, life.deadline_at
            if life.paused_at is not None and life.time_limit:
                paused, limit = life.paused_at, life.time_limit
                if started is not None:
                    started = clock.shifted(started, paused, at, limit)
                if ends is not None:
                    ends = clock.shifted(ends, paused, at, limit)
            return replace(
                life,
                state=life.resume_to or State.FILED,
                started_at=started,
                deadline_at=ends,
                paused_at=None,
                resume_to=None,
            )
        case Action.FEEDBACK:
            on_time = life.deadline_at is None or at <= life.deadline_at
            return _of_its_units(life, command) or replace(
                life, handled_at=at, handled_on_time=on_time
            )
        case Action.PASS:
            return replace(life, verified_at=at)
        case Action.FAIL:
            # 返工: back to the same units with a fresh time limit; the feedback no longer counts.
            _, limit = _running(life)
            return replace(
                life,
                started_at=at,
                deadline_at=clock.deadline(at, limit),
                handled_at=None,
                handled_on_time=None,
                reworks=life.reworks + 1,
            )
        case Action.CLOSE:
            return replace(life, closed_at=at, closed_on_time=life.handled_on_time)
        case Action.CANCEL:
            return replace(life, cancelled_at=at, paused_at=None, resume_to=None)
        case Action.SELF_HANDLED:
            # Fixed on the spot: accepted, filed, handled and closed at once, within any limit.
            return replace(
                life,
                accepted_at=life.accepted_at or at,
                filed_at=at,
                handled_at=at,
                handled_on_time=True,
                closed_at=at,
                closed_on_time=True,
                self_handled=True,
            )


def _running(life: CaseLife) -> tuple[datetime, str]:
    """The deadline and limit of a dispatched case (every state that reaches here has them)."""
    if life.deadline_at is None or life.time_limit is None:
        raise ValueError(f"case {life.case_no} is {life.state.value} without a deadline")
    return life.deadline_at, life.time_limit


def _of_its_units(life: CaseLife, command: Command) -> Refusal | None:
    """A unit acting on a case must be one it was dispatched to."""
    strangers = [unit for unit in command.units if unit not in life.units]
    if strangers:
        return Refusal(
            RefusalCode.UNIT_NOT_DISPATCHED,
            f"{', '.join(strangers)} is not among the units the case is dispatched to"
            f" ({', '.join(life.units)})",
        )
    return None
