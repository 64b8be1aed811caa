"""The report lifecycle: the table is whole and consistent, and the outbox carries it out
(and nothing else) whatever order results come in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.lifecycle import (
    FINAL_STATES,
    OUTBOX_STATES,
    RESULTS_OF,
    STEPS,
    TRANSITIONS,
    WORKS_ON,
    Accepted,
    DeadLetter,
    Delivered,
    DeliveryState,
    Derived,
    Event,
    IllegalTransition,
    Registered,
    Rejected,
    ReportState,
    Retry,
    Step,
    StepResult,
    transition,
)
from gateway.store import outbox as outbox_module
from gateway.store.outbox import READY_CURSOR, Backoff, Outbox
from tests.factories import normalized

S = ReportState


def reachable_from(start: ReportState) -> set[ReportState]:
    seen, frontier = {start}, [start]
    while frontier:
        state = frontier.pop()
        for (source, _), moved in TRANSITIONS.items():
            if source is state and moved.to not in seen:
                seen.add(moved.to)
                frontier.append(moved.to)
    return seen


def test_every_state_is_reached_from_received_and_the_settled_ones_are_final() -> None:
    assert reachable_from(S.RECEIVED) == set(ReportState)
    assert {S.EXPIRED, S.REGISTERED, S.REJECTED} == FINAL_STATES
    # a rejection is possible wherever the pipeline holds a report and its fate is open
    assert {source for source, event in TRANSITIONS if event is Event.REJECTED} == {
        S.READY,
        S.DERIVING,
        S.NORMALIZED,
    }


def test_each_step_is_scheduled_by_entering_the_state_it_works_on() -> None:
    scheduled_on_entry: dict[ReportState, set[Step]] = {}
    for moved in TRANSITIONS.values():
        scheduled_on_entry.setdefault(moved.to, set()).update(moved.schedules)
    for step, state in WORKS_ON.items():
        assert step in scheduled_on_entry[state], (step, state)
    # `ack` ends both fates; nothing else is scheduled by a final state
    assert scheduled_on_entry[S.REGISTERED] == {Step.OBJECTS, Step.BUS, Step.ACK}
    assert scheduled_on_entry[S.REJECTED] == {Step.ACK}
    assert {step for steps in scheduled_on_entry.values() for step in steps} == set(STEPS)


def test_an_event_the_table_does_not_allow_is_refused() -> None:
    assert transition(S.NORMALIZED, Event.REGISTERED).to is S.REGISTERED
    with pytest.raises(IllegalTransition, match="registered in state deriving"):
        transition(S.DERIVING, Event.REGISTERED)
    with pytest.raises(IllegalTransition):
        transition(S.REGISTERED, Event.REJECTED)  # a case number is never taken back


def test_the_outbox_schema_admits_exactly_the_outbox_states() -> None:
    schema = outbox_module.MIGRATIONS[0]
    states = re.search(r"CHECK \(state IN \(([^)]*)\)\)", schema)
    assert states is not None
    assert {value.strip(" '") for value in states[1].split(",")} == set(OUTBOX_STATES)
    deliveries = re.findall(r"CHECK \(state IN \(([^)]*)\)\)", schema)[1]
    assert {value.strip(" '") for value in deliveries.split(",")} == set(DeliveryState)


# ---- the outbox carries the table out ------------------------------------------------------

RESULTS: dict[str, Callable[[str], StepResult]] = {
    "derived": lambda rid: Derived(rid, normalized(rid)),
    "registered": lambda rid: Registered(rid, "E010220261128000001", normalized(rid)),
    "rejected": lambda rid: Rejected(rid, "photo.corrupt", "the photo cannot be decoded"),
    "delivered": Delivered,
    "retry": lambda rid: Retry(rid, "timeout"),
    "dead": lambda rid: DeadLetter(rid, "NoSuchBucket"),
}


def state_and_deliveries(outbox: Outbox, report_id: str) -> tuple[str, dict[str, str]]:
    (state,) = outbox.conn.execute(
        "SELECT state FROM outcomes WHERE report_id = ?", (report_id,)
    ).fetchone()
    rows = outbox.conn.execute(
        "SELECT sink, state FROM deliveries WHERE report_id = ?", (report_id,)
    ).fetchall()
    return state, dict(rows)


KINDS = {
    Derived: "derived",
    Registered: "registered",
    Rejected: "rejected",
    Delivered: "delivered",
    Retry: "retry",
    DeadLetter: "dead",
}
# A step, and a result it can give.
MOVES = st.sampled_from(STEPS).flatmap(
    lambda step: st.tuples(st.just(step), st.sampled_from([KINDS[k] for k in RESULTS_OF[step]]))
)


def test_a_result_its_step_cannot_give_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    report_id = str(uuid.uuid4())
    outbox.record(READY_CURSOR, 1, [Accepted(report_id, "tz-0001", normalized(report_id), True)])
    with pytest.raises(IllegalTransition, match="media step cannot end a report in Delivered"):
        outbox.apply(Step.MEDIA, [Delivered(report_id)], Backoff())
    assert state_and_deliveries(outbox, report_id) == ("deriving", {"media": "pending"})
    outbox.close()


@settings(max_examples=60, deadline=None)
@given(with_media=st.booleans(), moves=st.lists(MOVES, max_size=12))
def test_any_order_of_results_follows_the_table(
    tmp_path_factory: pytest.TempPathFactory, with_media: bool, moves: list[tuple[Step, str]]
) -> None:
    outbox = Outbox(Path(tmp_path_factory.mktemp("outbox")) / "outbox.db")
    report_id = str(uuid.uuid4())
    outbox.record(
        READY_CURSOR, 1, [Accepted(report_id, "tz-0001", normalized(report_id), with_media)]
    )
    state = S.DERIVING if with_media else S.NORMALIZED
    expected: dict[str, str] = {(Step.MEDIA if with_media else Step.REGISTRY): "pending"}
    for step, kind in moves:
        result: StepResult = RESULTS[kind](report_id)
        outbox.apply(step, [result], Backoff(first_s=0.01, max_s=0.01))
        # the model: a step's result counts only where the step has a pending delivery
        if expected.get(step) != "pending":
            continue
        if isinstance(result, Retry):
            continue
        expected[step] = "dead" if isinstance(result, DeadLetter) else "done"
        if isinstance(result, Derived | Registered | Rejected) and WORKS_ON.get(step) is state:
            moved = TRANSITIONS.get((state, result.event))
            if moved is not None:
                state = moved.to
                for scheduled in moved.schedules:
                    expected.setdefault(scheduled, "pending")
        assert state_and_deliveries(outbox, report_id) == (state.value, expected)
    assert state_and_deliveries(outbox, report_id) == (state.value, expected)
    outbox.close()


def test_a_registered_report_keeps_its_case_number_whatever_comes_later(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    report_id = str(uuid.uuid4())
    outbox.record(READY_CURSOR, 1, [Accepted(report_id, "tz-0001", normalized(report_id), False)])
    case = normalized(report_id).with_case_no("E010220261128000001")
    backoff = Backoff()
    outbox.apply(Step.REGISTRY, [Registered(report_id, "E010220261128000001", case)], backoff)
    # a late refusal (a redelivered batch) changes nothing: the case stands
    outbox.apply(Step.REGISTRY, [Rejected(report_id, "task.unknown", "no such task")], backoff)
    standing = outbox.state_of(report_id)
    assert standing is not None
    assert (standing.state, standing.case_no, standing.reason_code) == (
        S.REGISTERED,
        "E010220261128000001",
        None,
    )
    [due] = outbox.due(Step.BUS, 10)
    assert due.report() == case  # what the bus and the objects sink send is the typed report
    outbox.close()
