"""What became of each report, live counters for progress, and the run's summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from firmware_sim.downlink import Reason
from firmware_sim.wire import MediaEntry

OutcomeStatus = Literal["accepted", "rejected", "failed", "queued"]
FINAL: frozenset[OutcomeStatus] = frozenset({"accepted", "rejected"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a report: `accepted` (with a case number) or `rejected` by the
    gateway (with its reason) are final; `failed` ends one try (silence, a dead link,
    `server.retry_later`, a `limit.*` code) and the report stays queued; `queued` is a
    report still on the terminal's disk when the run ended, with the last try's reason."""

    report_id: str
    device_id: str
    status: OutcomeStatus
    case_no: str | None = None
    latency_ms: float | None = None  # first publish to the `accepted` ack
    reason: Reason | None = None
    published: int = 0  # times the envelope went out (1, plus re-sends after silence)
    resends: int = 0  # rounds of chunks re-sent on `incomplete`
    media: tuple[MediaEntry, ...] = ()
    task_id: str | None = None  # set on a verification report

    def to_json(self) -> dict[str, Any]:
        reason = self.reason
        return {
            "report_id": self.report_id,
            "device_id": self.device_id,
            "status": self.status,
            "case_no": self.case_no,
            "latency_ms": self.latency_ms,
            "reason": (
                {"code": reason.code, "message": reason.message, "field": reason.field}
                if reason
                else None
            ),
            "published": self.published,
            "resends": self.resends,
            "media": [entry.to_json() for entry in self.media],
            "task_id": self.task_id,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    elapsed_s: float
    terminals: int
    connected: int
    planned: int
    sent: int
    accepted: int
    rejected: int
    queued: int
    in_flight: int
    latency_p50_ms: float | None


@dataclass
class Tally:
    """Running counts, updated by the terminals (one event loop, so no locks)."""

    terminals: int
    planned: int = 0  # reports made, or found queued from a previous run
    connected: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0  # tries that ended without a final answer
    in_flight: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # When any terminal last got a final answer (its clock): a saturated gateway that
    # still answers someone keeps every terminal waiting, not only the lucky ones.
    last_answer_at: float = 0.0
    _sent: set[str] = field(default_factory=set)

    @property
    def sent_ids(self) -> frozenset[str]:
        return frozenset(self._sent)

    @property
    def sent(self) -> int:
        """Reports whose envelope went out at least once."""
        return len(self._sent)

    @property
    def queued(self) -> int:
        """Reports waiting on the terminals' disks for a final answer (in flight included)."""
        return self.planned - self.accepted - self.rejected

    def link_state(self, up: bool) -> None:
        self.connected += 1 if up else -1

    def planned_one(self) -> None:
        self.planned += 1

    def started(self) -> None:
        self.in_flight += 1

    def first_sent(self, report_id: str) -> None:
        self._sent.add(report_id)

    def finished(self, outcome: Outcome) -> None:
        self.in_flight -= 1
        if outcome.status == "accepted":
            self.accepted += 1
            if outcome.latency_ms is not None:
                self.latencies_ms.append(outcome.latency_ms)
        elif outcome.status == "rejected":
            self.rejected += 1
        else:
            self.retries += 1

    def progress(self, elapsed_s: float) -> Progress:
        return Progress(
            elapsed_s=elapsed_s,
            terminals=self.terminals,
            connected=self.connected,
            planned=self.planned,
            sent=self.sent,
            accepted=self.accepted,
            rejected=self.rejected,
            queued=self.queued,
            in_flight=self.in_flight,
            latency_p50_ms=percentile(self.latencies_ms, 50),
        )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: a value that was actually observed; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    terminals: int
    planned: int
    sent: int
    accepted: int
    rejected: int
    queued: int  # still on a terminal's disk: the next run sends them
    failed: int  # never made: the broker was unreachable from the start
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    duration_s: float
    seed: int
    outcomes: tuple[Outcome, ...]
    retries: int = 0
    faults: dict[str, int] = field(default_factory=dict)  # what went wrong on purpose
    tasks: dict[str, int] = field(default_factory=dict)  # received, answered

    @classmethod
    def of(
        cls,
        terminals: int,
        outcomes: Sequence[Outcome],
        duration_s: float,
        seed: int,
        *,
        sent_ids: frozenset[str] = frozenset(),
        retries: int = 0,
        faults: dict[str, int] | None = None,
        tasks: dict[str, int] | None = None,
    ) -> Summary:
        """The run's summary from every report's last outcome (one per report)."""
        latencies = [
            o.latency_ms for o in outcomes if o.status == "accepted" and o.latency_ms is not None
        ]
        return cls(
            terminals=terminals,
            planned=len(outcomes),
            sent=sum(1 for o in outcomes if o.published > 0 or o.report_id in sent_ids),
            accepted=sum(1 for o in outcomes if o.status == "accepted"),
            rejected=sum(1 for o in outcomes if o.status == "rejected"),
            queued=sum(1 for o in outcomes if o.status == "queued"),
            failed=sum(1 for o in outcomes if o.status == "failed"),
            latency_p50_ms=percentile(latencies, 50),
            latency_p95_ms=percentile(latencies, 95),
            latency_max_ms=max(latencies, default=None),
            duration_s=duration_s,
            seed=seed,
            outcomes=tuple(outcomes),
            retries=retries,
            faults=faults or {},
            tasks=tasks or {},
        )

    @property
    def all_accepted(self) -> bool:
        """Every report was accepted: the run's pass mark."""
        return self.accepted == self.planned

    def to_json(self) -> dict[str, Any]:
        return {
            "terminals": self.terminals,
            "planned": self.planned,
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "queued": self.queued,
            "failed": self.failed,
            "retries": self.retries,
            "latency_ms": {
                "p50": self.latency_p50_ms,
                "p95": self.latency_p95_ms,
                "max": self.latency_max_ms,
            },
            "duration_s": self.duration_s,
            "seed": self.seed,
            "all_accepted": self.all_accepted,
            "faults": self.faults,
            "tasks": self.tasks,
            "outcomes": [outcome.to_json() for outcome in self.outcomes],
        }
