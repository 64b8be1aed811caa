"""Store and forward on disk: what a terminal queued survives the simulator's restart."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from firmware_sim.queue import INLINE_MAX_BYTES, BlobStore, ReportQueue
from firmware_sim.reports import (
    CHINA_TIME,
    ComposedReport,
    MediaKit,
    ReportPlanner,
    compose,
    load_codes,
)

DEVICE = "sim-0007"


def make_reports(kit: MediaKit, count: int, seed: int = 3) -> list[ComposedReport]:
    rng = random.Random(seed)
    planner = ReportPlanner(load_codes(), rng, voice_share=1.0)
    now = datetime(2026, 11, 28, 9, 0, tzinfo=CHINA_TIME)
    return [compose(planner.next(now), kit, "INS-0007", 4096, rng) for _ in range(count)]


def reopen(root: Path) -> ReportQueue:
    """A fresh process's view: new objects, nothing cached."""
    return ReportQueue(root, DEVICE, BlobStore(root / "blobs"))


def test_a_restart_finds_every_report_in_order_byte_for_byte(
    tmp_path: Path, small_kit: MediaKit
) -> None:
    reports = make_reports(small_kit, 3)
    queue = reopen(tmp_path)
    entries = [queue.put(report) for report in reports]
    queue.mark_uploaded(entries[1])

    loaded = reopen(tmp_path).load()

    assert [entry.report_id for entry in loaded] == [r.envelope.report_id for r in reports]
    assert [entry.uploaded for entry in loaded] == [False, True, False]
    for entry, report in zip(loaded, reports, strict=True):
        assert entry.report.envelope == report.envelope
        for media_id, file in report.files.items():
            assert entry.report.files[media_id].read() == file.read()
            assert entry.report.files[media_id].sha256 == file.sha256


def test_bulky_parts_are_stored_once_and_shared(tmp_path: Path, small_kit: MediaKit) -> None:
    queue = reopen(tmp_path)
    for report in make_reports(small_kit, 6):
        queue.put(report)
    blobs = list((tmp_path / "blobs").iterdir())
    # At most the kit's base pictures and its voice track parts, never one per report.
    assert 0 < len(blobs) < 6 * 2
    assert all(path.stat().st_size > INLINE_MAX_BYTES for path in blobs)


def test_finish_journals_the_answer_and_drops_the_entry(
    tmp_path: Path, small_kit: MediaKit
) -> None:
    queue = reopen(tmp_path)
    first, second = (queue.put(r) for r in make_reports(small_kit, 2))
    queue.finish(first, {"report_id": first.report_id, "status": "accepted", "case_no": "E1"})
    assert [entry.report_id for entry in reopen(tmp_path).load()] == [second.report_id]
    journal = (tmp_path / DEVICE / "journal.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["case_no"] for line in journal] == ["E1"]
    # A new entry never reuses a finished one's number.
    assert reopen(tmp_path).put(make_reports(small_kit, 1, seed=9)[0]).seq == second.seq + 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: b"not json", id="not json"),
        pytest.param(lambda raw: raw.replace(b'"sha256":"', b'"sha256":"0', 1), id="wrong sha256"),
    ],
)
def test_a_damaged_entry_is_set_aside_and_the_rest_still_load(
    tmp_path: Path, small_kit: MediaKit, damage: object
) -> None:
    queue = reopen(tmp_path)
    first, second = (queue.put(r) for r in make_reports(small_kit, 2))
    path = tmp_path / DEVICE / f"{first.seq:010d}.json"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]

    again = reopen(tmp_path)
    assert [entry.report_id for entry in again.load()] == [second.report_id]
    assert len(again.damaged) == 1
    assert path.with_suffix(".damaged").exists()


def test_unreferenced_blobs_are_collected(tmp_path: Path, small_kit: MediaKit) -> None:
    queue = reopen(tmp_path)
    entries = [queue.put(r) for r in make_reports(small_kit, 2)]
    for entry in entries:
        queue.finish(entry, {"report_id": entry.report_id})
    store = BlobStore(tmp_path / "blobs")
    assert store.collect(queue.blob_refs()) > 0
    assert list((tmp_path / "blobs").iterdir()) == []
