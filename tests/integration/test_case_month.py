"""The month generator of the benchmarks (`bench/case_month.py`), small, on both registries:
every case's history replays through the state machine to the lifecycle stored beside it,
the outcomes come in plausible shares, and everything happens inside the month."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.case_month import TZ, generate
from gateway.cases.settings import CasesSettings
from gateway.cases.timekeeping import timekeeper
from gateway.cases.workflow import Action, CaseLife, Command, Refusal, State, decide
from gateway.sinks.case_ledger import instant
from gateway.sinks.case_registry_sqlite import SqliteRegistry

REPORTS = 600
START = datetime(2026, 11, 1, tzinfo=TZ)
END = datetime(2026, 12, 1, tzinfo=TZ)


def replayed(life: CaseLife, registry: Any, clock: Any) -> CaseLife:
    """The case's recorded events applied again, one by one, to a fresh lifecycle."""
    again = CaseLife(life.case_no, life.kind, life.class_code)
    for event in registry.history(life.case_no):
        assert event.seq == again.seq + 1
        assert event.from_state is again.state
        command = Command(
            case_no=life.case_no,
            action=event.action,
            at=event.at,
            via=event.via,
            by=event.by,
            units=event.units,
            note=event.note,
            # the filing condition is kept on the lifecycle, not the event
            condition=life.condition if event.action is Action.FILE else None,
        )
        decided = decide(again, command, clock)
        assert not isinstance(decided, Refusal), (life.case_no, event, decided)
        again, made = decided
        assert made.to_state is event.to_state
        assert made.deadline_at == event.deadline_at
    return again


def test_a_month_of_cases(registry: Any) -> None:
    made = generate(registry, "2026-11", REPORTS, seed=7)
    assert made.cases == REPORTS
    rows = registry.query("SELECT case_no, kind, class_code, received_at FROM cases")
    assert len(rows) == REPORTS
    clock = timekeeper(CasesSettings(), TZ)
    states: Counter[State] = Counter()
    self_handled = 0
    for case_no, _kind, _class_code, received in rows:
        moment = instant(received)
        assert moment is not None
        assert START <= moment < END
        life = registry.life(str(case_no))
        assert life is not None
        assert replayed(life, registry, clock) == life
        states[life.state] += 1
        self_handled += life.self_handled
    share = {state: count / REPORTS for state, count in states.items()}
    assert share.get(State.CLOSED, 0) > 0.6
    assert 0.005 < share.get(State.REFUSED, 0) < 0.08
    assert 0.01 < share.get(State.DECLINED, 0) < 0.09
    assert 0.03 < self_handled / REPORTS < 0.14
    assert share.get(State.CANCELLED, 0) < 0.04
    assert sum(made.states.values()) == REPORTS
    assert made.states == Counter({state.value: n for state, n in states.items()})

    (outside,) = registry.query(
        "SELECT count(*) FROM case_events WHERE at < ? OR at >= ?",
        [registry.stamp(START.astimezone(UTC)), registry.stamp(END.astimezone(UTC))],
    )
    assert outside[0] == 0
    (unpublished,) = registry.query("SELECT count(*) FROM case_events WHERE published_at IS NULL")
    assert unpublished[0] == 0
    assert registry.unpublished_events(10) == []

    # A verify task per feedback that came in time; most answered before their deadline.
    (feedbacks,) = registry.query("SELECT count(*) FROM case_events WHERE action = 'feedback'")
    tasks = registry.query("SELECT task_id, kind, deadline FROM tasks")
    assert 0.9 * feedbacks[0] <= len(tasks) <= feedbacks[0]
    assert {kind for _, kind, _ in tasks} == {"verify"}
    answered = registry.query(
        "SELECT v.received_at, t.deadline FROM verifications v JOIN tasks t USING (task_id)"
    )
    assert len(answered) > 0.85 * len(tasks)
    on_time = [a for a, deadline in answered if instant(a) <= instant(deadline)]  # type: ignore[operator]
    assert len(on_time) > 0.85 * len(answered)


def test_the_same_seed_makes_the_same_month(tmp_path: Path) -> None:
    def month(name: str) -> list[tuple[Any, ...]]:
        registry = SqliteRegistry(tmp_path / name / "registry.db", TZ)
        try:
            generate(registry, "2026-11", 200, seed=3)
            return registry.query(
                "SELECT case_no, state, deadline_at, lead_unit, inspector_id FROM cases ORDER BY id"
            )
        finally:
            registry.close()

    assert month("a") == month("b")
