"""The soak checker's verdicts on constructed outcomes and stores (no servers)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import orjson
import pytest
from soak_check import (
    CaseRow,
    MediaRef,
    SimOutcome,
    VerificationRow,
    check,
    local_digests,
    parse_outcomes,
    run_check,
    sqlite_rows,
)

from gateway.object_keys import original_key, report_key

PHOTO = b"\xff\xd8 a photo \xff\xd9"
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()
VOICE = b"#!AMR\n a voice note"
VOICE_SHA = hashlib.sha256(VOICE).hexdigest()
MEDIA = (
    MediaRef("m-photo", "image/jpeg", PHOTO_SHA),
    MediaRef("m-voice", "audio/amr", VOICE_SHA),
)


def accepted(report_id: str, case_no: str, task_id: str | None = None) -> SimOutcome:
    return SimOutcome(report_id, "sim-0001", "accepted", case_no, task_id=task_id, media=MEDIA)


def store(*report_ids: str) -> dict[str, str]:
    """An object store holding both originals and each report's normalized JSON."""
    objects = {
        original_key(PHOTO_SHA, "image/jpeg"): PHOTO_SHA,
        original_key(VOICE_SHA, "audio/amr"): VOICE_SHA,
    }
    for report_id in report_ids:
        objects[report_key(report_id)] = "0" * 64
    return objects


def test_everything_in_its_place_is_clean() -> None:
    outcomes = [accepted("r1", "E1"), accepted("r2", "E2")]
    verdict = check(outcomes, [CaseRow("r1", "E1"), CaseRow("r2", "E2")], store("r1", "r2").get)
    assert (verdict.lost, verdict.duplicated, verdict.accepted) == (0, 0, 2)
    assert verdict.headline() == "lost=0 duplicated=0"
    assert verdict.ok


def test_accepted_without_a_case_is_lost() -> None:
    verdict = check(
        [accepted("r1", "E1"), accepted("r2", "E2")], [CaseRow("r1", "E1")], store("r1", "r2").get
    )
    assert verdict.headline() == "lost=1 duplicated=0"
    assert verdict.ids("lost") == {"r2"}


@pytest.mark.parametrize(
    ("missing", "corrupt"),
    [
        pytest.param(original_key(VOICE_SHA, "audio/amr"), None, id="original missing"),
        pytest.param(None, original_key(PHOTO_SHA, "image/jpeg"), id="original corrupt"),
        pytest.param(report_key("r1"), None, id="normalized report missing"),
    ],
)
def test_an_object_missing_or_different_loses_the_report(
    missing: str | None, corrupt: str | None
) -> None:
    objects = store("r1")
    if missing:
        del objects[missing]
    if corrupt:
        objects[corrupt] = "f" * 64
    verdict = check([accepted("r1", "E1")], [CaseRow("r1", "E1")], objects.get)
    assert (verdict.lost, verdict.duplicated) == (1, 0)


@pytest.mark.parametrize("status", ["failed", "queued", "rejected"])
def test_a_report_that_never_ended_accepted_is_lost(status: str) -> None:
    outcomes = [
        accepted("r1", "E1"),
        SimOutcome("r2", "sim-0001", status, reason_code="server.retry_later"),
    ]
    verdict = check(outcomes, [CaseRow("r1", "E1")], store("r1").get)
    assert verdict.headline() == "lost=1 duplicated=0"
    assert verdict.ids("lost") == {"r2"}


def test_a_rejection_the_scenario_intends_is_not_lost() -> None:
    outcomes = [SimOutcome("r1", "sim-0001", "rejected", reason_code="report.bad_class")]
    intended = check(outcomes, [], store().get, allowed_rejections=["report.bad_class"])
    assert intended.ok
    assert check(outcomes, [], store().get, allowed_rejections=["other"]).lost == 1


def test_planned_reports_without_an_outcome_are_lost() -> None:
    verdict = check([accepted("r1", "E1")], [CaseRow("r1", "E1")], store("r1").get, planned=3)
    assert (verdict.lost, verdict.duplicated) == (2, 0)


def test_a_case_no_terminal_saw_accepted_is_duplicated() -> None:
    cases = [CaseRow("r1", "E1"), CaseRow("stray", "E2")]
    verdict = check([accepted("r1", "E1")], cases, store("r1").get)
    assert verdict.headline() == "lost=0 duplicated=1"
    assert verdict.ids("duplicated") == {"stray"}


def test_two_cases_for_one_report_are_duplicated() -> None:
    cases = [CaseRow("r1", "E1"), CaseRow("r1", "E2")]
    verdict = check([accepted("r1", "E1")], cases, store("r1").get)
    assert (verdict.lost, verdict.duplicated) == (0, 1)


def test_a_case_number_the_registry_does_not_have_is_duplicated() -> None:
    verdict = check([accepted("r1", "E9")], [CaseRow("r1", "E1")], store("r1").get)
    assert (verdict.lost, verdict.duplicated) == (0, 1)


def test_two_case_numbers_told_to_the_terminal_are_duplicated() -> None:
    outcomes = [accepted("r1", "E1"), accepted("r1", "E2")]
    verdict = check(outcomes, [CaseRow("r1", "E1")], store("r1").get)
    assert (verdict.lost, verdict.duplicated) == (0, 1)


def test_one_case_number_for_two_reports_is_duplicated() -> None:
    outcomes = [accepted("r1", "E1"), accepted("r2", "E1")]
    cases = [CaseRow("r1", "E1"), CaseRow("r2", "E1")]
    verdict = check(outcomes, cases, store("r1", "r2").get)
    assert verdict.ids("duplicated") == {"r1", "r2"}


def test_a_verification_is_checked_in_its_table_once_there_is_one() -> None:
    task = accepted("v1", "E1", task_id="t1")
    rows = [VerificationRow("v1", "E1", "t1")]
    assert check([task], [], store().get, verifications=rows).ok
    assert check([task], [], store().get, verifications=[]).ids("lost") == {"v1"}
    twice = [VerificationRow("v1", "E1", "t1"), VerificationRow("v1", "E1", "t1")]
    assert check([task], [], store().get, verifications=twice).ids("duplicated") == {"v1"}
    other_case = [VerificationRow("v1", "E7", "t1")]
    assert check([task], [], store().get, verifications=other_case).duplicated == 1
    other_task = [VerificationRow("v1", "E1", "t2")]
    assert check([task], [], store().get, verifications=other_task).lost == 1
    also_a_case = check([task], [CaseRow("v1", "E2")], store("v1").get, verifications=rows)
    assert also_a_case.ids("duplicated") == {"v1"}
    stray = [*rows, VerificationRow("v9", "E1", "t1")]
    assert check([task], [], store().get, verifications=stray).ids("duplicated") == {"v9"}
    # Without the table (the tasks work not deployed) it is an ordinary case.
    assert check([task], [CaseRow("v1", "E1")], store("v1").get, verifications=None).ok


def test_verifications_read_from_whatever_columns_the_table_has(tmp_path: Path) -> None:
    registry = tmp_path / "registry.db"
    with sqlite3.connect(registry) as conn:
        conn.execute("CREATE TABLE cases (report_id TEXT, case_no TEXT)")
        conn.execute("CREATE TABLE verifications (report_id TEXT, case_no TEXT)")
        conn.execute("INSERT INTO verifications VALUES ('v1', 'E1')")
    conn.close()
    assert sqlite_rows(registry) == ([], [VerificationRow("v1", "E1", None)])
    with sqlite3.connect(registry) as conn:
        conn.execute("DROP TABLE verifications")
    conn.close()
    assert sqlite_rows(registry) == ([], None)


def test_the_simulator_file_and_a_sqlite_registry_and_directory(tmp_path: Path) -> None:
    """The I/O edges: the simulator's JSON, a registry file, hashed objects on disk."""
    media = [
        {"media_id": "m-photo", "kind": "photo", "mime": "image/jpeg", "bytes": len(PHOTO),
         "sha256": PHOTO_SHA, "chunk_bytes": 65536},
    ]  # fmt: skip
    document = {
        "planned": 2,
        "outcomes": [
            {"report_id": "r1", "device_id": "sim-0001", "status": "accepted",
             "case_no": "E1", "reason": None, "media": media},
            {"report_id": "r2", "device_id": "sim-0001", "status": "failed", "case_no": None,
             "reason": {"code": "link.timeout", "message": "", "field": None}, "media": []},
        ],
    }  # fmt: skip
    path = tmp_path / "sim.json"
    path.write_bytes(orjson.dumps(document))
    outcomes, planned = parse_outcomes(document)
    assert planned == 2
    assert outcomes[1].reason_code == "link.timeout"
    assert outcomes[0].media == (MediaRef("m-photo", "image/jpeg", PHOTO_SHA),)

    registry = tmp_path / "registry.db"
    with sqlite3.connect(registry) as conn:
        conn.execute("CREATE TABLE cases (report_id TEXT, case_no TEXT)")
        conn.execute("INSERT INTO cases VALUES ('r1', 'E1')")
    conn.close()
    objects = tmp_path / "objects"
    for key, data in ((original_key(PHOTO_SHA, "image/jpeg"), PHOTO), (report_key("r1"), b"{}")):
        (objects / key).parent.mkdir(parents=True, exist_ok=True)
        (objects / key).write_bytes(data)

    verdict = run_check(path, str(registry), local_digests(objects))
    assert verdict.headline() == "lost=1 duplicated=0"
    assert verdict.ids("lost") == {"r2"}
    (objects / original_key(PHOTO_SHA, "image/jpeg")).write_bytes(b"bit rot")
    assert run_check(path, str(registry), local_digests(objects)).ids("lost") == {"r1", "r2"}
