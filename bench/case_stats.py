"""Evaluation statistics (`gateway stats`) and the monthly bulletin on a month and a year
of generated cases, SQLite and PostgreSQL (issue 16).

The data: `bench/case_month.py`'s generator, one month (November 2026, 30,000 cases) and
one year (the twelve months to November 2026, 30,000 a month), each into a registry of
its own: SQLite in a scratch directory, PostgreSQL in a throwaway cluster (one database
each). The generator is timed too (cases a second, lifecycles, events, tasks and
verification reports included).

Measured, each median of 5 (after one untimed call), rounds alternating which side goes
first: `gateway.sinks.case_stats.evaluate` for the month and the year by unit, district,
class, inspector and day, against a baseline in the same run: the naive way, every
cohort case's lifecycle columns read into Python and counted there (then the same
`evaluation` of the counts; by inspector the same verification-task query). Both must
give the same figures, or the benchmark fails. Then the month's bulletin
(`gateway.bulletin`): gathering its figures (the statistics' share), its HTML (charts
included) and its PDF (WeasyPrint), each timed on its own.

    .venv/bin/python -m bench.case_stats                 # about 15 minutes on 2 cores
    .venv/bin/python -m bench.case_stats --no-sqlite-year --reports 5000   # quicker
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from bench.case_month import TZ, Made, generate, local_midnight, month_end, month_starts
from bench.common import cpu_model, summary, write
from gateway import logs
from gateway.cases.evaluation import Evaluation, class_labels, evaluation, zero_counts
from gateway.cases.settings import ScoreSettings
from gateway.normalize.codes import load_profile
from gateway.normalize.settings import CodesSettings
from gateway.settings import default_config_dir
from gateway.sinks.case_ledger import LIFE_FIELDS, instant
from gateway.sinks.case_registry_postgres import PostgresRegistry
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_stats import Readable, evaluate, verification_counts
from gateway.sinks.settings import PostgresSettings
from tests.servers import PostgresCluster

MONTH: Final = "2026-11"
REPORTS: Final = 30_000
ROUNDS: Final = 5
GROUPINGS: Final = ("unit", "district", "class", "inspector", "day")
SEED: Final = 16

# ---- the baseline: every cohort case's lifecycle into Python, counted there -----------------

_FACTS: Final = ("kind", "class_code", "district", "inspector_id", "received_day")
_NAIVE_SQL: Final = (
    f"SELECT {', '.join((*_FACTS, *LIFE_FIELDS))} FROM cases"  # noqa: S608 - constants
    " WHERE received_day BETWEEN ? AND ?"
)
_AT: Final = {name: len(_FACTS) + n for n, name in enumerate(LIFE_FIELDS)}


def naive_counts(
    registry: Readable, start: date, end: date, by: str, as_of: datetime
) -> dict[str | None, dict[str, int]]:
    """What `case_stats.count_groups` counts, the naive way."""
    rows = registry.query(_NAIVE_SQL, [start.isoformat(), end.isoformat()])
    a = _AT
    groups: dict[str | None, dict[str, int]] = {}
    for row in rows:
        state = row[a["state"]]
        if by == "unit":
            units = orjson.loads(row[a["units"]] or "[]")
            key = units[0] if units else None
        elif by == "class":
            key = f"{row[0]}:{row[1]}"
        elif by == "district":
            key = row[2]
        elif by == "inspector":
            key = row[3]
        else:
            key = str(row[4])
        handled = row[a["handled_at"]] is not None
        deadline = instant(row[a["deadline_at"]]) if state == "handling" else None
        past = deadline is not None and deadline < as_of
        due = state != "cancelled" and (handled or past)
        closed = state == "closed"
        counts = groups.get(key)
        if counts is None:
            counts = groups[key] = zero_counts()
        counts["reported"] += 1
        counts["accepted"] += row[a["accepted_at"]] is not None
        counts["filed"] += row[a["filed_at"]] is not None
        counts["dispatched"] += row[a["dispatched_at"]] is not None
        counts["handled"] += handled
        counts["closed"] += closed
        counts["reworked"] += row[a["reworks"]] > 0
        counts["extended"] += row[a["extensions"]] > 0
        counts["returned"] += row[a["returns"]] > 0
        counts["suspended"] += row[a["suspensions"]] > 0
        counts["cancelled"] += state == "cancelled"
        counts["self_handled"] += row[a["self_handled"]] == 1
        counts["overdue"] += due and (row[a["handled_on_time"]] == 0 or past)
        counts["due"] += due
        counts["closed_on_time"] += closed and row[a["closed_on_time"]] == 1
        counts["handled_on_time"] += due and handled and row[a["handled_on_time"]] == 1
        counts["reworked_due"] += due and row[a["reworks"]] > 0
        counts["extended_due"] += due and row[a["extensions"]] > 0
    if by == "inspector":
        for key, (tasks, on_time) in verification_counts(registry, start, end, as_of).items():
            counts = groups.setdefault(key, zero_counts())
            counts["verification_tasks"] += tasks
            counts["verified_on_time"] += on_time
    return groups


def naive_evaluate(
    registry: Readable,
    start: date,
    end: date,
    by: str,
    as_of: datetime,
    score: ScoreSettings,
    labels: Mapping[str, str] | None = None,
) -> Evaluation:
    rows = naive_counts(registry, start, end, by, as_of)
    return evaluation(start, end, by, as_of, rows, score, labels)


# ---- measuring ---------------------------------------------------------------------------


def timed_pair(
    first: Callable[[], Any], second: Callable[[], Any]
) -> tuple[list[float], list[float]]:
    """ms of each, ROUNDS times, alternating which goes first; one untimed call each."""
    first()
    second()
    a: list[float] = []
    b: list[float] = []
    for round_ in range(ROUNDS):
        order = ((first, a), (second, b)) if round_ % 2 == 0 else ((second, b), (first, a))
        for call, samples in order:
            began = time.perf_counter()
            call()
            samples.append((time.perf_counter() - began) * 1000)
    return a, b


def timed(call: Callable[[], Any]) -> list[float]:
    call()
    samples = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def labels(*, short: bool = False) -> dict[str, str]:
    """The class labels `gateway stats` (full) and `gateway bulletin` (short) use."""
    codes = CodesSettings()
    profile = load_profile(codes.dir or default_config_dir() / "codes", codes.profile)
    return class_labels(profile, short=short)


def measure_stats(
    registry: Readable, start: date, end: date, as_of: datetime, named: Mapping[str, str]
) -> dict[str, Any]:
    score = ScoreSettings()
    found: dict[str, Any] = {}
    for by in GROUPINGS:
        mine = named if by == "class" else None
        fast = evaluate(registry, start, end, by, as_of, score, mine)
        slow = naive_evaluate(registry, start, end, by, as_of, score, mine)
        if fast.as_json() != slow.as_json():
            raise AssertionError(f"by {by}: evaluate and the naive count disagree")
        indexed, naive = timed_pair(
            lambda by=by, mine=mine: evaluate(registry, start, end, by, as_of, score, mine),  # type: ignore[misc]
            lambda by=by, mine=mine: naive_evaluate(registry, start, end, by, as_of, score, mine),  # type: ignore[misc]
        )
        found[by] = {
            "groups": len(fast.groups),
            "cases": fast.total.counts["reported"],
            "evaluate_ms": summary(indexed),
            "naive_ms": summary(naive),
            "naive_over_evaluate": summary(naive)["median"] / summary(indexed)["median"],
        }
    return found


def measure_bulletin(registry: Any, month: str, out: Path) -> dict[str, Any]:
    from gateway.bulletin import content, render  # noqa: PLC0415

    first = date.fromisoformat(f"{month}-01")
    as_of = local_midnight(month_end(first)).astimezone(UTC)
    score = ScoreSettings()
    short = labels(short=True)  # as `gateway bulletin` names classes

    def gather() -> Any:
        return content.gather(
            registry, first, as_of, score, city="南通市", issuer="南通市数字化城市管理监督指挥中心",
            labels={"class": short},
        )  # fmt: skip

    made = gather()
    document = render.html(made, TZ)
    pdf_path = out.with_suffix(".pdf")
    result: dict[str, Any] = {
        "gather_ms": summary(timed(gather)),
        "html_ms": summary(timed(lambda: render.html(made, TZ))),
        "pdf_ms": summary(timed(lambda: render.pdf(document, pdf_path))),
        "html_bytes": len(document.encode()),
        "pdf_bytes": pdf_path.stat().st_size,
    }
    out.with_suffix(".html").write_text(document, encoding="utf-8")
    whole = result["gather_ms"]["median"] + result["html_ms"]["median"] + result["pdf_ms"]["median"]
    result["stats_share_of_pdf"] = result["gather_ms"]["median"] / whole
    result["stats_share_of_html"] = result["gather_ms"]["median"] / (
        result["gather_ms"]["median"] + result["html_ms"]["median"]
    )
    return result


# ---- a run -----------------------------------------------------------------------------------


def period(month: str, months: int) -> tuple[date, date, datetime]:
    """The local dates of `months` months to `month`, and their end (as_of)."""
    firsts = month_starts(month, months)
    last = month_end(firsts[-1])
    return firsts[0], last - timedelta(days=1), local_midnight(last).astimezone(UTC)


def one(
    registry: Any, months: int, reports: int, named: Mapping[str, str], log: Callable[[str], None]
) -> tuple[Made, dict[str, Any]]:
    made = generate(registry, MONTH, reports, months=months, seed=SEED, progress=log)
    log(f"generated {made.cases} cases in {made.seconds:.1f} s; measuring")
    start, end, as_of = period(MONTH, months)
    return made, measure_stats(registry, start, end, as_of, named)


def run(
    reports: int = REPORTS, *, sqlite_year: bool = True, postgres_year: bool = True
) -> dict[str, Any]:
    named = labels()
    log = print
    result: dict[str, Any] = {
        "benchmark": "case_stats",
        "cpu_model": cpu_model(),
        "month": MONTH,
        "reports_a_month": reports,
        "rounds": ROUNDS,
        "sqlite_version": sqlite3.sqlite_version,
    }
    plans = {"month": 1, **({"year": 12} if sqlite_year else {})}
    with tempfile.TemporaryDirectory(prefix="cgt-bench-case-stats-") as scratch:
        root = Path(scratch)
        sqlite: dict[str, Any] = {}
        for name, months in plans.items():
            registry = SqliteRegistry(root / name / "registry.db", TZ)
            try:
                made, stats = one(registry, months, reports, named, log)
                sqlite[name] = {"generated": made.as_dict(), "stats": stats}
                if name == "month":
                    sqlite[name]["bulletin"] = measure_bulletin(
                        registry, MONTH, root / "sqlite-bulletin"
                    )
            finally:
                registry.close()
        result["sqlite"] = sqlite
        with PostgresCluster() as postgres:
            pg: dict[str, Any] = {"version": postgres.version}
            for name, months in {"month": 1, **({"year": 12} if postgres_year else {})}.items():
                dsn = postgres.create_database(f"case_stats_{name}")
                book = PostgresRegistry(dsn, PostgresSettings(pool_max=4), TZ, logs.get("b"))
                try:
                    made, stats = one(book, months, reports, named, log)
                    pg[name] = {"generated": made.as_dict(), "stats": stats}
                    if name == "month":
                        pg[name]["bulletin"] = measure_bulletin(
                            book, MONTH, root / "postgres-bulletin"
                        )
                finally:
                    book.close()
            result["postgres"] = pg
    write("case_stats", result)
    return result


def table(result: Mapping[str, Any]) -> str:
    """The medians as the docs' table rows: evaluate, naive, naive ÷ evaluate."""
    lines = []
    for engine in ("sqlite", "postgres"):
        for name, measured in result.get(engine, {}).items():
            if not isinstance(measured, dict) or "stats" not in measured:
                continue
            made = measured["generated"]
            lines.append(
                f"{engine} {name}: {made['cases']} cases generated in {made['seconds']:.1f} s"
                f" ({made['cases_per_s']:,.0f}/s)"
            )
            for by, found in measured["stats"].items():
                lines.append(
                    f"  {by:9} evaluate {found['evaluate_ms']['median']:9.1f} ms"
                    f"  naive {found['naive_ms']['median']:9.1f} ms"
                    f"  × {found['naive_over_evaluate']:.1f}  ({found['groups']} groups)"
                )
            if "bulletin" in measured:
                b = measured["bulletin"]
                lines.append(
                    f"  bulletin gather {b['gather_ms']['median']:.0f} ms, html"
                    f" {b['html_ms']['median']:.0f} ms, pdf {b['pdf_ms']['median']:.0f} ms"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.case_stats")
    parser.add_argument("--reports", type=int, default=REPORTS, help="cases a month")
    parser.add_argument("--no-sqlite-year", action="store_true")
    parser.add_argument("--no-postgres-year", action="store_true")
    args = parser.parse_args(argv)
    result = run(
        args.reports, sqlite_year=not args.no_sqlite_year, postgres_year=not args.no_postgres_year
    )
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(table(result))


if __name__ == "__main__":
    main()
