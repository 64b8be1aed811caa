"""How many of gpsd's fixes our NMEA decoder reproduces, per log and in total.

    .venv/bin/python tools/nmea_agreement.py [-v] [DIR_OR_LOG ...]

Each `X.log` needs gpsd's decoding of it beside it, `X.log.chk` (gpsd's regression output:
the sentences, each followed by the JSON reports gpsd sent after reading it). A gpsd fix
is a time at which gpsd sent a TPV with mode >= 2; it is reproduced when
`fixes_from_lines` over the log gives a fix at that time whose latitude and longitude are
within 1e-6 degree of one of gpsd's TPVs at that time (gpsd reports several per epoch, as
it merges the epoch's sentences). A gpsd build with the 1024-week bug (gpsd 3.22 moves
dates before 2020-10-23 forward by 1024 weeks) stamps old logs 7168 days late; such a
time also counts when ours is exactly 1024 weeks earlier, and the line says so.

Prints one line per log and a total; `-v` adds gpsd's fixes we miss and our fixes gpsd
does not have. Directories are searched for `*.log`; the default is the shared test data.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.protocols.nmea import fixes_from_lines

DEFAULT = Path("/work/shared/testdata/nmea")
DEGREES = 1e-6
GPS_WEEKS_1024 = timedelta(weeks=1024)


@dataclass
class Agreement:
    log: str
    gpsd: int = 0  # times gpsd reported a fix at
    reproduced: int = 0
    shifted: int = 0  # of them, matched 1024 weeks apart
    ours: int = 0  # our timed fixes
    missed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def log_lines(log: Path) -> list[str]:
    text = log.read_bytes().decode("ascii", errors="replace")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def gpsd_fixes(chk: Path) -> dict[str, list[dict[str, Any]]]:
    """gpsd's TPVs with a time and mode >= 2, by time."""
    fixes: dict[str, list[dict[str, Any]]] = {}
    for line in chk.read_bytes().decode("ascii", errors="replace").splitlines():
        if not line.startswith('{"class":"TPV"'):
            continue
        report = json.loads(line)
        if report.get("mode", 0) >= 2 and "time" in report and "lat" in report:
            fixes.setdefault(report["time"], []).append(report)
    return fixes


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def compare(log: Path) -> Agreement:
    result = Agreement(log.name)
    ours = {fix.time: fix for fix in fixes_from_lines(log_lines(log)) if fix.time is not None}
    by_stamp = {stamp(moment): fix for moment, fix in ours.items()}
    result.ours = len(ours)
    used: set[str] = set()
    for theirs, reports in gpsd_fixes(log.with_name(log.name + ".chk")).items():
        result.gpsd += 1
        when, shifted = theirs, False
        if when not in by_stamp:
            moment = datetime.strptime(theirs, "%Y-%m-%dT%H:%M:%S.%fZ")
            earlier = stamp(moment - GPS_WEEKS_1024)
            if earlier in by_stamp:
                when, shifted = earlier, True
        fix = by_stamp.get(when)
        if fix is None:
            result.missed.append(f"{when}: we have no fix")
            continue
        used.add(when)
        close = [
            report
            for report in reports
            if abs(report["lat"] - fix.lat) <= DEGREES and abs(report["lon"] - fix.lon) <= DEGREES
        ]
        if close:
            result.reproduced += 1
            result.shifted += shifted
        else:
            last = reports[-1]
            result.missed.append(
                f"{when}: ours {fix.lat:.9f},{fix.lon:.9f} gpsd {last['lat']},{last['lon']}"
            )
    result.extra = sorted(f"{when}: gpsd has no fix" for when in set(by_stamp) - used)
    return result


def logs_of(paths: list[Path]) -> list[Path]:
    logs: list[Path] = []
    for path in paths:
        found = sorted(path.glob("*.log")) if path.is_dir() else [path]
        logs += [log for log in found if log.with_name(log.name + ".chk").exists()]
    return logs


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logs = logs_of(args.paths)
    if not logs:
        print("no X.log with X.log.chk beside it", file=sys.stderr)
        return 2
    total = Agreement("total")
    width = max(len(log.name) for log in logs)
    for log in logs:
        result = compare(log)
        note = f"  ({result.shifted} at +1024 weeks)" if result.shifted else ""
        print(
            f"{result.log:<{width}}  {result.reproduced:5d} / {result.gpsd:5d}"
            f"  {percent(result.reproduced, result.gpsd)}"
            f"  ours {result.ours:5d}, not gpsd's {len(result.extra):4d}{note}"
        )
        if args.verbose:
            for line in result.missed + result.extra:
                print(f"    {line}")
        total.gpsd += result.gpsd
        total.reproduced += result.reproduced
        total.ours += result.ours
        total.extra += result.extra
    print(
        f"{'total':<{width}}  {total.reproduced:5d} / {total.gpsd:5d}"
        f"  {percent(total.reproduced, total.gpsd)}"
        f"  ours {total.ours:5d}, not gpsd's {len(total.extra):4d}  ({len(logs)} logs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
