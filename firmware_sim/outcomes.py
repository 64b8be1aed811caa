"""What became of each report, live counters for progress, and the run's summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from firmware_sim.downlink import Reason
from firmware_sim.wire import MediaEntry

OutcomeStatus = Literal["accepted", "rejected", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One report's end: `accepted` (with a case number), `rejected` by the gateway (with
    its reason), or `failed` (no final answer: the link or the gateway stayed silent)."""

    report_id: str
    device_id: str
    status: OutcomeStatus
    case_no: str | None = None
    latency_ms: float | None = None  # first publish to the `accepted` ack
    reason: Reason | None = None
    published: int = 0  # times the envelope went out (1, plus re-sends after silence)
    resends: int = 0  # rounds of chunks re-sent on `incomplete`
    media: tuple[MediaEntry, ...] = ()

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
    failed: int
    in_flight: int
    latency_p50_ms: float | None


@dataclass
class Tally:
    """Running counts, updated by the terminals (one event loop, so no locks)."""

    terminals: int
    planned: int
    connected: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    in_flight: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def link_state(self, up: bool) -> None:
        self.connected += 1 if up else -1

    def started(self) -> None:
        self.in_flight += 1

    def first_sent(self) -> None:
        self.sent += 1

    def finished(self, outcome: Outcome, *, was_started: bool = True) -> None:
        if was_started:
            self.in_flight -= 1
        if outcome.status == "accepted":
            self.accepted += 1
            if outcome.latency_ms is not None:
                self.latencies_ms.append(outcome.latency_ms)
        elif outcome.status == "rejected":
            self.rejected += 1
        else:
            self.failed += 1

    def progress(self, elapsed_s: float) -> Progress:
        return Progress(
            elapsed_s=elapsed_s,
            terminals=self.terminals,
            connected=self.connected,
            planned=self.planned,
            sent=self.sent,
            accepted=self.accepted,
            rejected=self.rejected,
            failed=self.failed,
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
    failed: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    duration_s: float
    seed: int
    outcomes: tuple[Outcome, ...]

    @classmethod
    def of(
        cls, terminals: int, planned: int, outcomes: Sequence[Outcome], duration_s: float, seed: int
    ) -> Summary:
        latencies = [
            o.latency_ms for o in outcomes if o.status == "accepted" and o.latency_ms is not None
        ]
        return cls(
            terminals=terminals,
            planned=planned,
            sent=sum(1 for o in outcomes if o.published > 0),
            accepted=sum(1 for o in outcomes if o.status == "accepted"),
            rejected=sum(1 for o in outcomes if o.status == "rejected"),
            failed=sum(1 for o in outcomes if o.status == "failed"),
            latency_p50_ms=percentile(latencies, 50),
            latency_p95_ms=percentile(latencies, 95),
            latency_max_ms=max(latencies, default=None),
            duration_s=duration_s,
            seed=seed,
            outcomes=tuple(outcomes),
        )

    @property
    def all_accepted(self) -> bool:
        """Every planned report was accepted: the run's pass mark."""
        return self.accepted == self.planned and len(self.outcomes) == self.planned

    def to_json(self) -> dict[str, Any]:
        return {
            "terminals": self.terminals,
            "planned": self.planned,
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "latency_ms": {
                "p50": self.latency_p50_ms,
                "p95": self.latency_p95_ms,
                "max": self.latency_max_ms,
            },
            "duration_s": self.duration_s,
            "seed": self.seed,
            "all_accepted": self.all_accepted,
            "outcomes": [outcome.to_json() for outcome in self.outcomes],
        }
