"""Classification code profiles: the standard's component and event tables, loaded as data.

A profile is a pair of CSV files in a directory, `{profile}_components.csv` and
`{profile}_events.csv` (the GB/T 47678 series calls events "matters":
`{profile}_matters.csv` is read when no events file exists). A city swaps in its
own official table through configuration; nothing here knows a single code.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.errors import ConfigError

Kind = Literal["component", "event"]
KINDS: tuple[Kind, ...] = ("component", "event")
_COLUMNS = ("code", "major_code", "major_name_zh", "minor_code", "minor_name_zh", "name_en")


@dataclass(frozen=True, slots=True)
class ClassEntry:
    kind: Kind
    code: str
    major_code: str
    major_name: str
    minor_code: str
    minor_name: str
    name_en: str


@dataclass(frozen=True, slots=True)
class CodeProfile:
    name: str
    entries: dict[tuple[str, str], ClassEntry]

    def lookup(self, kind: str, code: str) -> ClassEntry | None:
        return self.entries.get((kind, code))

    def codes(self, kind: str) -> list[str]:
        return sorted(code for entry_kind, code in self.entries if entry_kind == kind)


def load_profile(directory: Path, name: str) -> CodeProfile:
    """Read a profile; every problem found is reported at once, with file and line."""
    files: dict[Kind, Path] = {
        "component": directory / f"{name}_components.csv",
        "event": directory / f"{name}_events.csv",
    }
    if not files["event"].exists():
        files["event"] = directory / f"{name}_matters.csv"
    problems: list[str] = []
    entries: dict[tuple[str, str], ClassEntry] = {}
    for kind, path in files.items():
        if not path.exists():
            problems.append(f"code profile {name!r}: {path} does not exist")
            continue
        try:
            problems += _read(kind, path, entries)
        except (OSError, ValueError, csv.Error) as error:  # a directory, not UTF-8, a NUL
            problems.append(f"{path}: cannot be read: {type(error).__name__}: {error}")
    if problems:
        raise ConfigError(problems)
    return CodeProfile(name, entries)


def _read(kind: Kind, path: Path, entries: dict[tuple[str, str], ClassEntry]) -> list[str]:
    """One table's rows into `entries`; returns its problems."""
    problems = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        absent = [column for column in _COLUMNS if column not in (reader.fieldnames or ())]
        if absent:
            return [f"{path}: missing columns {', '.join(absent)}"]
        for line, row in enumerate(reader, start=2):
            problem = _check_row(row)
            if problem:
                problems.append(f"{path}:{line}: {problem}")
                continue
            key = (kind, row["code"])
            if key in entries:
                problems.append(f"{path}:{line}: code {row['code']} appears twice")
                continue
            entries[key] = ClassEntry(
                kind=kind,
                code=row["code"],
                major_code=row["major_code"],
                major_name=row["major_name_zh"],
                minor_code=row["minor_code"],
                minor_name=row["minor_name_zh"],
                name_en=row["name_en"],
            )
    return problems


def _check_row(row: dict[str, str]) -> str | None:
    if any(not isinstance(row.get(column), str) for column in _COLUMNS):
        return f"a short row: {len(_COLUMNS)} fields wanted"
    code, major, minor = row["code"], row["major_code"], row["minor_code"]
    if not (code.isdigit() and len(code) in (4, 5)):
        return f"code {code!r} is not 4 or 5 digits"
    if code != major + minor:
        return f"code {code} is not major {major} + minor {minor}"
    return None
