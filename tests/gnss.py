"""Shared by the GNSS tests: the real receiver logs, gpsd's decoding of them and how our fixes
are held against it (tests/unit/test_nmea_gpsd_agreement.py says why each rule and each
listed exception is there), sentence framing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

# The GPSD project's regression logs with gpsd's own output beside each (X.log.chk), copied
# into the checkout (tests/fixtures/nmea) so a clean clone has them; CGT_NMEA_LOGS points
# elsewhere. SHARED_LOGS is where the copy came from, the team's shared test data beside
# the checkout (../shared/testdata/nmea), when it is there.
ROOT = Path(__file__).resolve().parent.parent
LOGS = Path(os.environ.get("CGT_NMEA_LOGS", ROOT / "tests/fixtures/nmea"))
SHARED_LOGS = ROOT.parent / "shared/testdata/nmea"


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


# ---- our fixes against gpsd's --------------------------------------------------------------

DEGREES = 1e-6
PRINTED = {"speed": 0.0005, "track": 0.00005, "alt": 0.00005}  # half gpsd's last digit
FLOAT_NOISE = 1e-9

# The two exceptions, epoch by epoch (tests/unit/test_nmea_gpsd_agreement.py says why).
MODE_3D_BY_GPSD = {
    "garmin25lp.log": [f"2005-03-15T12:03:{second}.000Z" for second in range(27, 36)],
    "mtk-3301.log": [f"2008-08-23T08:14:{second}.000Z" for second in range(37, 40)],
}
UNSTAMPED = {
    "beidou-bd.log": ["2015-02-25T07:41:55.799Z"],
    "mtk-3301.log": ["2008-08-23T08:14:36.000Z"],
}
# Epochs compared per log, so a log that silently stops yielding fixes fails.
EPOCHS = {
    "beidou-bd.log": 4,
    "bu353s4.log": 25,
    "garmin25lp.log": 10,
    "mtk-3301.log": 3,
    "nmea-fuzzy-cases.log": 14,
    "quectel-L70.log": 16,
    "sirfstarv-nmea.log": 59,
    "ublox-neo-m9n-nmea.log": 61,
}


@dataclass
class Agreement:
    problems: list[str]
    epochs: int  # times gpsd stamped a fix at
    ours_only: list[str]  # times of our fixes that gpsd reported only untimed


def gpsd_fields(report: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        key: report[key] for key in ("mode", "speed", "track") if key in report
    }
    if "altMSL" in report or "alt" in report:
        fields["alt"] = report.get("altMSL", report.get("alt"))
    return fields


def disagreements(report: dict[str, Any], fix: dict[str, Any]) -> list[str]:
    """How gpsd's `report` differs from our `fix` (its JSON form, GnssFix.as_json)."""
    problems = []
    if abs(report["lat"] - fix["lat"]) > DEGREES or abs(report["lon"] - fix["lon"]) > DEGREES:
        problems.append(f"position {report['lat']},{report['lon']} != {fix['lat']},{fix['lon']}")
    for key, theirs in gpsd_fields(report).items():
        mine = fix.get(key)
        if key == "mode":
            wrong = mine != theirs
        else:
            wrong = mine is None or abs(mine - theirs) > PRINTED[key] + FLOAT_NOISE
        if wrong:
            problems.append(f"{key} {mine} != gpsd {theirs}")
    return problems


def without_partial_state(report: dict[str, Any], fix: dict[str, Any]) -> dict[str, Any]:
    """An early TPV of an epoch less the field of each partial state the agreement test's
    docstring names."""
    left = dict(report)
    if "speed" in report and "track" not in report and "track" in fix:
        del left["speed"]  # (a) derived by gpsd before the epoch's RMC
    if report["mode"] == 2 and "alt" not in report and "alt" in fix:
        del left["mode"]  # (b) before the epoch's GGA
    return left


def agreement(log: Path, fixes: list[dict[str, Any]]) -> Agreement:
    """Our `fixes` of `log` (JSON form) held against gpsd's decoding of it."""
    gpsd = gpsd_decoding(log)
    mode_3d = MODE_3D_BY_GPSD.get(log.name, [])
    problems = [f"untimed fix {fix}" for fix in fixes if "time" not in fix]
    ours = {fix["time"]: fix for fix in fixes if "time" in fix}
    if len(ours) + len(problems) != len(fixes):
        problems.append("two fixes at one time")

    for when, reports in gpsd.stamped.items():
        fix = ours.get(when)
        if fix is None:
            problems.append(f"{when}: gpsd has a fix, we have none")
            continue
        *early, last = reports
        if when in mode_3d:
            # The exception, exactly: gpsd 3D, ours 2D from 3 satellites; all else agrees.
            assert (last["mode"], fix["mode"], fix.get("satellites")) == (3, 2, 3), when
            last = {key: value for key, value in last.items() if key != "mode"}
        problems += [f"{when}: {problem}" for problem in disagreements(last, fix)]
        for report in early:
            left = without_partial_state(report, fix)
            if when in mode_3d:
                left.pop("mode", None)
            problems += [f"{when} (early): {problem}" for problem in disagreements(left, fix)]

    ours_only = sorted(set(ours) - set(gpsd.stamped))
    for when in ours_only:
        if when not in UNSTAMPED.get(log.name, []):
            problems.append(f"{when}: we have a fix, gpsd has none")
        elif not [report for report in gpsd.unstamped if not disagreements(report, ours[when])]:
            problems.append(f"{when}: no untimed gpsd TPV matches our fix")
    return Agreement(problems, len(gpsd.stamped), ours_only)
