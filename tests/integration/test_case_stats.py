"""Evaluation statistics on both registries (SQLite and a real PostgreSQL): a month worked
out by hand, random lifecycles counted alike by both engines and by a reading of each
case's lifecycle, and `gateway stats --json` agreeing with `evaluate`."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest

from gateway.cases.evaluation import BY_KEYS, COUNT_KEYS
from gateway.cases.settings import ScoreSettings
from gateway.cases.workflow import TRANSITIONS, Action, CaseLife, Command, State
from gateway.protocols.payloads import Task
from gateway.sinks.case_ledger import Applied, verification_task_id
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_stats import evaluate
from tests.clocks import NaturalHours
from tests.commands import gateway
from tests.factories import normalized, placed
from tests.integration.conftest import open_case_registry

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 on Monday 2 November, local
AS_OF = T0 + timedelta(hours=200)  # 10 November, 17:00 local
NOV = (date(2026, 11, 1), date(2026, 11, 30))
CLOCK = NaturalHours(hours=24)  # 24 hours to handle a case ("紧急": 2)
SCORE = ScoreSettings()
DEVICE = "tz-0001"

A, B, C = "环卫处", "城东中队", "市政处"


def a_case(
    registry: Any,
    *,
    inspector: str,
    district: str | None = "崇川区",
    at: datetime = T0,
    grid: str | None = None,
) -> str:
    report = placed(normalized(received_at=at.isoformat()), district=district, inspector=inspector)
    if grid is not None:
        where = report.location.model_copy(update={"grid_code": grid})
        report = report.model_copy(update={"location": where})
    (case_no,) = registry.register([report])
    return str(case_no)


def steps(registry: Any, case_no: str, *plan: tuple[str, float] | tuple[str, float, str]) -> None:
    """Each (action, hours after T0[, unit]) in turn; each must be applied."""
    for action, hours, *unit in plan:
        command = Command(
            case_no=case_no,
            action=Action(action),
            at=T0 + timedelta(hours=hours),
            via="test",
            units=tuple(unit),
            condition="一般" if action == "file" else None,
        )
        done = registry.act(command, CLOCK)
        assert isinstance(done, Applied), (case_no, action, done)


def a_task(
    registry: Any, case_no: str, deadline_h: float, kind: Literal["verify", "inspect"]
) -> None:
    """A task sent by hand, its deadline in local time (as an operator types it)."""
    deadline = (T0 + timedelta(hours=deadline_h)).astimezone(TZ)
    task = Task(task_id=str(uuid.uuid4()), case_no=case_no, kind=kind, deadline=deadline)
    registry.add_task(DEVICE, task)


def answer(registry: Any, case_no: str, nth: int, hours: float) -> None:
    """The verification report answering the task of the case's nth feedback (each feedback
    asks for one, due 4 hours later: `NaturalHours.verify_deadline`)."""
    seqs = [e.seq for e in registry.history(case_no) if e.action is Action.FEEDBACK]
    task_id = verification_task_id(case_no, seqs[nth])
    at = (T0 + timedelta(hours=hours)).isoformat()
    assert registry.register([normalized(device_id=DEVICE, received_at=at, task_id=task_id)])


OPEN = [("accept", 0.1), ("file", 0.2)]


def a_month(registry: Any) -> dict[str, str]:
    """13 cases received in November (and two outside it), their lifecycles and tasks."""
    c: dict[str, str] = {}

    def new(name: str, inspector: str, **more: Any) -> str:
        c[name] = a_case(registry, inspector=inspector, **more)
        return c[name]

    # 1: handled and closed on time; its verification came late (deadline 11 h, answer 11.5 h)
    one = new("c1", "INS-1", grid="32060200100101")
    steps(registry, one, *OPEN, ("dispatch", 0.3, A), ("feedback", 10), ("pass", 12), ("close", 13))
    answer(registry, one, 0, 12)  # verified on time (feedback 10 h: due at 14 h)
    # 2: handled late (deadline 25 h, feedback at 30 h), closed late; its task unanswered, past due
    two = new("c2", "INS-1")
    steps(registry, two, *OPEN, ("dispatch", 1, A), ("feedback", 30), ("pass", 31), ("close", 32))
    answer(registry, two, 0, 36)  # verified late (due at 34 h)
    # 3: reworked once (返工: new deadline 6 + 24 = 30 h), then handled at 20 h and closed on time
    three = new("c3", "INS-1")
    steps(registry, three, *OPEN, ("dispatch", 1, A), ("feedback", 5), ("fail", 6),
          ("feedback", 20), ("pass", 21), ("close", 22))  # fmt: skip
    answer(registry, three, 0, 5.5)  # the check that failed it, on time (due at 9 h)
    answer(registry, three, 1, 21)  # on time (due at 24 h)
    # 4: handling past its deadline (25 h) at as_of (200 h): due and overdue
    steps(registry, new("c4", "INS-2"), *OPEN, ("dispatch", 1, A))
    a_task(registry, c["c4"], 10, "inspect")  # not a verification: not counted
    # 5: handling within its limit (dispatched at 190 h, deadline 214 h): not due
    steps(registry, new("c5", "INS-2"), *OPEN, ("dispatch", 190, C))
    # 6: extended (延期: deadline 25 → 49 h), handled at 40 h on time, awaiting verification
    six = new("c6", "INS-2", district="港闸区")
    steps(registry, six, *OPEN, ("dispatch", 1, B), ("extend", 20), ("feedback", 40))
    answer(registry, six, 0, 43)  # on time (due at 44 h)
    a_task(registry, six, 300, "verify")  # due after as_of, unanswered: not counted yet
    # 7: suspended (挂账): not due
    steps(registry, new("c7", "INS-2", district="港闸区"), *OPEN, ("dispatch", 1, B),
          ("suspend", 2))  # fmt: skip
    # 8: returned by B (回退), dispatched again to A (改派), handled on time and closed
    steps(registry, new("c8", "INS-1"), *OPEN, ("dispatch", 1, B), ("return", 2),
          ("dispatch", 3, A), ("feedback", 10), ("pass", 11), ("close", 12))  # fmt: skip
    # (its verification task, due at 14 h, is never answered: late)
    # 9: filed, not dispatched; 10: declined (不予立案), outside any district; 11: only reported,
    # received three days later; 12: self-handled (自处置); 13: cancelled (作废) while handling
    steps(registry, new("c9", "INS-1"), *OPEN)
    steps(registry, new("c10", "INS-1", district=None), ("accept", 0.1), ("decline", 0.2))
    new("c11", "INS-2", at=T0 + timedelta(days=3))
    steps(registry, new("c12", "INS-1"), ("self-handled", 0.5))
    steps(registry, new("c13", "INS-2", district="港闸区"), *OPEN, ("dispatch", 1, B),
          ("cancel", 3))  # fmt: skip
    # Received on 31 October (local) and on 1 December (local): outside the cohort.
    steps(registry, a_case(registry, inspector="INS-1", at=T0 - timedelta(days=2)), *OPEN)
    a_case(registry, inspector="INS-1", at=datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    return c


def counts_of(figures: Any) -> dict[str, int]:
    return {key: figures.counts[key] for key in (*COUNT_KEYS, "due", "closed_on_time")}


def test_a_month_worked_out_by_hand(registry: Any) -> None:
    a_month(registry)
    found = evaluate(registry, *NOV, "unit", AS_OF, SCORE)
    # The cohort: c1–c13 (13 cases).
    # accepted: all but c11 (c12's self-handling accepts it) = 12; filed: those but c10 = 11;
    # dispatched: c1–c8, c13 = 9; handled (handled_at): c1, c2, c3, c6, c8, c12 = 6;
    # closed: c1, c2, c3, c8, c12 = 5; overdue: c2 (handled late), c4 (past its deadline) = 2;
    # due (应结案): the 6 handled + c4 = 7 (c5 within its limit, c7 suspended, c13 cancelled);
    # closed on time: c1, c3, c8, c12 = 4; handled on time: c1, c3, c6, c8, c12 = 5.
    assert counts_of(found.total) == {
        "reported": 13, "accepted": 12, "filed": 11, "dispatched": 9, "handled": 6,
        "closed": 5, "reworked": 1, "extended": 1, "returned": 1, "suspended": 1,
        "cancelled": 1, "self_handled": 1, "overdue": 2, "due": 7, "closed_on_time": 4,
    }  # fmt: skip
    # 立案率 11/12, 结案率 5/7, 按期结案率 4/7, 返工率 1/7 (c3), 延期率 1/7 (c6), 按期处置率 5/7
    assert found.total.rates == {
        "filing_rate": 11 / 12, "closing_rate": 5 / 7, "on_time_closing_rate": 4 / 7,
        "rework_rate": 1 / 7, "extension_rate": 1 / 7, "on_time_handling_rate": 5 / 7,
    }  # fmt: skip
    groups = {group.key: group for group in found.groups}
    assert list(groups) == [*sorted([A, B, C]), None]  # by key, 未派遣 last
    # 环卫处 (lead unit of c1, c2, c3, c4, c8: c8's lead is A after 改派): 5 cases, all filed;
    # handled c1, c2, c3, c8 = 4, all closed; due 4 + c4 = 5; on time (closed and handled):
    # c1, c3, c8 = 3; overdue c2, c4 = 2; reworked c3; returned c8.
    a = groups[A].figures
    assert counts_of(a) == {
        "reported": 5, "accepted": 5, "filed": 5, "dispatched": 5, "handled": 4, "closed": 4,
        "reworked": 1, "extended": 0, "returned": 1, "suspended": 0, "cancelled": 0,
        "self_handled": 0, "overdue": 2, "due": 5, "closed_on_time": 3,
    }  # fmt: skip
    # 立案率 5/5, 结案率 4/5, 按期结案率 3/5, 返工率 1/5, 延期率 0/5, 按期处置率 3/5
    assert a.rates == {
        "filing_rate": 1.0, "closing_rate": 0.8, "on_time_closing_rate": 0.6,
        "rework_rate": 0.2, "extension_rate": 0.0, "on_time_handling_rate": 0.6,
    }  # fmt: skip
    # Score: most filed among units is A's 5. 0.1 × 5/5 + 0.3 × 0.8 + 0.3 × 0.6 + 0.3 × (1 − 0.2)
    # = 0.10 + 0.24 + 0.18 + 0.24 = 0.76 → 76.0, grade C (70 ≤ 76 < 80).
    assert (a.score, a.grade) == (76.0, "C")
    # 城东中队 (c6, c7, c13; c7 suspended and c13 cancelled keep their units): due only c6
    # (handled on time after an extension, not closed): 结案率 0/1, 按期处置率 1/1, 延期率 1/1.
    b = groups[B].figures
    assert counts_of(b) == {
        "reported": 3, "accepted": 3, "filed": 3, "dispatched": 3, "handled": 1, "closed": 0,
        "reworked": 0, "extended": 1, "returned": 0, "suspended": 1, "cancelled": 1,
        "self_handled": 0, "overdue": 0, "due": 1, "closed_on_time": 0,
    }  # fmt: skip
    assert b.rates == {
        "filing_rate": 1.0, "closing_rate": 0.0, "on_time_closing_rate": 0.0,
        "rework_rate": 0.0, "extension_rate": 1.0, "on_time_handling_rate": 1.0,
    }  # fmt: skip
    # 0.1 × 3/5 + 0.3 × 0 + 0.3 × 1 + 0.3 × (1 − 0) = 0.06 + 0 + 0.3 + 0.3 = 0.66 → 66.0, D.
    assert (b.score, b.grade) == (66.0, "D")
    # 市政处 (c5): within its limit, nothing due: no rate but 立案率 1/1, and no score.
    assert groups[C].figures.rates["closing_rate"] is None
    assert (groups[C].figures.score, groups[C].figures.grade) == (None, None)
    # 未派遣 (c9, c10, c11, c12): accepted 3 (not c11), filed 2 (c9, c12), c12 closed on time.
    none = groups[None]
    assert none.label == "未派遣 not dispatched"
    assert (none.figures.counts["accepted"], none.figures.counts["filed"]) == (3, 2)
    assert none.figures.rates["closing_rate"] == 1.0
    assert none.figures.score is None


def test_a_month_by_inspector_district_street_and_week(registry: Any) -> None:
    a_month(registry)
    found = evaluate(registry, *NOV, "inspector", AS_OF, SCORE)
    groups = {group.key: group.figures for group in found.groups}
    one, two = groups["INS-1"], groups["INS-2"]
    # INS-1: c1, c2, c3, c8, c9, c10, c12 = 7 reported, 7 accepted, 6 filed (not c10): 有效上报率
    # 6/7, 立案率 6/7. Due: c1, c2, c3, c8, c12 = 5, all closed; on time c1, c3, c8, c12 = 4.
    # Verification tasks (one a feedback): c1's (on time), c2's (late), c3's two (on time),
    # c8's (never answered, past its deadline) = 5, on time 3: 按时核查率 3/5.
    assert (one.counts["reported"], one.counts["filed"], one.counts["due"]) == (7, 6, 5)
    assert one.rates == {
        "filing_rate": 6 / 7, "closing_rate": 1.0, "on_time_closing_rate": 0.8,
        "rework_rate": 0.2, "extension_rate": 0.0, "valid_report_rate": 6 / 7,
        "on_time_verification_rate": 3 / 5,
    }  # fmt: skip
    assert (one.counts["verification_tasks"], one.counts["verified_on_time"]) == (5, 3)
    # INS-2: c4, c5, c6, c7, c11, c13 = 6, accepted and filed 5 (not c11): 有效上报率 5/6.
    # Due: c4 (past its deadline), c6 (handled) = 2, none closed; c6 extended: 延期率 1/2.
    # Verification: c6's feedback task, answered on time: 1/1 (the one sent by hand is due
    # after as_of, and c4's is an inspection).
    assert two.rates == {
        "filing_rate": 1.0, "closing_rate": 0.0, "on_time_closing_rate": 0.0,
        "rework_rate": 0.0, "extension_rate": 0.5, "valid_report_rate": 5 / 6,
        "on_time_verification_rate": 1.0,
    }  # fmt: skip
    assert found.total.counts["verification_tasks"] == 6
    districts = evaluate(registry, *NOV, "district", AS_OF, SCORE)
    # 港闸区: c6, c7, c13; 区外 (NULL): c10; 崇川区: the other 9.
    assert {g.label: g.figures.counts["reported"] for g in districts.groups} == {
        "崇川区": 9, "港闸区": 3, "区外/未定位 outside or unplaced": 1
    }  # fmt: skip
    streets = evaluate(registry, *NOV, "street", AS_OF, SCORE)
    assert {g.key: g.figures.counts["reported"] for g in streets.groups} == {
        "320602001": 1, None: 12
    }  # fmt: skip
    # All but c11 arrived on Monday 2 November (week 45); c11 on Thursday 5 November.
    weeks = evaluate(registry, *NOV, "week", AS_OF, SCORE)
    assert {g.key: g.figures.counts["reported"] for g in weeks.groups} == {"2026-W45": 13}
    days = evaluate(registry, *NOV, "day", AS_OF, SCORE)
    assert {g.key: g.figures.counts["reported"] for g in days.groups} == {
        "2026-11-02": 12, "2026-11-05": 1
    }  # fmt: skip
    classes = evaluate(registry, *NOV, "class", AS_OF, SCORE, {"event:0102": "事件 0102 暴露垃圾"})
    assert [(g.key, g.label) for g in classes.groups] == [("event:0102", "事件 0102 暴露垃圾")]
    # as_of moves only the deadlines' comparisons (the lifecycle columns are current): at 20 h
    # c4 (deadline 25 h) is not yet due, so due = the 6 handled; at 30 h it is due and overdue.
    early = evaluate(registry, *NOV, "month", T0 + timedelta(hours=20), SCORE)
    assert (early.total.counts["due"], early.total.counts["overdue"]) == (6, 1)
    later = evaluate(registry, *NOV, "month", T0 + timedelta(hours=30), SCORE)
    assert (later.total.counts["due"], later.total.counts["overdue"]) == (7, 2)


# ---- random lifecycles: both engines, and a reading of each lifecycle, agree -------------


# How often a random lifecycle takes each legal step: mostly forward, as cases go.
WEIGHTS = {
    Action.ACCEPT: 8.0, Action.FILE: 8.0, Action.DISPATCH: 8.0, Action.FEEDBACK: 5.0,
    Action.PASS: 4.0, Action.CLOSE: 6.0, Action.RESUME: 4.0, Action.REFUSE: 0.5,
    Action.DECLINE: 0.5, Action.SELF_HANDLED: 0.5, Action.CANCEL: 0.3,
}  # fmt: skip


def random_month(books: list[Any], seed: int, cases: int = 60) -> list[str]:
    """The same random legal lifecycles applied to each registry; returns the case numbers."""
    rng = random.Random(seed)
    numbers: list[str] = []
    for _ in range(cases):
        received = T0 + timedelta(hours=rng.uniform(-72, 24 * 30))
        report = placed(
            normalized(received_at=received.isoformat(), kind=rng.choice(["event", "component"]),
                       class_code=rng.choice(["0102", "0101", "0201"])),
            district=rng.choice(["崇川区", "港闸区", None]),
            inspector=rng.choice(["INS-1", "INS-2", "INS-3"]),
        )  # fmt: skip
        grid = rng.choice([None, "32060200100101", "32060200200301"])
        report = report.model_copy(
            update={"location": report.location.model_copy(update={"grid_code": grid})}
        )
        found = {str(book.register([report])[0]) for book in books}
        assert len(found) == 1
        case_no = found.pop()
        numbers.append(case_no)
        life = CaseLife(case_no, report.class_.type, report.class_.code)
        at = received
        for _ in range(rng.randint(0, 12)):
            legal = [a for a, (sources, _) in TRANSITIONS.items() if life.state in sources]
            if not legal:
                break
            action = rng.choices(legal, [WEIGHTS.get(a, 1.0) for a in legal])[0]
            at += timedelta(hours=rng.expovariate(1 / 10))
            units = (
                tuple(rng.sample([A, B, C], rng.randint(1, 2))) if action is Action.DISPATCH else ()
            )
            condition = rng.choice(["一般", "紧急"]) if action is Action.FILE else None
            command = Command(case_no, action, at, via="test", units=units, condition=condition)
            applied = [book.act(command, CLOCK) for book in books]
            assert all(isinstance(done, Applied) for done in applied), applied
            life = applied[0].life
            if action is Action.FEEDBACK and rng.random() < 0.7:  # its verification task
                task_id = verification_task_id(case_no, life.seq)
                answered = (at + timedelta(hours=rng.uniform(0, 8))).isoformat()
                for book in books:
                    book.register([normalized(received_at=answered, task_id=task_id)])
        if life.state in (State.HANDLED, State.VERIFIED, State.CLOSED) and rng.random() < 0.7:
            task_id = str(uuid.uuid4())
            deadline = (at + timedelta(hours=rng.uniform(-5, 30))).astimezone(TZ)
            task = Task(task_id=task_id, case_no=case_no, kind="verify", deadline=deadline)
            answer = at + timedelta(hours=rng.uniform(0, 30)) if rng.random() < 0.7 else None
            for book in books:
                book.add_task(DEVICE, task)
                if answer is not None:
                    book.register([normalized(received_at=answer.isoformat(), task_id=task_id)])
    return numbers


def expected_counts(lives: list[CaseLife], as_of: datetime) -> dict[str, int]:
    """The definitions of docs/evaluation.md, read off each lifecycle in Python."""
    counts = dict.fromkeys(COUNT_KEYS, 0) | {"due": 0, "closed_on_time": 0}
    for life in lives:
        past = (
            life.state is State.HANDLING
            and life.deadline_at is not None
            and life.deadline_at < as_of
        )
        due = life.state is not State.CANCELLED and (life.handled_at is not None or past)
        facts = {
            "reported": True, "accepted": life.accepted_at is not None,
            "filed": life.filed_at is not None, "dispatched": life.dispatched_at is not None,
            "handled": life.handled_at is not None, "closed": life.state is State.CLOSED,
            "reworked": life.reworks > 0, "extended": life.extensions > 0,
            "returned": life.returns > 0, "suspended": life.suspensions > 0,
            "cancelled": life.state is State.CANCELLED, "self_handled": life.self_handled,
            "overdue": due and (life.handled_on_time is False or past), "due": due,
            "closed_on_time": life.state is State.CLOSED and life.closed_on_time is True,
        }  # fmt: skip
        for key, fact in facts.items():
            counts[key] += int(bool(fact))
    return counts


def test_random_lifecycles_give_the_same_figures_on_both_engines(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    books = [open_case_registry(kind, request, tmp_path) for kind in ("sqlite", "postgres")]
    try:
        numbers = random_month(books, seed=20261102, cases=120)
        lives = [books[0].life(case_no) for case_no in numbers]
        for as_of in (T0 + timedelta(days=10), T0 + timedelta(days=40)):
            cohort = [
                life for life, case_no in zip(lives, numbers, strict=True)
                if NOV[0].strftime("%Y%m%d") <= case_no[5:13] <= NOV[1].strftime("%Y%m%d")
            ]  # fmt: skip
            for by in BY_KEYS:
                sqlite, postgres = (evaluate(book, *NOV, by, as_of, SCORE) for book in books)
                assert sqlite.as_json() == postgres.as_json(), by
                assert counts_of(sqlite.total) == expected_counts(cohort, as_of), by
            by_unit = evaluate(books[0], *NOV, "unit", as_of, SCORE)
            for group in by_unit.groups:
                mine = [
                    life for life in cohort if (life.units[0] if life.units else None) == group.key
                ]
                assert counts_of(group.figures) == expected_counts(mine, as_of), group.key
    finally:
        for book in books:
            book.close()


# ---- the command ------------------------------------------------------------------------


def test_the_command_prints_what_evaluate_gives(tmp_path: Path) -> None:
    book = SqliteRegistry(tmp_path / "registry.db", TZ)
    try:
        a_month(book)
        wanted = {by: evaluate(book, *NOV, by, AS_OF, SCORE) for by in ("unit", "inspector")}
    finally:
        book.close()
    common = ["--data-dir", str(tmp_path), "--from", "2026-11-01", "--to", "2026-11-30"]
    for by, evaluation in wanted.items():
        done = gateway("stats", *common, "--by", by, "--json", "--as-of", AS_OF.isoformat())
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == evaluation.as_json()
    # Without an offset, --as-of is in the acceptance time zone (Asia/Shanghai).
    local = AS_OF.astimezone(TZ).replace(tzinfo=None).isoformat()
    done = gateway("stats", *common, "--by", "unit", "--json", "--as-of", local)
    assert json.loads(done.stdout)["total"] == wanted["unit"].as_json()["total"]
    table = gateway("stats", *common, "--by", "unit", "--as-of", AS_OF.isoformat())
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "立案率" in lines[2]
    assert "filing" in lines[3]
    assert any(line.startswith("环卫处") and "76.0" in line and " C" in line for line in lines)
    assert lines[-1].startswith("合计 total")
    missing = gateway("stats", "--data-dir", str(tmp_path / "nowhere"), *common[2:], "--by", "day")
    assert missing.returncode == 2
    assert "no registry" in missing.stderr
