"""Scenario files: a fleet and its faults, saved in TOML so a fault can be reproduced.

    description = "a district going live with flaky radio"
    [fleet]                       # any of these run settings; the command line wins
    terminals = 200
    duration_s = 600
    [faults]                      # any knob of faults.Faults
    link_drops_per_hour = 2

`--scenario NAME` finds `firmware_sim/scenarios/NAME.toml`; any other value is a path.
Unknown tables or keys, and values of the wrong type, are refused with where they are.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_sim.faults import Faults

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"

# The run settings a scenario may set, with the type each must have (floats take ints).
FLEET_KEYS: dict[str, type] = {
    "terminals": int,
    "reports_per_terminal": int,
    "duration_s": float,
    "reports_per_hour": float,
    "device_prefix": str,
    "seed": int,
    "ack_timeout_s": float,
    "max_attempts": int,
    "chunk_bytes": int,
    "connect_timeout_s": float,
    "publish_timeout_s": float,
    "publish_window": int,
    "fleet_window": int,
    "report_interval_s": float,
    "drain_s": float,
    "track_interval_s": float,
    "retry_min_s": float,
    "retry_max_s": float,
    "task_travel_max_s": float,
    "cycling_share": float,
    "photo_pool": int,
    "voice_share": float,
}


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the file and key in the message."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    fleet: dict[str, Any] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)


def available() -> list[str]:
    return sorted(path.stem for path in SCENARIOS_DIR.glob("*.toml"))


def resolve(name_or_path: str) -> Path:
    path = SCENARIOS_DIR / f"{name_or_path}.toml"
    if path.is_file():
        return path
    path = Path(name_or_path)
    if path.is_file():
        return path
    raise ScenarioError(
        f"no scenario {name_or_path!r}: not a file, nor one of {', '.join(available())}"
    )


def load(name_or_path: str) -> Scenario:
    path = resolve(name_or_path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ScenarioError(f"{path}: {error}") from None
    return parse(document, str(path))


def parse(document: dict[str, Any], where: str) -> Scenario:
    unknown = set(document) - {"description", "fleet", "faults"}
    if unknown:
        raise ScenarioError(f"{where}: unknown table or key {sorted(unknown)[0]!r}")
    description = document.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{where}: description is not a string")
    fleet = _fleet(_table(document, "fleet", where), where)
    try:
        faults = Faults.from_mapping(_table(document, "faults", where), f"{where} [faults]")
    except (TypeError, ValueError) as error:
        raise ScenarioError(str(error)) from None
    return Scenario(Path(where).stem, description, fleet, faults)


def _table(document: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: [{name}] is not a table")
    return table


def _fleet(table: dict[str, Any], where: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in table.items():
        wanted = FLEET_KEYS.get(key)
        if wanted is None:
            raise ScenarioError(
                f"{where} [fleet]: unknown key {key!r}; known: {', '.join(sorted(FLEET_KEYS))}"
            )
        number = wanted is float and isinstance(value, int)
        if isinstance(value, bool) or not (isinstance(value, wanted) or number):
            raise ScenarioError(f"{where} [fleet].{key}: {value!r} is not {wanted.__name__}")
        settings[key] = float(value) if number else value
    return settings
