"""NMEA 0183: sentences per second, ours against pynmea2 parsing alone.

The sentences are every line of the receiver logs in `tests/fixtures/nmea/` (real
receivers: GPS, GLONASS, Galileo and BeiDou talkers; the fuzzy-cases log's bad sentences
included). In the same run: `pynmea2.parse` alone (the baseline: what any reader pays),
our `parse_sentence` (pynmea2 plus our checks and typed conversion), and the whole log
through `fixes_from_lines` (parsing plus assembling epochs into fixes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynmea2  # type: ignore[import-untyped]

from bench.common import summary, write
from gateway.protocols.nmea import fixes_from_lines, parse_sentence

LOGS = Path(__file__).parents[1] / "tests" / "fixtures" / "nmea"
REPEAT = 20  # the logs are ~2,300 sentences; each round parses them this many times
ROUNDS = 5


def sentences() -> list[str]:
    lines = []
    for log in sorted(LOGS.glob("*.log")):
        text = log.read_bytes().decode("ascii", errors="replace")
        lines += [line for line in text.splitlines() if line and not line.startswith("#")]
    return lines


def pynmea2_alone(lines: list[str]) -> None:
    for line in lines:
        try:  # noqa: SIM105 - cheaper than contextlib.suppress in the timed loop
            pynmea2.parse(line, check=True)
        except ValueError:  # pynmea2's ParseError, ChecksumError, SentenceTypeError
            pass


def ours_per_sentence(lines: list[str]) -> None:
    for line in lines:
        parse_sentence(line)


def ours_whole_log(lines: list[str]) -> None:
    for _ in fixes_from_lines(lines):
        pass


def per_second(work: Callable[[list[str]], None], lines: list[str]) -> float:
    batch = lines * REPEAT
    start = time.perf_counter()
    work(batch)
    return len(batch) / (time.perf_counter() - start)


def run() -> dict[str, Any]:
    lines = sentences()
    variants = {
        "pynmea2_parse_alone": pynmea2_alone,
        "ours_parse_sentence": ours_per_sentence,
        "ours_fixes_from_lines": ours_whole_log,
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, work in variants.items():
            rates[name].append(per_second(work, lines))
    medians = {name: summary(values)["median"] for name, values in rates.items()}
    result = {
        "benchmark": "nmea",
        "unit": "sentences per second (median of rounds)",
        "sentences": len(lines),
        "sentences_per_round": len(lines) * REPEAT,
        "rounds": ROUNDS,
        **{name: summary(values) for name, values in rates.items()},
        "parse_sentence_over_pynmea2": medians["ours_parse_sentence"]
        / medians["pynmea2_parse_alone"],
        "fixes_from_lines_over_pynmea2": medians["ours_fixes_from_lines"]
        / medians["pynmea2_parse_alone"],
    }
    write("nmea", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
