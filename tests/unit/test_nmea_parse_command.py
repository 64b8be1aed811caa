"""`gateway nmea parse LOG`, the real command, over every receiver log of the shared test
data (../shared/testdata/nmea beside the checkout; tests/fixtures/nmea, its copy, where
that is missing), its JSON lines held against gpsd's decoding of the log (X.log.chk) by
the rules and with the exceptions of tests/unit/test_nmea_gpsd_agreement.py.

The command runs as an operator runs it, `python -m gateway` in a child process, so the
check covers the console entry, the file reading and the JSON the command prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands import json_lines
from tests.gnss import EPOCHS, SHARED_LOGS, UNSTAMPED, agreement, receiver_logs

SHARED = sorted(SHARED_LOGS.glob("*.log")) if SHARED_LOGS.is_dir() else receiver_logs()


def test_every_shared_log_is_checked() -> None:
    assert sorted(log.name for log in SHARED) == sorted(EPOCHS)


@pytest.mark.parametrize("log", SHARED, ids=lambda log: log.name)
def test_the_command_agrees_with_gpsd(log: Path) -> None:
    fixes = json_lines("nmea", "parse", str(log))
    result = agreement(log, fixes)
    assert result.problems == []
    assert result.epochs == EPOCHS[log.name]
    assert result.ours_only == UNSTAMPED.get(log.name, [])
    assert len(fixes) == EPOCHS[log.name] + len(UNSTAMPED.get(log.name, []))
