"""Evaluation statistics from the registry: the cohort's counts per group in one grouped
scan of `cases`, and (by inspector) one query of their verification tasks.

The SQL is the common subset of SQLite and PostgreSQL (`?` placeholders, `substr`, `||`,
`SUM(CASE ...)`, `GROUP BY 1`), so both engines count the same; instants are compared as
the registry stores them (`stamp`: SQLite's UTC text sorts as time). What the counts
mean and why is in `docs/evaluation.md`; the rates and scores are
`gateway.cases.evaluation`'s, computed from these counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final, Protocol

from gateway.cases.evaluation import BY_KEYS, Evaluation, evaluation, zero_counts
from gateway.cases.settings import ScoreSettings
from gateway.sinks.case_ledger import PAST_DEADLINE, instant


class Readable(Protocol):
    """What statistics need of a registry (both have it)."""

    def query(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]: ...

    def stamp(self, moment: datetime) -> object: ...


# The column (or expression) each grouping counts under; `week` groups days, merged later.
KEY_SQL: Final[Mapping[str, str]] = {
    "unit": "lead_unit",
    "district": "district",
    "street": "substr(grid_code, 1, 9)",  # 6-digit county + 3-digit street (GB/T 30428.2)
    "grid": "grid_code",
    "class": "kind || ':' || class_code",
    "inspector": "inspector_id",
    "day": "received_day",
    "week": "received_day",
    "month": "substr(received_day, 1, 7)",
}

# Handling past its deadline at as_of (each `?` is as_of).

# 应结案: handled (the feedback stands) or handling past its deadline; neither cancelled
# (作废) nor suspended (挂账, the clock paused) cases are due.
_DUE = f"(state <> 'cancelled' AND (handled_at IS NOT NULL OR {PAST_DEADLINE}))"

# count → its condition, in the order of the SELECT; as_of once for each `?` (each
# PAST_DEADLINE: handling past its deadline at as_of).
CONDITIONS: Final[Mapping[str, str]] = {
    "accepted": "accepted_at IS NOT NULL",
    "filed": "filed_at IS NOT NULL",
    "dispatched": "dispatched_at IS NOT NULL",
    "handled": "handled_at IS NOT NULL",
    "closed": "state = 'closed'",
    "reworked": "reworks > 0",
    "extended": "extensions > 0",
    "returned": "returns > 0",
    "suspended": "suspensions > 0",
    "cancelled": "state = 'cancelled'",
    "self_handled": "self_handled = 1",
    "overdue": f"{_DUE} AND (handled_on_time = 0 OR {PAST_DEADLINE})",
    "due": _DUE,
    "closed_on_time": "state = 'closed' AND closed_on_time = 1",
    "handled_on_time": f"{_DUE} AND handled_at IS NOT NULL AND handled_on_time = 1",
    "reworked_due": f"{_DUE} AND reworks > 0",
    "extended_due": f"{_DUE} AND extensions > 0",
}


def counts_sql(by: str) -> tuple[str, int]:
    """The grouped scan for a grouping, and how many as_of parameters it takes."""
    sums = ",\n    ".join(
        f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)" for condition in CONDITIONS.values()
    )
    sql = (
        f"SELECT {KEY_SQL[by]}, COUNT(*),\n    {sums}\n"
        "FROM cases WHERE received_day BETWEEN ? AND ? GROUP BY 1"
    )
    return sql, sum(condition.count("?") for condition in CONDITIONS.values())


# Each verify task of a cohort case, with its answers (a row each; none: NULL).
_TASKS_SQL: Final = (
    "SELECT c.inspector_id, t.task_id, t.deadline, v.received_at"
    " FROM tasks t JOIN cases c ON c.case_no = t.case_no"
    " LEFT JOIN verifications v ON v.task_id = t.task_id"
    " WHERE t.kind = 'verify' AND c.received_day BETWEEN ? AND ?"
)


def count_groups(
    registry: Readable, start: date, end: date, by: str, as_of: datetime
) -> dict[str | None, dict[str, int]]:
    """Each group's counts (for `week`, each day's)."""
    if by not in BY_KEYS:
        raise ValueError(f"by: one of {', '.join(BY_KEYS)}, not {by!r}")
    sql, moments = counts_sql(by)
    stamp = registry.stamp(as_of)
    rows = registry.query(sql, [*[stamp] * moments, start.isoformat(), end.isoformat()])
    names = ("reported", *CONDITIONS)
    groups: dict[str | None, dict[str, int]] = {}
    for key, *values in rows:
        counts = groups.setdefault(None if key is None else str(key), zero_counts())
        for name, value in zip(names, values, strict=True):
            counts[name] += int(value or 0)
    if by == "inspector":
        for key, (tasks, on_time) in verification_counts(registry, start, end, as_of).items():
            counts = groups.setdefault(key, zero_counts())
            counts["verification_tasks"] += tasks
            counts["verified_on_time"] += on_time
    return groups


def verification_counts(
    registry: Readable, start: date, end: date, as_of: datetime
) -> dict[str | None, tuple[int, int]]:
    """Per inspector of the case: its verify tasks that are due (answered by as_of, or
    past their deadline), and those answered by their deadline. Compared here, not in
    SQL: SQLite keeps a task's deadline as sent, in any offset, so its text does not sort
    as time."""
    tasks: dict[str, tuple[str | None, datetime | None]] = {}
    answers: dict[str, list[datetime]] = {}
    for inspector, task_id, deadline, answered in registry.query(
        _TASKS_SQL, [start.isoformat(), end.isoformat()]
    ):
        key = str(task_id)
        tasks[key] = (None if inspector is None else str(inspector), instant(deadline))
        moment = instant(answered)
        if moment is not None and moment <= as_of:  # answered after as_of: not yet, then
            answers.setdefault(key, []).append(moment)
    counted: dict[str | None, tuple[int, int]] = {}
    for key, (inspector, deadline) in tasks.items():
        first = min(answers.get(key, ()), default=None)
        due = first is not None or (deadline is not None and deadline < as_of)
        if not due:
            continue
        on_time = first is not None and (deadline is None or first <= deadline)
        tasks_so_far, on_time_so_far = counted.get(inspector, (0, 0))
        counted[inspector] = (tasks_so_far + 1, on_time_so_far + int(on_time))
    return counted


def evaluate(
    registry: Readable,
    start: date,
    end: date,
    by: str,
    as_of: datetime,
    score: ScoreSettings,
    labels: Mapping[str, str] | None = None,
) -> Evaluation:
    """The evaluation of the cases received from `start` to `end` (local dates,
    inclusive) as the registry stands, overdue measured at `as_of` (aware)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    rows = count_groups(registry, start, end, by, as_of)
    return evaluation(start, end, by, as_of, rows, score, labels)
