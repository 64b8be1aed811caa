"""A case's lifecycle in the registry: its state beside the case, and every transition.

The rules are `gateway.cases.workflow`'s; this module only keeps what they decide. Each
case row carries its lifecycle (`LIFE_COLUMNS`: state, units, time limit, deadline,
the moments of each step, counters) so statistics are one grouped scan of `cases`, and
`case_events` keeps every transition with who, when, through what, the units and a
note. A command is applied under the case row's lock (SQLite: the write transaction;
PostgreSQL: `FOR UPDATE`), its event written in the same transaction, so two
dispatchers acting at once cannot both move a case from the same state. A command
carrying a `command_id` is applied once: sent again, it gets the event it made.

Events are published for backend subscribers from here too: `published_at` stays NULL
until the broker acknowledged the event (`gateway/runtime/case_events.py`).

The SQL is the common subset of SQLite and PostgreSQL with `?` placeholders; instants
are given as the registry stores them (`stamp`: SQLite text in UTC, PostgreSQL
`timestamptz`) and read back by `instant`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import orjson

from gateway.cases.workflow import (
    Action,
    CaseEvent,
    CaseLife,
    Command,
    Refusal,
    RefusalCode,
    State,
    Timekeeper,
    decide,
)

# The lifecycle's columns on `cases`, in the order of `CaseLife`'s fields after its
# first three (case_no, kind, class_code are the case's own).
LIFE_FIELDS: Final = tuple(f.name for f in fields(CaseLife))[3:]
LIFE_COLUMNS: Final = ", ".join(LIFE_FIELDS)
_INSTANTS: Final = frozenset(name for name in LIFE_FIELDS if name.endswith("_at"))
_FLAGS: Final = frozenset({"handled_on_time", "closed_on_time", "self_handled"})
# The namespace of verification tasks' ids (uuid5 of case number and event seq).
_TASKS: Final = uuid.UUID("6f1c8a52-93f4-4e0b-9d8e-4c2b7a1e5d30")
_TEXTS: Final = frozenset({"condition", "time_limit", "resume_to"})


def _columns(text: str, moment: str, integer: str) -> str:
    """The lifecycle's ALTER TABLEs in an engine's types; plus `lead_unit` (the first unit
    of the current dispatch, which statistics by unit count a case under; none after a
    return until it is dispatched again) and `received_day` (the local date of arrival,
    which they group and filter on)."""
    count = f"{integer} NOT NULL DEFAULT 0"
    special = {
        "state": f"{text} NOT NULL DEFAULT 'reported'",
        "units": f"{text} NOT NULL DEFAULT '[]'",
        "handled_on_time": integer,
        "closed_on_time": integer,
    }
    typed = {
        name: special.get(name)
        or (moment if name in _INSTANTS else text if name in _TEXTS else count)
        for name in LIFE_FIELDS
    }
    typed |= {"lead_unit": text, "received_day": text}
    return "".join(f"ALTER TABLE cases ADD COLUMN {name} {kind};\n" for name, kind in typed.items())


# What statistics group and filter on, and the console's lists by state and deadline.
_INDEXES = """
    CREATE INDEX cases_received_day ON cases (received_day);
    CREATE INDEX cases_state ON cases (state, id);
    CREATE INDEX cases_running ON cases (deadline_at) WHERE state = 'handling';
    CREATE INDEX case_events_unpublished ON case_events (id) WHERE published_at IS NULL;
    CREATE INDEX case_events_case_no ON case_events (case_no, seq);
    CREATE INDEX case_events_at ON case_events (at)
"""

SQLITE_MIGRATION: Final = (
    _columns("TEXT", "TEXT", "INTEGER")
    + """
    CREATE TABLE case_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id     INTEGER NOT NULL REFERENCES cases (id),
        case_no     TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        action      TEXT NOT NULL,
        from_state  TEXT NOT NULL,
        to_state    TEXT NOT NULL,
        at          TEXT NOT NULL,
        via         TEXT NOT NULL,
        by_name     TEXT,
        units       TEXT NOT NULL DEFAULT '[]',
        note        TEXT CHECK (length(note) <= 500),
        deadline_at TEXT,
        command_id  TEXT UNIQUE,
        published_at TEXT,
        UNIQUE (case_id, seq)
    );
    """
    + _INDEXES
)

POSTGRES_MIGRATION: Final = (
    _columns("text", "timestamptz", "integer")
    + """
    CREATE TABLE case_events (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        case_id     bigint NOT NULL REFERENCES cases (id),
        case_no     text NOT NULL,
        seq         integer NOT NULL,
        action      text NOT NULL,
        from_state  text NOT NULL,
        to_state    text NOT NULL,
        at          timestamptz NOT NULL,
        via         text NOT NULL,
        by_name     text,
        units       text NOT NULL DEFAULT '[]',
        note        text CHECK (char_length(note) <= 500),
        deadline_at timestamptz,
        command_id  text UNIQUE,
        published_at timestamptz,
        UNIQUE (case_id, seq)
    );
    """
    + _INDEXES
)

EVENT_COLUMNS: Final = (
    "case_no, seq, action, from_state, to_state, at, via, by_name, units, note, deadline_at,"
    " command_id"
)


class Execute(Protocol):
    """One statement inside the caller's transaction: `?` placeholders, rows back."""

    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


Stamp = Callable[[datetime], Any]


def instant(value: Any) -> datetime | None:
    """An instant as either registry returns it (text or timestamptz), aware, in UTC."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC)


def local_day(moment: datetime, tz: ZoneInfo) -> str:
    """The registry's `received_day`: the local date of arrival, as the case number has it."""
    return moment.astimezone(tz).date().isoformat()


@dataclass(frozen=True, slots=True)
class Applied:
    """A command's outcome: the event it made (or made before, when sent again)."""

    event: CaseEvent
    life: CaseLife
    repeated: bool = False


def life_of(case_no: str, kind: str, class_code: str, row: Sequence[Any]) -> CaseLife:
    """A `CaseLife` from the `LIFE_COLUMNS` of a row."""
    values: dict[str, Any] = {}
    for name, value in zip(LIFE_FIELDS, row, strict=True):
        if name in _INSTANTS:
            values[name] = instant(value)
        elif name in _FLAGS:
            values[name] = None if value is None else bool(value)
        elif name == "units":
            values[name] = tuple(orjson.loads(value or "[]"))
        elif name in ("state", "resume_to"):
            values[name] = None if value is None else State(value)
        else:
            values[name] = value
    return CaseLife(case_no, kind, class_code, **values)


def life_params(life: CaseLife, stamp: Stamp) -> list[Any]:
    """`LIFE_COLUMNS`' values of a lifecycle, as the registry stores them."""
    params: list[Any] = []
    for name in LIFE_FIELDS:
        value = getattr(life, name)
        if value is None:
            params.append(None)
        elif name in _INSTANTS:
            params.append(stamp(value))
        elif name in _FLAGS:
            params.append(int(value))
        elif name == "units":
            params.append(orjson.dumps(list(value)).decode())
        elif name in ("state", "resume_to"):
            params.append(str(value))
        else:
            params.append(value)
    return params


_LIFE_SELECT = f"SELECT id, case_no, kind, class_code, {LIFE_COLUMNS} FROM cases"  # noqa: S608 - constants
_LIFE_UPDATE = (
    "UPDATE cases SET "  # noqa: S608 - constants
    + ", ".join(f"{name} = ?" for name in LIFE_FIELDS)
    + ", lead_unit = ? WHERE id = ?"
)
_EVENT_INSERT = f"INSERT INTO case_events (case_id, {EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: E501, S608 - constants
_EVENT_SELECT = f"SELECT id, {EVENT_COLUMNS} FROM case_events"  # noqa: S608 - constants


def read_life(execute: Execute, case_no: str, *, lock: str = "") -> tuple[int, CaseLife] | None:
    rows = execute(f"{_LIFE_SELECT} WHERE case_no = ?{lock}", (case_no,))
    if not rows:
        return None
    case_id, number, kind, class_code, *life = rows[0]
    return int(case_id), life_of(str(number), str(kind), str(class_code), life)


def apply(
    execute: Execute, command: Command, clock: Timekeeper, stamp: Stamp, *, lock: str = ""
) -> Applied | Refusal:
    """Apply a command inside the caller's transaction; `lock` is PostgreSQL's
    " FOR UPDATE" (SQLite's write transaction already holds the whole file)."""
    if command.command_id is not None:
        earlier = event_by_command(execute, command.command_id)
        if earlier is not None:
            if (earlier.case_no, earlier.action) != (command.case_no, command.action):
                return Refusal(
                    RefusalCode.COMMAND_REUSED,
                    f"command_id {command.command_id} was used for {earlier.action.value}"
                    f" on case {earlier.case_no}",
                )
            found = read_life(execute, command.case_no)
            assert found is not None  # noqa: S101 - an event's case exists (foreign key)
            return Applied(earlier, found[1], repeated=True)
    found = read_life(execute, command.case_no, lock=lock)
    if found is None:
        return Refusal(RefusalCode.CASE_UNKNOWN, f"no case {command.case_no}")
    case_id, life = found
    decided = decide(life, command, clock)
    if isinstance(decided, Refusal):
        return decided
    nxt, event = decided
    lead = nxt.units[0] if nxt.units else None
    execute(_LIFE_UPDATE, [*life_params(nxt, stamp), lead, case_id])
    execute(_EVENT_INSERT, [case_id, *event_params(event, stamp)])
    if event.action is Action.FEEDBACK:
        _ask_for_verification(execute, event, clock.verify_deadline(event.at), stamp)
    return Applied(event, nxt)


def verification_task_id(case_no: str, seq: int) -> str:
    """The verification task of a feedback: the same id however often it is applied."""
    return str(uuid.uuid5(_TASKS, f"{case_no}/{seq}"))


def _ask_for_verification(
    execute: Execute, event: CaseEvent, deadline: datetime, stamp: Stamp
) -> None:
    """A handled case goes back to the inspector who reported it, for the on-site check
    (核查): a verification task to that terminal, in the same transaction as the feedback,
    which the gateway's task dispatcher publishes."""
    units = "、".join(event.units)
    note = f"核查: {units} 处置反馈" + (f": {event.note}" if event.note else "")
    execute(
        "INSERT INTO tasks (task_id, case_no, device_id, kind, lat, lon, deadline, note)"
        " SELECT ?, case_no, device_id, 'verify', lat, lon, ?, ? FROM cases"
        " WHERE case_no = ? AND device_id IS NOT NULL",
        (verification_task_id(event.case_no, event.seq), stamp(deadline), note[:500],
         event.case_no),
    )  # fmt: skip


def event_params(event: CaseEvent, stamp: Stamp) -> list[Any]:
    return [
        event.case_no,
        event.seq,
        event.action.value,
        event.from_state.value,
        event.to_state.value,
        stamp(event.at),
        event.via,
        event.by,
        orjson.dumps(list(event.units)).decode(),
        event.note,
        None if event.deadline_at is None else stamp(event.deadline_at),
        event.command_id,
    ]


def event_of(row: Sequence[Any]) -> CaseEvent:
    """A `CaseEvent` from a row of `EVENT_COLUMNS`."""
    case_no, seq, action, before, after, at, via, by, units, note, deadline, command_id = row
    moment = instant(at)
    assert moment is not None  # noqa: S101 - NOT NULL
    return CaseEvent(
        case_no=str(case_no),
        seq=int(seq),
        action=Action(action),
        from_state=State(before),
        to_state=State(after),
        at=moment,
        via=str(via),
        by=by,
        units=tuple(orjson.loads(units or "[]")),
        note=note,
        deadline_at=instant(deadline),
        command_id=command_id,
    )


def event_by_command(execute: Execute, command_id: str) -> CaseEvent | None:
    rows = execute(f"{_EVENT_SELECT} WHERE command_id = ?", (command_id,))
    return event_of(rows[0][1:]) if rows else None


def history(execute: Execute, case_no: str) -> list[CaseEvent]:
    rows = execute(f"{_EVENT_SELECT} WHERE case_no = ? ORDER BY seq", (case_no,))
    return [event_of(row[1:]) for row in rows]


def unpublished(execute: Execute, limit: int) -> list[tuple[int, CaseEvent]]:
    """Events not yet acknowledged by the broker, oldest first, with their ids."""
    rows = execute(f"{_EVENT_SELECT} WHERE published_at IS NULL ORDER BY id LIMIT ?", (limit,))
    return [(int(row[0]), event_of(row[1:])) for row in rows]


# A case past its deadline at the instant `?` (red): still in handling, the deadline gone
# by. Suspended cases are not: their clock stands still. The `cases_running` index serves it.
PAST_DEADLINE: Final = "(state = 'handling' AND deadline_at < ?)"


@dataclass(frozen=True, slots=True)
class Overdue:
    """A case past its handling deadline (red), for the lists of the console and bulletin."""

    case_no: str
    class_code: str
    units: tuple[str, ...]
    deadline_at: datetime
    received_day: date


def overdue(execute: Execute, now: datetime, stamp: Stamp, limit: int) -> list[Overdue]:
    """Cases in handling past their deadline, the longest overdue first."""
    rows = execute(
        "SELECT case_no, class_code, units, deadline_at, received_day FROM cases"  # noqa: S608 - constants
        f" WHERE {PAST_DEADLINE} ORDER BY deadline_at LIMIT ?",
        (stamp(now), limit),
    )
    found = []
    for case_no, class_code, units, deadline, day in rows:
        moment = instant(deadline)
        assert moment is not None  # noqa: S101 - the WHERE clause
        found.append(
            Overdue(
                str(case_no),
                str(class_code),
                tuple(orjson.loads(units)),
                moment,
                date.fromisoformat(str(day)),
            )
        )
    return found


def fill_received_days(execute: Execute, tz: ZoneInfo) -> int:
    """Cases registered before `received_day` existed get theirs (once, at open)."""
    rows = execute("SELECT id, received_at FROM cases WHERE received_day IS NULL")
    for case_id, received in rows:
        moment = instant(received)
        assert moment is not None  # noqa: S101 - NOT NULL
        execute("UPDATE cases SET received_day = ? WHERE id = ?", (local_day(moment, tz), case_id))
    return len(rows)
