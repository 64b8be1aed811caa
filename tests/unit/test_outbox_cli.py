"""`gateway outbox list` and `gateway outbox retry`: dead letters shown and replayed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.lifecycle import DeadLetter, Retry, Step
from gateway.store.outbox import READY_CURSOR, Backoff, Outbox
from tests.factories import accepted, registered

# Three reports, registered; the objects sink could store none of the first two.
R = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)]


def outbox_with_dead_letters(data_dir: Path) -> Outbox:
    outbox = Outbox(data_dir / "outbox.db")
    outbox.record(READY_CURSOR, 3, [accepted(report_id) for report_id in R])
    cases = [registered(report_id, f"E0102202611280000{n}") for n, report_id in enumerate(R)]
    outbox.apply(Step.REGISTRY, cases, Backoff())
    gone = "putting k: NoSuchBucket: The specified bucket does not exist"
    outbox.apply(Step.OBJECTS, [DeadLetter(R[0], gone), DeadLetter(R[1], gone)], Backoff())
    return outbox


def test_list_shows_each_dead_letter_with_the_servers_message(tmp_path: Path) -> None:
    outbox_with_dead_letters(tmp_path).close()

    table = CliRunner().invoke(main, ["outbox", "list", "--data-dir", str(tmp_path)])
    lines = CliRunner().invoke(
        main, ["outbox", "list", "--data-dir", str(tmp_path), "--json", "--sink", "objects"]
    )

    assert table.exit_code == 0, table.output
    assert "objects         1         0     2" in table.output  # R[2] pending, two dead
    assert table.output.count("NoSuchBucket: The specified bucket does not exist") == 2
    assert lines.exit_code == 0, lines.output
    letters = [json.loads(line) for line in lines.output.splitlines()]
    assert [(letter["report_id"], letter["sink"], letter["attempts"]) for letter in letters] == [
        (R[0], "objects", 1),
        (R[1], "objects", 1),
    ]


def test_retry_makes_dead_letters_pending_again(tmp_path: Path) -> None:
    outbox_with_dead_letters(tmp_path).close()

    one = CliRunner().invoke(
        main, ["outbox", "retry", "--data-dir", str(tmp_path), "--report", R[1]]
    )
    rest = CliRunner().invoke(main, ["outbox", "retry", "--data-dir", str(tmp_path)])

    assert one.output == "1 dead letters made pending again\n"
    assert rest.output == "1 dead letters made pending again\n"
    outbox = Outbox(tmp_path / "outbox.db")
    assert outbox.dead_letters() == []
    due = {item.report_id for item in outbox.due("objects", 10, now=time.time() + 1)}
    assert due == {R[0], R[1], R[2]}
    outbox.close()


def test_no_outbox_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["outbox", "list", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no outbox at" in result.output


def test_a_recovered_sink_sends_what_waited_in_backoff_at_once(tmp_path: Path) -> None:
    outbox = outbox_with_dead_letters(tmp_path)
    outbox.apply(Step.OBJECTS, [Retry(R[2], "SlowDown")], Backoff(first_s=300, max_s=300))
    assert outbox.due("objects", 10) == []

    assert outbox.expedite("objects") == 1
    assert [item.report_id for item in outbox.due("objects", 10)] == [R[2]]
    assert outbox.expedite("objects") == 0  # nothing left waiting; dead letters stay dead
    outbox.close()
