"""Shared by the GNSS tests: the real receiver logs, gpsd's decoding of them, sentence framing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

# The GPSD project's regression logs with gpsd's own output beside each (X.log.chk), copied
# into the checkout (tests/fixtures/nmea) so a clean clone has them; CGT_NMEA_LOGS points
# elsewhere.
LOGS = Path(os.environ.get("CGT_NMEA_LOGS", Path(__file__).resolve().parent / "fixtures/nmea"))


def nmea(body: str) -> str:
    """`body` framed as a sentence with its right checksum."""
    return f"${body}*{reduce(lambda acc, char: acc ^ ord(char), body, 0):02X}"


def receiver_logs() -> list[Path]:
    logs = sorted(LOGS.glob("*.log"))
    assert logs, f"no receiver logs in {LOGS} (set CGT_NMEA_LOGS)"
    return logs


def log_lines(log: Path) -> list[str]:
    """A log's sentences, comments left out."""
    text = log.read_bytes().decode("ascii", errors="replace")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@dataclass
class GpsdDecoding:
    """gpsd's TPV reports of one log: those stamped with a time, by time, in order, and
    those without a time (gpsd reports a fix before it knows the date)."""

    stamped: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unstamped: list[dict[str, Any]] = field(default_factory=list)


def gpsd_decoding(log: Path) -> GpsdDecoding:
    decoding = GpsdDecoding()
    chk = log.with_name(log.name + ".chk")
    for line in chk.read_text(encoding="ascii", errors="replace").splitlines():
        if not line.startswith('{"class":"TPV"'):
            continue
        report = json.loads(line)
        if report.get("mode", 0) < 2:
            continue
        if "time" in report:
            decoding.stamped.setdefault(report["time"], []).append(report)
        else:
            decoding.unstamped.append(report)
    return decoding
