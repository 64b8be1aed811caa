"""`gateway outbox list` and `gateway outbox retry`: dead letters shown and replayed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.store.outbox import READY_CURSOR, Backoff, Outbox, Processed


def outbox_with_dead_letters(data_dir: Path) -> Outbox:
    outbox = Outbox(data_dir / "outbox.db")
    verdicts = [
        Processed(f"r-{n}", "tz-0001", normalized=b"{}", needs_media=False) for n in range(3)
    ]
    outbox.record(READY_CURSOR, 3, verdicts)
    outbox.registered([(f"r-{n}", f"E0102202611280000{n}", b"{}") for n in range(3)])
    outbox.dead(
        "objects", ["r-0", "r-1"], "putting k: NoSuchBucket: The specified bucket does not exist"
    )
    return outbox


def test_list_shows_each_dead_letter_with_the_servers_message(tmp_path: Path) -> None:
    outbox_with_dead_letters(tmp_path).close()

    table = CliRunner().invoke(main, ["outbox", "list", "--data-dir", str(tmp_path)])
    lines = CliRunner().invoke(
        main, ["outbox", "list", "--data-dir", str(tmp_path), "--json", "--sink", "objects"]
    )

    assert table.exit_code == 0, table.output
    assert "objects         1         0     2" in table.output  # r-2 pending, two dead
    assert table.output.count("NoSuchBucket: The specified bucket does not exist") == 2
    assert lines.exit_code == 0, lines.output
    letters = [json.loads(line) for line in lines.output.splitlines()]
    assert [(letter["report_id"], letter["sink"], letter["attempts"]) for letter in letters] == [
        ("r-0", "objects", 1),
        ("r-1", "objects", 1),
    ]


def test_retry_makes_dead_letters_pending_again(tmp_path: Path) -> None:
    outbox_with_dead_letters(tmp_path).close()

    one = CliRunner().invoke(
        main, ["outbox", "retry", "--data-dir", str(tmp_path), "--report", "r-1"]
    )
    rest = CliRunner().invoke(main, ["outbox", "retry", "--data-dir", str(tmp_path)])

    assert one.output == "1 dead letters made pending again\n"
    assert rest.output == "1 dead letters made pending again\n"
    outbox = Outbox(tmp_path / "outbox.db")
    assert outbox.dead_letters() == []
    due = {item.report_id for item in outbox.due("objects", 10, now=time.time() + 1)}
    assert due == {"r-0", "r-1", "r-2"}
    outbox.close()


def test_no_outbox_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["outbox", "list", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no outbox at" in result.output


def test_a_recovered_sink_sends_what_waited_in_backoff_at_once(tmp_path: Path) -> None:
    outbox = outbox_with_dead_letters(tmp_path)
    outbox.retry("objects", ["r-2"], "SlowDown", Backoff(first_s=300, max_s=300))
    assert outbox.due("objects", 10) == []

    assert outbox.expedite("objects") == 1
    assert [item.report_id for item in outbox.due("objects", 10)] == ["r-2"]
    assert outbox.expedite("objects") == 0  # nothing left waiting; dead letters stay dead
    outbox.close()
