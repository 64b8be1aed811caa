"""`make fuzz`: every target (or those named) under atheris for `--seconds` each, one at a
time, then a summary: fuzz/results.json and a table. Exits 1 if any target had a finding.

    python -m fuzz.run --seconds 60 [TARGET ...]

A finding (an exception outside the contract, an input over the time limit, memory over
the bound) stops that target; libFuzzer keeps the input as fuzz/findings/TARGET/crash-*,
timeout-* or oom-*, and the engine's log is fuzz/work/TARGET/engine.log. Once fixed, copy
the input into fuzz/corpus/TARGET/ so `make test` replays it from then on. The corpus each
run grows is kept in fuzz/work/TARGET/ (git-ignored), so the next run resumes from it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fuzz.targets import TARGETS, Target

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
# libFuzzer writes these for an input that crashed, hung or ran out of memory.
FINDING_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")
# Time beyond -max_total_time before the run is deemed hung as a whole: imports,
# instrumentation and loading the corpus (which libFuzzer does not count) take seconds.
GRACE_S = 120


@dataclass(frozen=True, slots=True)
class LogStats:
    """What libFuzzer's log says about a run."""

    executions: int
    exec_per_s: int
    new_units: int
    peak_rss_mb: int
    corpus_units: int  # inputs in libFuzzer's corpus at the end ("corp: N/...")


@dataclass(frozen=True, slots=True)
class TargetResult:
    target: str
    executions: int
    seconds: float
    findings: list[str]  # paths of the inputs kept
    corpus_files: int  # seeds plus what the engine keeps in fuzz/work
    corpus_units: int
    new_units: int
    exec_per_s: int
    peak_rss_mb: int
    exit_code: int
    log: str


_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_STATUS = re.compile(r"^#(\d+)\s+\w+\s.*?corp: (\d+)/", re.MULTILINE)
_DONE = re.compile(r"^Done (\d+) runs in", re.MULTILINE)


def parse_log(text: str) -> LogStats:
    """libFuzzer's final stats (-print_final_stats=1), which it prints after a crash too;
    failing those (killed mid-run), the last status line's count."""
    stats = {name: int(value) for name, value in _STAT.findall(text)}
    statuses = _STATUS.findall(text)
    done = _DONE.findall(text)
    executions = stats.get("number_of_executed_units")
    if executions is None:
        executions = int(done[-1]) if done else int(statuses[-1][0]) if statuses else 0
    return LogStats(
        executions=executions,
        exec_per_s=stats.get("average_exec_per_sec", 0),
        new_units=stats.get("new_units_added", 0),
        peak_rss_mb=stats.get("peak_rss_mb", 0),
        corpus_units=int(statuses[-1][1]) if statuses else 0,
    )


def _files(directory: Path) -> set[Path]:
    return {path for path in directory.iterdir() if path.is_file()} if directory.is_dir() else set()


def run_target(target: Target, seconds: int, out: Path = ROOT) -> TargetResult:
    """One target for `seconds`; its corpus, log and findings under `out`."""
    work = out / "work" / target.name
    corpus, findings = work / "corpus", out / "findings" / target.name
    for directory in (corpus, findings):
        directory.mkdir(parents=True, exist_ok=True)
    before = _files(findings)
    log = work / "engine.log"
    command = [
        sys.executable,
        "-m",
        "fuzz.engine",
        target.entry,
        f"-max_total_time={seconds}",
        f"-max_len={target.max_len}",
        f"-rss_limit_mb={target.rss_limit_mb}",
        f"-timeout={target.timeout_s}",
        f"-artifact_prefix={findings}/",
        "-print_final_stats=1",
        str(corpus),  # the first corpus directory is where libFuzzer adds its finds
        str(target.seeds),
    ]
    started = time.monotonic()
    with log.open("wb") as stream:
        # our own interpreter running our own module: no untrusted input in the command
        engine = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, cwd=REPO)  # noqa: S603
        try:
            exit_code = engine.wait(timeout=seconds + GRACE_S)
        except subprocess.TimeoutExpired:  # libFuzzer's own -timeout did not fire
            engine.kill()
            exit_code = engine.wait()
    elapsed = time.monotonic() - started
    text = log.read_text(encoding="utf-8", errors="replace")
    stats = parse_log(text)
    kept = sorted(
        str(path) for path in _files(findings) - before if path.name.startswith(FINDING_PREFIXES)
    )
    if exit_code != 0 and not kept:  # died without saying why: the log is the finding
        kept = [str(log)]
    return TargetResult(
        target=target.name,
        executions=stats.executions,
        seconds=round(elapsed, 1),
        findings=kept,
        corpus_files=len(_files(corpus)) + len(_files(target.seeds)),
        corpus_units=stats.corpus_units,
        new_units=stats.new_units,
        exec_per_s=stats.exec_per_s,
        peak_rss_mb=stats.peak_rss_mb,
        exit_code=exit_code,
        log=str(log),
    )


def table(results: list[TargetResult]) -> str:
    header = f"{'target':<14} {'executions':>11} {'exec/s':>7} {'seconds':>8} {'corpus':>7} "
    header += f"{'rss MB':>7} findings"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.target:<14} {r.executions:>11,} {r.exec_per_s:>7,} {r.seconds:>8.1f} "
            f"{r.corpus_files:>7} {r.peak_rss_mb:>7} {len(r.findings) or '-'}"
        )
        lines += [f"    {path}" for path in r.findings]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument(
        "--out", type=Path, default=ROOT, help="for results.json, work/ and findings/ (fuzz/)"
    )
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGETS))
    args = parser.parse_args(argv)
    names: list[str] = args.targets or list(TARGETS)
    unknown = sorted(set(names) - TARGETS.keys())
    if unknown:
        parser.error(f"no target {', '.join(unknown)}; there are {', '.join(TARGETS)}")
    results = []
    for name in names:
        print(f"fuzzing {name} for {args.seconds} s ...", flush=True)
        results.append(run_target(TARGETS[name], args.seconds, args.out))
    summary = {
        "seconds_per_target": args.seconds,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "targets": [asdict(result) for result in results],
    }
    summary_file = args.out / "results.json"
    summary_file.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"summary: {summary_file}")
    return 1 if any(result.findings for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
