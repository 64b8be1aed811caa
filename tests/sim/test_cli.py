"""The `firmware-sim` command: usage, exit codes, progress and summary text."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from firmware_sim.cli import ProgressPrinter, format_progress, format_summary, main
from firmware_sim.downlink import Reason
from firmware_sim.outcomes import Outcome, Progress, Summary


def free_port() -> int:
    from gateway.harness.mosquitto import free_port as pick  # noqa: PLC0415 - tests may use the gateway's helpers

    return pick()


def test_help_names_the_run_command() -> None:
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    for option in ("--broker", "--terminals", "--reports-per-terminal", "--json", "--seed"):
        assert option in result.output


def test_a_bad_broker_url_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["run", "--broker", "http://example.org"])
    assert result.exit_code == 2
    assert "mqtt://HOST:PORT" in result.stderr


def test_an_unreachable_broker_fails_every_report(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    args = ["run", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--terminals", "2"]
    args += ["--reports-per-terminal", "2", "--connect-timeout-s", "0.3", "--json", str(out)]
    result = CliRunner(env={"FIRMWARE_SIM_PASSWORD": "s3cret"}).invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "failed        4" in result.stdout
    assert "NOT all accepted" in result.stdout
    assert "connected 0/2" in result.stderr  # the final progress line
    summary = json.loads(out.read_text())
    assert (summary["planned"], summary["sent"], summary["failed"]) == (4, 0, 4)
    assert {o["reason"]["code"] for o in summary["outcomes"]} == {"link.unreachable"}
    assert summary["settings"]["terminals"] == 2
    assert "password" not in summary["settings"]
    assert "s3cret" not in out.read_text() + result.output


def progress(accepted: int) -> Progress:
    return Progress(2.5, 3, 3, 6, 6, accepted, 0, 0, 6 - accepted, 812.4 if accepted else None)


def test_progress_is_a_line_a_tick_in_a_log_and_rewritten_on_a_tty() -> None:
    log = io.StringIO()
    printer = ProgressPrinter(log)
    printer(progress(0))
    printer(progress(4))
    printer.done()
    lines = log.getvalue().splitlines()
    assert lines == [format_progress(progress(0)), format_progress(progress(4))]
    assert "accepted 4" in lines[1]
    assert "p50 812 ms" in lines[1]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    printer = ProgressPrinter(tty)
    printer(progress(4))
    printer.done()
    assert tty.getvalue().startswith("\r\x1b[K[")
    assert tty.getvalue().endswith("\n")


def test_summary_lists_what_was_not_accepted() -> None:
    outcomes = [
        Outcome("r1", "sim-0001", "accepted", case_no="E1", latency_ms=100.0, published=1),
        Outcome("r2", "sim-0001", "rejected", reason=Reason("class.unknown", "no such class")),
    ]
    summary = Summary.of(1, outcomes, 1.25, seed=9)
    text = format_summary(summary)
    assert "rejected      1" in text
    assert "rejected sim-0001 r2  class.unknown: no such class" in text
    assert "p50 100  p95 100  max 100" in text
    assert text.endswith("NOT all accepted")
    assert not summary.all_accepted
