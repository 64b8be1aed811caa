"""The casework protocol, sans I/O: backends drive the case lifecycle over MQTT.

    cgt/v1/cases/commands/{account}   a casework backend → the gateway (its own topic only)
    cgt/v1/cases/answers/{account}    the gateway → that backend: one answer per command
    cgt/v1/cases/events/{case_no}     the gateway → every casework backend: each transition

`decode_command(topic, payload)` turns one message into a `CommandReceived` or a
`CommandRefused` with a stable reason code (`gateway.errors.Reason` for the wire's shape,
`workflow.RefusalCode` for the case's rules); it never raises for anything a peer can
send. The `encode_*` functions build the answers and events. Nothing here logs, touches
a socket or reads a clock: the gateway's clock is passed in (`to_command`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.cases.workflow import (
    BY_MAX,
    NOTE_MAX,
    UNIT_MAX,
    Action,
    CaseEvent,
    CaseLife,
    Command,
    Refusal,
    RefusalCode,
    parse_action,
)
from gateway.errors import REASON_TEXT, Reason

PREFIX: Final = "cgt/v1/cases"
# The tree's first level under cgt/v1/: no device may take this id (device_registry).
TREE: Final = "cases"
COMMANDS_SUBSCRIPTION: Final = f"{PREFIX}/commands/+"
EVENTS_SUBSCRIPTION: Final = f"{PREFIX}/events/#"

# A casework account's username: the prefix's dot keeps it apart from every device id
# (which holds no dot), so an account can never pass for a terminal or the reverse.
ACCOUNT_PREFIX: Final = "casework."
ACCOUNT_NAME_PATTERN: Final = r"[a-z0-9][a-z0-9_-]{0,31}"
_ACCOUNT = re.compile(re.escape(ACCOUNT_PREFIX) + ACCOUNT_NAME_PATTERN)
UUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_UUID = re.compile(UUID_PATTERN)
# `C|E`, a 4- or 5-digit class code, the local date, a serial of 6 or more digits.
CASE_NO_PATTERN: Final = r"^[CE][0-9]{18,24}$"
_CASE_NO = re.compile(CASE_NO_PATTERN)

COMMAND_BYTES: Final = 8 * 1024
UNITS_MAX: Final = 20
CONDITION_MAX: Final = 50

# What each refusal of the case's rules means, for docs/asyncapi.yaml and the answers.
REFUSAL_TEXT: Final[dict[RefusalCode, str]] = {
    RefusalCode.CASE_UNKNOWN: "no case of that number in the registry",
    RefusalCode.ACTION_UNKNOWN: "the action is not one of the lifecycle's",
    RefusalCode.ILLEGAL: "the case's state does not allow this action (the detail says what does)",
    RefusalCode.UNIT_REQUIRED: "a dispatch names the responsible unit(s)",
    RefusalCode.UNIT_NOT_DISPATCHED: "the unit named is not among those the case is dispatched to",
    RefusalCode.CONDITION_UNKNOWN: "no time limit: no such filing condition for this class",
    RefusalCode.FIELD_INVALID: "a field breaks the lifecycle's rules (length, a unit named twice)",
    RefusalCode.COMMAND_REUSED: "the command_id was used before for another case or action",
}
# The wire's own reasons a command can get (the rest of `Reason` is the terminals').
WIRE_REASONS: Final = (
    Reason.TOPIC_MALFORMED,
    Reason.PAYLOAD_TOO_LARGE,
    Reason.PAYLOAD_NOT_JSON,
    Reason.PAYLOAD_NOT_OBJECT,
    Reason.FIELD_MISSING,
    Reason.FIELD_INVALID,
    Reason.FIELD_UNKNOWN,
)


def reason_text() -> dict[str, str]:
    """Every code a casework answer may carry, with its meaning."""
    wire = {reason.value: REASON_TEXT[reason] for reason in WIRE_REASONS}
    return wire | {code.value: text for code, text in REFUSAL_TEXT.items()}


# ---- wire models ------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class CaseCommand(BaseModel):
    """One step asked of a case by a person at a casework backend."""

    model_config = _STRICT

    v: Literal[1] = Field(description="Protocol version.")
    command_id: Annotated[str, Field(pattern=UUID_PATTERN)] = Field(
        description="A UUID the backend makes per command: its idempotency key. Sent again, "
        "the command is not applied twice: the answer is `repeated`."
    )
    case_no: Annotated[str, Field(pattern=CASE_NO_PATTERN)] = Field(
        description="The case, e.g. E010220261128000042."
    )
    action: Annotated[str, Field(min_length=1, max_length=32)] = Field(
        description="One of: " + ", ".join(action.value for action in Action) + "."
    )
    units: Annotated[
        list[Annotated[str, Field(max_length=UNIT_MAX)]], Field(max_length=UNITS_MAX)
    ] = Field(
        default_factory=list,
        description="dispatch: the responsible units; return, extend, feedback: the unit "
        "acting (one it was dispatched to).",
    )
    note: Annotated[str, Field(max_length=NOTE_MAX)] | None = Field(
        default=None, description="Why, in words (a refusal's or a return's reason, …)."
    )
    by: Annotated[str, Field(min_length=1, max_length=BY_MAX)] = Field(
        description="The person who decided it (the backend's user), for the case's history."
    )
    condition: Annotated[str, Field(min_length=1, max_length=CONDITION_MAX)] | None = Field(
        default=None,
        description="file or dispatch: the filing condition (立案条件) the time limit follows.",
    )


class AnswerReason(BaseModel):
    model_config = _STRICT

    code: str = Field(description="A code of x-casework-reason-codes.")
    detail: str = Field(description="For people; may change.")
    field: str | None = Field(default=None, description="The field at fault, when one is.")


class CaseAnswer(BaseModel):
    """The gateway's answer to one command, on the sender's own answers topic."""

    model_config = _STRICT

    v: Literal[1] = 1
    command_id: str | None = Field(description="The command's, when it could be read.")
    case_no: str | None = Field(description="The command's case, when it could be read.")
    result: Literal["applied", "repeated", "refused"] = Field(
        description="`applied`: the transition was recorded (its event follows on the events "
        "topic); `repeated`: this command_id was applied before, nothing changed; `refused`: "
        "nothing changed, `reason` says why."
    )
    reason: AnswerReason | None = None
    state: str | None = Field(
        default=None, description="The case's state now (when the case exists)."
    )
    seq: int | None = Field(
        default=None,
        description="applied/repeated: the seq of the command's transition; refused: the "
        "case's last seq.",
    )
    deadline_at: datetime | None = Field(
        default=None, description="The case's handling deadline now, if one runs."
    )


class CaseEventMessage(BaseModel):
    """One recorded transition of a case, whoever made it (a backend, the CLI, the console)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    v: Literal[1] = 1
    case_no: str
    seq: int = Field(description="1, 2, … per case: deduplicate and order by (case_no, seq).")
    action: str
    from_: str = Field(alias="from", description="The state before.")
    to: str = Field(description="The state after: the case's state now.")
    at: datetime = Field(description="When the gateway applied it (the gateway's clock).")
    via: str = Field(description='"mqtt:<account>", "cli" or "console:<user>".')
    by: str | None
    units: list[str]
    note: str | None
    deadline_at: datetime | None


# ---- decoding -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandReceived:
    account: str
    command: CaseCommand
    action: Action

    @property
    def command_id(self) -> str:
        return self.command.command_id.lower()

    def to_command(self, at: datetime) -> Command:
        """The workflow's command, at the gateway's time `at`."""
        body = self.command
        return Command(
            case_no=body.case_no,
            action=self.action,
            at=at,
            via=f"mqtt:{self.account}",
            by=body.by,
            units=tuple(body.units),
            note=body.note,
            condition=body.condition,
            command_id=self.command_id,
        )


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """A command refused before the registry saw it. `account` is None when the topic is
    outside the grammar (nobody to answer); the ids are set when the payload had them."""

    topic: str
    code: str
    detail: str
    account: str | None = None
    command_id: str | None = None
    case_no: str | None = None
    field: str | None = None


def commands_topic(account: str) -> str:
    return f"{PREFIX}/commands/{account}"


def answers_topic(account: str) -> str:
    return f"{PREFIX}/answers/{account}"


def events_topic(case_no: str) -> str:
    return f"{PREFIX}/events/{case_no}"


def is_command_topic(topic: str) -> bool:
    return topic.startswith(f"{PREFIX}/commands/")


def is_account(username: str) -> bool:
    return _ACCOUNT.fullmatch(username) is not None


def parse_account(topic: str) -> str | None:
    """The account of a commands topic, or None outside the grammar."""
    head = f"{PREFIX}/commands/"
    if not topic.startswith(head):
        return None
    account = topic[len(head) :]
    return account if is_account(account) else None


def decode_command(topic: str, payload: bytes) -> CommandReceived | CommandRefused:
    """Decode one command message; never raises for peer input."""
    account = parse_account(topic)
    if account is None:
        shown = topic[:120]
        return CommandRefused(
            shown,
            Reason.TOPIC_MALFORMED.value,
            f"not {PREFIX}/commands/{ACCOUNT_PREFIX}<name>",
        )

    def refuse(
        code: str, detail: str, field: str | None = None, raw: object = None
    ) -> CommandRefused:
        command_id, case_no = _known_ids(raw)
        return CommandRefused(topic, code, detail[:300], account, command_id, case_no, field)

    if len(payload) > COMMAND_BYTES:
        return refuse(Reason.PAYLOAD_TOO_LARGE.value, f"{len(payload)} bytes > {COMMAND_BYTES}")
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return refuse(Reason.PAYLOAD_NOT_JSON.value, REASON_TEXT[Reason.PAYLOAD_NOT_JSON])
    if not isinstance(raw, dict):
        return refuse(Reason.PAYLOAD_NOT_OBJECT.value, REASON_TEXT[Reason.PAYLOAD_NOT_OBJECT])
    try:
        command = CaseCommand.model_validate_json(payload)
    except ValidationError as error:
        code, detail, field = _explain(error)
        return refuse(code, detail, field, raw)
    action = parse_action(command.action)
    if isinstance(action, Refusal):
        return refuse(action.code.value, action.detail, "action", raw)
    return CommandReceived(account, command, action)


def _known_ids(raw: object) -> tuple[str | None, str | None]:
    """The command_id and case_no of a payload refused for something else, when readable,
    so that the backend can tie the answer to its command."""
    if not isinstance(raw, dict):
        return None, None
    command_id, case_no = raw.get("command_id"), raw.get("case_no")
    known_id = (
        command_id.lower() if isinstance(command_id, str) and _UUID.fullmatch(command_id) else None
    )
    known_case = case_no if isinstance(case_no, str) and _CASE_NO.fullmatch(case_no) else None
    return known_id, known_case


_PYDANTIC_REASONS = {
    "missing": Reason.FIELD_MISSING,
    "extra_forbidden": Reason.FIELD_UNKNOWN,
    "json_invalid": Reason.PAYLOAD_NOT_JSON,
    "json_type": Reason.PAYLOAD_NOT_JSON,
}


def _explain(error: ValidationError) -> tuple[str, str, str | None]:
    first = error.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or None
    kind = first["type"]
    if not first["loc"] and kind in ("model_type", "model_attributes_type", "dict_type"):
        reason = Reason.PAYLOAD_NOT_OBJECT
    else:
        reason = _PYDANTIC_REASONS.get(kind, Reason.FIELD_INVALID)
    where = f"{location}: " if location else ""
    return reason.value, f"{where}{first['msg']}", location


# ---- encoding ----------------------------------------------------------------------------


def _dump(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json", by_alias=True))


def encode_applied(
    received: CommandReceived, event: CaseEvent, life: CaseLife, *, repeated: bool
) -> bytes:
    """`seq` is the command's own transition; `state` and `deadline_at` are the case's now
    (a repeated command may find the case moved on since)."""
    return _dump(
        CaseAnswer(
            command_id=received.command_id,
            case_no=event.case_no,
            result="repeated" if repeated else "applied",
            state=life.state.value,
            seq=event.seq,
            deadline_at=life.deadline_at,
        )
    )


def encode_refused(
    command_id: str | None,
    case_no: str | None,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    life: CaseLife | None = None,
) -> bytes:
    return _dump(
        CaseAnswer(
            command_id=command_id,
            case_no=case_no,
            result="refused",
            reason=AnswerReason(code=code, detail=detail, field=field),
            state=None if life is None else life.state.value,
            seq=None if life is None else life.seq,
            deadline_at=None if life is None else life.deadline_at,
        )
    )


def reply_to(refused: CommandRefused) -> tuple[str, bytes] | None:
    """The answer to a command refused on its face; None when no account can be answered."""
    if refused.account is None:
        return None
    body = encode_refused(
        refused.command_id, refused.case_no, refused.code, refused.detail, field=refused.field
    )
    return answers_topic(refused.account), body


def encode_event(event: CaseEvent) -> bytes:
    return _dump(
        CaseEventMessage(
            case_no=event.case_no,
            seq=event.seq,
            action=event.action.value,
            from_=event.from_state.value,
            to=event.to_state.value,
            at=event.at,
            via=event.via,
            by=event.by,
            units=list(event.units),
            note=event.note,
            deadline_at=event.deadline_at,
        )
    )
