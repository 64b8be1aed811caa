"""The soak's checker: what the terminals were told against what the gateway stored.

    .venv/bin/python tools/soak_check.py --outcomes sim.json --data-dir DATA_DIR
    .venv/bin/python tools/soak_check.py --outcomes sim.json \\
        --registry postgresql://USER@HOST/DB --objects s3://BUCKET/PREFIX

Reads the simulator's `--json` file. Every report it saw `accepted` must be exactly one
case in the registry with the case number the terminal got (a verification of a task:
one row in `verifications`, when that table exists), with every media original in the
object store under its content address and of the SHA-256 the manifest gave. Every
report the simulator queued must have ended accepted (or rejected for a reason listed
with `--allow-rejection`). A case the terminals never saw accepted, a case number given
twice, or two case numbers for one report count as duplicated.

Prints `lost=N duplicated=N` (distinct report ids), then a line per problem; exits 1
unless both are 0. `check()` is the pure core; everything else reads stores.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from gateway.object_keys import original_key, report_key
from gateway.store.db import read_only

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ProblemKind = Literal["lost", "duplicated"]
VERIFICATION_COLUMNS = ("report_id", "case_no", "task_id")
# What the object store holds under a key: the SHA-256 of its bytes, or None if absent.
DigestOf = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class MediaRef:
    media_id: str
    mime: str
    sha256: str


@dataclass(frozen=True, slots=True)
class SimOutcome:
    """One report as the simulator ended it (`outcomes[]` of its JSON)."""

    report_id: str
    device_id: str
    status: str  # accepted, rejected, failed, queued
    case_no: str | None = None
    reason_code: str | None = None
    task_id: str | None = None
    media: tuple[MediaRef, ...] = ()


@dataclass(frozen=True, slots=True)
class CaseRow:
    report_id: str
    case_no: str


@dataclass(frozen=True, slots=True)
class VerificationRow:
    report_id: str
    case_no: str | None  # the verified task's case; None when the table has no such column
    task_id: str | None = None  # likewise


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    report_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<10} {self.report_id}  {self.detail}"


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: tuple[Problem, ...]
    accepted: int
    reports: int
    notes: tuple[str, ...] = ()

    def ids(self, kind: ProblemKind) -> set[str]:
        return {p.report_id for p in self.problems if p.kind == kind}

    @property
    def lost(self) -> int:
        return len(self.ids("lost"))

    @property
    def duplicated(self) -> int:
        return len(self.ids("duplicated"))

    @property
    def ok(self) -> bool:
        return not self.problems

    def headline(self) -> str:
        return f"lost={self.lost} duplicated={self.duplicated}"


# ---- the pure core -----------------------------------------------------------------------


@dataclass
class _Findings:
    problems: list[Problem] = field(default_factory=list)

    def lost(self, report_id: str, detail: str) -> None:
        self.problems.append(Problem("lost", report_id, detail))

    def duplicated(self, report_id: str, detail: str) -> None:
        self.problems.append(Problem("duplicated", report_id, detail))


def check(
    outcomes: Sequence[SimOutcome],
    cases: Sequence[CaseRow],
    digest_of: DigestOf,
    *,
    verifications: Sequence[VerificationRow] | None = None,
    allowed_rejections: Iterable[str] = (),
    planned: int | None = None,
) -> Verdict:
    """Compare the simulator's outcomes with the registry and the object store.

    `verifications` is None when the registry has no `verifications` table: reports made
    for a task are then ordinary cases. `planned` is the simulator's count of reports it
    meant to send; any without an outcome is lost."""
    found = _Findings()
    allowed = frozenset(allowed_rejections)
    by_report = _by_report(outcomes, found)
    cases_of: defaultdict[str, list[str]] = defaultdict(list)
    for row in cases:
        cases_of[row.report_id].append(row.case_no)
    checks_of: defaultdict[str, list[VerificationRow]] = defaultdict(list)
    for verification in verifications or ():
        checks_of[verification.report_id].append(verification)

    accepted = 0
    for report_id, outcome in by_report.items():
        if outcome.status != "accepted":
            if outcome.status == "rejected" and outcome.reason_code in allowed:
                continue
            reason = f" ({outcome.reason_code})" if outcome.reason_code else ""
            found.lost(report_id, f"ended {outcome.status}{reason}, not accepted")
            continue
        accepted += 1
        if outcome.task_id is not None and verifications is not None:
            _check_verification(outcome, checks_of[report_id], found)
            if cases_of[report_id]:
                found.duplicated(report_id, f"a verification, yet also case {cases_of[report_id]}")
        else:
            _check_case(outcome, cases_of[report_id], digest_of, found)
        _check_media(outcome, digest_of, found)

    _check_registry(by_report, cases, verifications or (), found)
    if planned is not None and planned > len(by_report):
        missing = planned - len(by_report)
        for n in range(missing):
            found.lost(f"<planned #{n + 1}>", f"{missing} planned reports have no outcome")
    return Verdict(tuple(found.problems), accepted=accepted, reports=len(by_report))


def _check_registry(
    by_report: Mapping[str, SimOutcome],
    cases: Sequence[CaseRow],
    verifications: Sequence[VerificationRow],
    found: _Findings,
) -> None:
    """Cases and verifications no terminal saw accepted; case numbers given twice."""
    rows = [(r.report_id, f"case {r.case_no}") for r in cases]
    rows += [(r.report_id, f"a verification of {r.case_no}") for r in verifications]
    for report_id, what in rows:
        outcome = by_report.get(report_id)
        if outcome is None or outcome.status != "accepted":
            saw = outcome.status if outcome else "never sent"
            found.duplicated(report_id, f"{what}, but the terminal saw {saw}")
    holders: defaultdict[str, set[str]] = defaultdict(set)
    for row in cases:
        holders[row.case_no].add(row.report_id)
    for case_no, report_ids in holders.items():
        if len(report_ids) > 1:
            for report_id in sorted(report_ids):
                found.duplicated(report_id, f"case number {case_no} shared by {len(report_ids)}")


def _by_report(outcomes: Sequence[SimOutcome], found: _Findings) -> dict[str, SimOutcome]:
    """One outcome per report id; two different case numbers for one report is a duplicate."""
    grouped: defaultdict[str, list[SimOutcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[outcome.report_id].append(outcome)
    chosen: dict[str, SimOutcome] = {}
    for report_id, group in grouped.items():
        numbers = sorted({o.case_no for o in group if o.case_no is not None})
        if len(numbers) > 1:
            found.duplicated(report_id, f"the terminal got case numbers {', '.join(numbers)}")
        accepted = [o for o in group if o.status == "accepted"]
        chosen[report_id] = accepted[0] if accepted else group[-1]
    return chosen


def _check_case(
    outcome: SimOutcome, numbers: list[str], digest_of: DigestOf, found: _Findings
) -> None:
    report_id = outcome.report_id
    if not numbers:
        found.lost(report_id, f"accepted as {outcome.case_no} but no case in the registry")
        return
    if len(numbers) > 1:
        found.duplicated(report_id, f"{len(numbers)} cases: {', '.join(numbers)}")
    if outcome.case_no not in numbers:
        found.duplicated(
            report_id, f"the terminal got {outcome.case_no}, the registry has {numbers[0]}"
        )
    if digest_of(report_key(report_id)) is None:
        found.lost(report_id, f"no {report_key(report_id)} in the object store")


def _check_verification(outcome: SimOutcome, rows: list[VerificationRow], found: _Findings) -> None:
    report_id = outcome.report_id
    if not rows:
        found.lost(report_id, f"verification for task {outcome.task_id} not in `verifications`")
        return
    if len(rows) > 1:
        found.duplicated(report_id, f"{len(rows)} rows in `verifications`")
    numbers = {row.case_no for row in rows if row.case_no is not None}
    if numbers and outcome.case_no not in numbers:
        found.duplicated(
            report_id, f"the terminal got {outcome.case_no}, verifications say {sorted(numbers)}"
        )
    tasks = {row.task_id for row in rows if row.task_id is not None}
    if tasks and outcome.task_id not in tasks:
        found.lost(report_id, f"answered task {outcome.task_id}, recorded for {sorted(tasks)}")


def _check_media(outcome: SimOutcome, digest_of: DigestOf, found: _Findings) -> None:
    for media in outcome.media:
        key = original_key(media.sha256, media.mime)
        stored = digest_of(key)
        if stored is None:
            found.lost(outcome.report_id, f"media {media.media_id}: {key} missing")
        elif stored != media.sha256.lower():
            found.lost(outcome.report_id, f"media {media.media_id}: {key} has SHA-256 {stored}")


# ---- reading the simulator's file ------------------------------------------------------------


def parse_outcomes(document: Mapping[str, Any]) -> tuple[list[SimOutcome], int | None]:
    """The outcomes of a simulator `--json` file, and its planned count if it has one."""
    outcomes = []
    for entry in document.get("outcomes", []):
        reason = entry.get("reason")
        outcomes.append(
            SimOutcome(
                report_id=entry["report_id"],
                device_id=entry["device_id"],
                status=entry["status"],
                case_no=entry.get("case_no"),
                reason_code=reason.get("code") if isinstance(reason, dict) else reason,
                task_id=entry.get("task_id"),
                media=tuple(
                    MediaRef(m["media_id"], m["mime"], m["sha256"]) for m in entry.get("media", [])
                ),
            )
        )
    planned = document.get("planned")
    return outcomes, planned if isinstance(planned, int) else None


# ---- reading the stores ----------------------------------------------------------------------


def sqlite_rows(path: Path) -> tuple[list[CaseRow], list[VerificationRow] | None]:
    with read_only(path) as conn:
        cases = [CaseRow(r, c) for r, c in conn.execute("SELECT report_id, case_no FROM cases")]
        return cases, _sqlite_verifications(conn)


def _sqlite_verifications(conn: sqlite3.Connection) -> list[VerificationRow] | None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(verifications)")}
    if "report_id" not in columns:
        return None  # the tasks work is not in this gateway
    rows = conn.execute(f"SELECT {_verification_columns(columns)} FROM verifications")  # noqa: S608
    return [VerificationRow(*row) for row in rows]


def _verification_columns(present: set[str]) -> str:
    """report_id, case_no, task_id: NULL for a column this schema does not have."""
    return ", ".join(name if name in present else "NULL" for name in VERIFICATION_COLUMNS)


def postgres_rows(dsn: str) -> tuple[list[CaseRow], list[VerificationRow] | None]:
    import psycopg  # noqa: PLC0415 - only for a PostgreSQL registry

    with psycopg.connect(dsn, connect_timeout=10) as conn:
        cases = [CaseRow(r, c) for r, c in conn.execute("SELECT report_id, case_no FROM cases")]
        columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'verifications' AND table_schema = current_schema()"
            )
        }
        if "report_id" not in columns:
            return cases, None
        rows = conn.execute(f"SELECT {_verification_columns(columns)} FROM verifications")  # noqa: S608
        # As text: PostgreSQL gives a uuid column (task_id) as a UUID, the terminals a string.
        return cases, [
            VerificationRow(str(report_id), _text(case_no), _text(task_id))
            for report_id, case_no, task_id in rows
        ]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def local_digests(root: Path) -> DigestOf:
    def digest_of(key: str) -> str | None:
        path = root.joinpath(*key.split("/"))
        if not path.is_file():
            return None
        with path.open("rb") as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()

    return digest_of


def s3_digests(url: str, client: S3Client | None = None) -> DigestOf:
    """Objects of `s3://BUCKET[/PREFIX]`; without a client, endpoint and credentials come
    the standard AWS ways."""
    import boto3  # noqa: PLC0415 - only for S3
    import botocore.exceptions  # noqa: PLC0415

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3 = client or boto3.client("s3")

    def digest_of(key: str) -> str | None:
        full = f"{prefix.rstrip('/')}/{key}" if prefix else key
        try:
            body = s3.get_object(Bucket=bucket, Key=full)["Body"]
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        digest = hashlib.sha256()
        with body:
            for block in body.iter_chunks(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    return digest_of


def run_check(
    outcomes_path: Path,
    registry: str,
    digest_of: DigestOf,
    allowed_rejections: Iterable[str] = (),
) -> Verdict:
    """Read the simulator's file and the registry (a SQLite path or a PostgreSQL URL),
    then `check()`."""
    outcomes, planned = parse_outcomes(orjson.loads(outcomes_path.read_bytes()))
    if registry.startswith("postgresql://"):
        cases, verifications = postgres_rows(registry)
    else:
        cases, verifications = sqlite_rows(Path(registry.removeprefix("sqlite://")))
    verdict = check(
        outcomes,
        cases,
        digest_of,
        verifications=verifications,
        allowed_rejections=allowed_rejections,
        planned=planned,
    )
    statuses = Counter(o.status for o in outcomes)
    notes = [
        "outcomes " + " ".join(f"{k}={v}" for k, v in sorted(statuses.items())),
        f"cases in the registry {len(cases)}",
    ]
    if verifications is None:
        notes.append("no `verifications` table: task reports checked as cases")
    return Verdict(verdict.problems, verdict.accepted, verdict.reports, tuple(notes))


def render(verdict: Verdict, limit: int = 50) -> str:
    lines = [verdict.headline()]
    lines += [str(problem) for problem in verdict.problems[:limit]]
    if len(verdict.problems) > limit:
        lines.append(f"... and {len(verdict.problems) - limit} more problems")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outcomes", type=Path, required=True, help="the simulator's --json")
    parser.add_argument("--data-dir", type=Path, help="the gateway's (embedded sinks)")
    parser.add_argument("--registry", help="sqlite:///PATH or postgresql://...")
    parser.add_argument("--objects", help="a directory or s3://BUCKET[/PREFIX]")
    parser.add_argument(
        "--allow-rejection",
        action="append",
        default=[],
        metavar="CODE",
        help="a rejection reason the scenario intends (repeatable); by default none",
    )
    args = parser.parse_args(argv)
    registry = args.registry or (args.data_dir and str(args.data_dir / "registry.db"))
    objects = args.objects or (args.data_dir and str(args.data_dir / "objects"))
    if not registry or not objects:
        parser.error("give --data-dir, or --registry and --objects")
    digests = s3_digests(objects) if objects.startswith("s3://") else local_digests(Path(objects))
    verdict = run_check(args.outcomes, registry, digests, args.allow_rejection)
    print(render(verdict))
    for note in verdict.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
