"""A report's lifecycle, written once: its states, the steps that work on it, and every
transition between them, as tables (the way h11 keeps its state machine in `_state.py`).

    received ─┬─ chunks missing ─▶ waiting_for_chunks ─┬─ chunks complete ─▶ ready
              └─ chunks complete ─▶ ready              └─ upload expired ──▶ expired
    ready ──── accepted, with media ─▶ deriving ── derived ──▶ normalized
    ready ──── accepted ─────────────────────────────────────▶ normalized
    normalized ─ registered ─▶ registered          (ready | deriving | normalized)
    ready ──── upload failed ─▶ waiting_for_chunks       ── rejected ─▶ rejected

The inbox holds a report up to `ready`; the outbox from there on. A transition into a
state schedules the steps that work on a report in that state: one delivery row per
report and step, retried on its own (`media` makes the derivatives; `registry` the case
number, which the other three carry; `objects`, `bus` and `ack` send the report out).
A step ends each report of its batch in one typed result: the report moved on
(`Derived`, `Registered`, `Rejected`), or the step is simply done with it
(`Delivered`), or it must try again (`Retry`) or give up (`DeadLetter`). The stores carry
these tables out (the SQLite outbox today; a PostgreSQL one takes the same tables) and
never spell a state or a step of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from gateway.normalize.model import NormalizedReport


class ReportState(StrEnum):
    RECEIVED = "received"  # its envelope is in the inbox
    WAITING_FOR_CHUNKS = "waiting_for_chunks"  # some chunks of its media have not come
    READY = "ready"  # everything is there: queued for the pipeline
    EXPIRED = "expired"  # its upload did not finish in time; dropped (the terminal re-sends)
    DERIVING = "deriving"  # its photos and voice notes are being made into derivatives
    NORMALIZED = "normalized"  # its normalized report is complete, waiting for a case number
    REGISTERED = "registered"  # it has a case number
    REJECTED = "rejected"  # refused, with a reason the terminal is told


class Event(StrEnum):
    CHUNKS_MISSING = "chunks_missing"
    CHUNKS_COMPLETE = "chunks_complete"
    UPLOAD_FAILED = "upload_failed"  # an assembled file did not match its manifest
    UPLOAD_EXPIRED = "upload_expired"
    ACCEPTED_WITH_MEDIA = "accepted_with_media"
    ACCEPTED = "accepted"
    DERIVED = "derived"
    REGISTERED = "registered"
    REJECTED = "rejected"


class Step(StrEnum):
    """The work done on a report after the verdict, each with a delivery row of its own."""

    MEDIA = "media"  # derivatives of its photos and voice notes (not a sink, kept the same way)
    REGISTRY = "registry"  # its case number
    OBJECTS = "objects"  # originals, derivatives and the normalized report, stored
    BUS = "bus"  # the normalized report, published for backends
    ACK = "ack"  # the terminal told: accepted with the case number, or rejected and why


STEPS = tuple(Step)


class DeliveryState(StrEnum):
    PENDING = "pending"  # due at its `next_at`
    DONE = "done"
    DEAD = "dead"  # failed for good: a dead letter, until an operator revives it


@dataclass(frozen=True, slots=True)
class Transition:
    to: ReportState
    schedules: tuple[Step, ...] = ()


_S, _E = ReportState, Event
TRANSITIONS: Mapping[tuple[ReportState, Event], Transition] = MappingProxyType(
    {
        (_S.RECEIVED, _E.CHUNKS_MISSING): Transition(_S.WAITING_FOR_CHUNKS),
        (_S.RECEIVED, _E.CHUNKS_COMPLETE): Transition(_S.READY),
        (_S.WAITING_FOR_CHUNKS, _E.CHUNKS_COMPLETE): Transition(_S.READY),
        (_S.WAITING_FOR_CHUNKS, _E.UPLOAD_EXPIRED): Transition(_S.EXPIRED),
        (_S.READY, _E.UPLOAD_FAILED): Transition(_S.WAITING_FOR_CHUNKS),
        (_S.READY, _E.ACCEPTED_WITH_MEDIA): Transition(_S.DERIVING, (Step.MEDIA,)),
        (_S.READY, _E.ACCEPTED): Transition(_S.NORMALIZED, (Step.REGISTRY,)),
        (_S.READY, _E.REJECTED): Transition(_S.REJECTED, (Step.ACK,)),
        (_S.DERIVING, _E.DERIVED): Transition(_S.NORMALIZED, (Step.REGISTRY,)),
        (_S.DERIVING, _E.REJECTED): Transition(_S.REJECTED, (Step.ACK,)),
        (_S.NORMALIZED, _E.REGISTERED): Transition(
            _S.REGISTERED, (Step.OBJECTS, Step.BUS, Step.ACK)
        ),
        (_S.NORMALIZED, _E.REJECTED): Transition(_S.REJECTED, (Step.ACK,)),
    }
)

# The state each step works on: its results are events of a report in that state. `ack`
# answers both ends, accepted or rejected, and changes neither.
WORKS_ON: Mapping[Step, ReportState] = MappingProxyType(
    {
        Step.MEDIA: _S.DERIVING,
        Step.REGISTRY: _S.NORMALIZED,
        Step.OBJECTS: _S.REGISTERED,
        Step.BUS: _S.REGISTERED,
    }
)

# The states the outbox keeps (the inbox keeps the ones before).
OUTBOX_STATES = (_S.DERIVING, _S.NORMALIZED, _S.REGISTERED, _S.REJECTED)
# States no event leaves: the report's fate is settled.
FINAL_STATES = frozenset(
    state for state in ReportState if not any(key[0] is state for key in TRANSITIONS)
)


class IllegalTransition(ValueError):
    """An event the table does not allow in that state: a bug, never a peer's doing."""


def transition(state: ReportState, event: Event) -> Transition:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"{event} in state {state}") from None


# ---- what the pipeline's stages say about each report -----------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """The ready stage's verdict: normalized (without its case number, and without its
    media's derivatives while `with_media`)."""

    report_id: str
    device_id: str
    report: NormalizedReport
    with_media: bool

    @property
    def event(self) -> Event:
        return Event.ACCEPTED_WITH_MEDIA if self.with_media else Event.ACCEPTED


@dataclass(frozen=True, slots=True)
class Rejected:
    """Refused, by the ready stage or a step; `message` is for the terminal's inspector."""

    report_id: str
    reason: str  # a stable reason code (gateway.errors.Reason, or a media stage's)
    message: str
    device_id: str = ""  # known to the ready stage; a step's rows know it already

    event = Event.REJECTED


@dataclass(frozen=True, slots=True)
class Derived:
    """The media step made every derivative: the report is complete."""

    report_id: str
    report: NormalizedReport

    event = Event.DERIVED


@dataclass(frozen=True, slots=True)
class Registered:
    """The registry step gave the report its case number."""

    report_id: str
    case_no: str
    report: NormalizedReport  # with its case number

    event = Event.REGISTERED


@dataclass(frozen=True, slots=True)
class Delivered:
    """The step is done with the report; the report's state does not change."""

    report_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    """The step failed for now (a timeout, a sink restarting): again after the backoff."""

    report_id: str
    error: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The step can never succeed as things stand: kept until an operator revives it."""

    report_id: str
    error: str


Verdict = Accepted | Rejected
# Results that move the report on: the step is done with it, and the report takes the event.
Moved = Derived | Registered | Rejected
StepResult = Moved | Delivered | Retry | DeadLetter


# What each step may say of a report: the media step completes it (or rejects it), the
# registry gives it its case (or rejects it), the rest only deliver it. Any step may fail.
RESULTS_OF: Mapping[Step, tuple[type[StepResult], ...]] = MappingProxyType(
    {
        Step.MEDIA: (Derived, Rejected, Retry, DeadLetter),
        Step.REGISTRY: (Registered, Rejected, Retry, DeadLetter),
        Step.OBJECTS: (Delivered, Retry, DeadLetter),
        Step.BUS: (Delivered, Retry, DeadLetter),
        Step.ACK: (Delivered, Retry, DeadLetter),
    }
)


def check_result(step: Step, result: StepResult) -> None:
    """A result its step cannot give is a bug: refused before it touches a store (a media
    step saying `Delivered` would leave its report deriving for ever)."""
    if not isinstance(result, RESULTS_OF[step]):
        raise IllegalTransition(f"the {step} step cannot end a report in {type(result).__name__}")


def delivery_after(result: StepResult) -> DeliveryState:
    """Where a step's delivery row goes after a result."""
    if isinstance(result, Retry):
        return DeliveryState.PENDING
    if isinstance(result, DeadLetter):
        return DeliveryState.DEAD
    return DeliveryState.DONE
