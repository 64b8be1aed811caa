"""The fuzz targets (fuzz/) without the engine: every seed and kept regression input
replayed through its target's contract, so `make test` catches a parser regressing on
what fuzzing once found; and the runner, with atheris, on a real target and on one that
fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fuzz import run
from fuzz.invariant import Finding, require
from fuzz.targets import TARGETS, Target

INPUTS = [
    pytest.param(target, path, id=f"{target.name}/{path.name}")
    for target in TARGETS.values()
    for path in sorted(target.seeds.iterdir())
]


@pytest.mark.parametrize(("target", "path"), INPUTS)
def test_every_corpus_input_keeps_its_parsers_contract(target: Target, path: Path) -> None:
    data = path.read_bytes()
    assert len(data) <= target.max_len, "the engine would never try an input this long"
    target.load()(data)  # raises Finding, or the parser's stray exception, on a break


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_every_target_has_seeds(target: Target) -> None:
    assert any(path.name.startswith("seed-") for path in target.seeds.iterdir())


def test_a_broken_contract_is_a_finding() -> None:
    with pytest.raises(Finding, match="no reason"):
        require(False, "no reason")


# A libFuzzer log, cut to the lines the runner reads, as atheris 3.0.0 prints it.
LOG_DONE = """\
INFO: Running with entropic power schedule (0xFF, 100).
INFO:        0 files found in fuzz/work/downlink/corpus
INFO:        8 files found in fuzz/corpus/downlink
#2	INITED cov: 29 ft: 29 corp: 1/106b exec/s: 0 rss: 42Mb
#1048576	pulse  cov: 43 ft: 55 corp: 9/262b lim: 4096 exec/s: 262144 rss: 42Mb
#1448609	DONE   cov: 43 ft: 55 corp: 9/262b lim: 4096 exec/s: 241434 rss: 42Mb
Done 1448609 runs in 6 second(s)
stat::number_of_executed_units: 1448609
stat::average_exec_per_sec:     241434
stat::new_units_added:          96
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              42
"""
LOG_CRASH = """\
#2	INITED cov: 122 ft: 130 corp: 3/6437b exec/s: 0 rss: 95Mb
 === Uncaught Python exception: ===
UnicodeDecodeError: 'utf-8' codec can't decode byte 0xd9 in position 66
==4552== ERROR: libFuzzer: fuzz target exited
artifact_prefix='/tmp/fz/a/'; Test unit written to /tmp/fz/a/crash-4a448b64
stat::number_of_executed_units: 11
stat::average_exec_per_sec:     0
stat::new_units_added:          0
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              96
"""
LOG_KILLED = """\
#2	INITED cov: 29 ft: 29 corp: 1/106b exec/s: 0 rss: 42Mb
#4096	pulse  cov: 40 ft: 51 corp: 7/1021b lim: 4096 exec/s: 2048 rss: 300Mb
"""


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        pytest.param(LOG_DONE, run.LogStats(1448609, 241434, 96, 42, 9), id="done"),
        pytest.param(LOG_CRASH, run.LogStats(11, 0, 0, 96, 3), id="crash"),
        pytest.param(LOG_KILLED, run.LogStats(4096, 0, 0, 0, 7), id="killed, no final stats"),
        pytest.param("", run.LogStats(0, 0, 0, 0, 0), id="died before starting"),
    ],
)
def test_the_summary_reads_libfuzzers_log(log: str, expected: run.LogStats) -> None:
    assert run.parse_log(log) == expected


def explode(data: bytes) -> None:
    """A target that breaks its contract on its seed, for the runner's test."""
    if data.startswith(b"boom"):
        raise ValueError("not a rejection")


@pytest.mark.slow
def test_a_run_writes_its_summary_and_counts_executions(tmp_path: Path) -> None:
    assert run.main(["--seconds", "2", "--out", str(tmp_path), "downlink"]) == 0
    summary = json.loads((tmp_path / "results.json").read_text())
    (result,) = summary["targets"]
    assert result["target"] == "downlink"
    assert result["executions"] > 100
    assert result["findings"] == []
    assert result["corpus_files"] >= len(list(TARGETS["downlink"].seeds.iterdir()))


@pytest.mark.slow
def test_a_finding_fails_the_run_and_keeps_the_input(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "boom").write_bytes(b"boom!")
    target = Target("explode", f"{__name__}:explode", corpus=seeds)
    result = run.run_target(target, 5, tmp_path / "out")
    assert result.exit_code != 0
    (kept,) = result.findings
    assert Path(kept).name.startswith("crash-")
    assert Path(kept).read_bytes() == b"boom!"
    assert "ValueError: not a rejection" in Path(result.log).read_text()
