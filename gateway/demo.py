"""`gateway demo`: the whole pipeline on embedded defaults, on one machine, in a minute.

A Mosquitto of its own on a free port (the project's config), the gateway as operators
run it (a local directory for objects, SQLite for the registry), and a fleet of simulated
terminals sending real photos and voice notes. It prints progress, then what happened
and where everything is.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import orjson

from firmware_sim.fleet import FleetSettings, run_fleet
from firmware_sim.outcomes import Progress, Summary
from gateway.broker import Mosquitto
from gateway.process import GatewayProcess

MARKER = ".cgt-demo"  # only a directory the demo made itself is ever wiped


def prepare(data_dir: Path) -> None:
    if data_dir.exists():
        if not (data_dir / MARKER).exists():
            raise SystemExit(f"{data_dir} exists and is not a demo directory; pick another")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).touch()


def show(progress: Progress) -> None:
    p50 = f"{progress.latency_p50_ms:.0f} ms" if progress.latency_p50_ms is not None else "-"
    line = (
        f"\r  {progress.elapsed_s:5.1f}s  terminals {progress.connected}/{progress.terminals}"
        f"  sent {progress.sent}/{progress.planned}  accepted {progress.accepted}"
        f"  rejected {progress.rejected}  in flight {progress.in_flight}  p50 {p50}"
    )
    end = "" if sys.stderr.isatty() else "\n"
    print(line if end == "" else line.lstrip("\r"), end=end, file=sys.stderr, flush=True)


def report(summary: Summary, gateway: GatewayProcess, broker: Mosquitto) -> None:
    objects = gateway.data_dir / "objects"
    originals = [p for p in (objects / "originals").rglob("*") if p.is_file()]
    reports = list((objects / "reports").glob("*/report.json"))
    derivatives = [p for p in (objects / "reports").glob("*/media/*/*") if p.is_file()]
    derived_bytes = sum(p.stat().st_size for p in derivatives)
    cases = gateway.count("registry.db", "SELECT count(*) FROM cases")

    def ms(value: float | None) -> str:
        return f"{value:.0f} ms" if value is not None else "-"

    print(
        f"""
cgt-gateway demo: {summary.terminals} terminals, {summary.planned} reports
  accepted {summary.accepted}, rejected {summary.rejected}, not answered {summary.queued}
  latency from first chunk to `accepted`: p50 {ms(summary.latency_p50_ms)}, \
p95 {ms(summary.latency_p95_ms)}, max {ms(summary.latency_max_ms)}
  cases registered        {cases}
  originals stored        {len(originals)} files, {sum(p.stat().st_size for p in originals):,} bytes
  derivatives stored      {len(derivatives)} files, {derived_bytes:,} bytes \
(display photos, thumbnails, Opus voice notes)
  normalized reports      {len(reports)}

where things are:
  case registry (SQLite)  {gateway.data_dir / "registry.db"}
  objects                 {objects}
  inbox / outbox          {gateway.data_dir / "inbox.db"}, {gateway.data_dir / "outbox.db"}
  gateway log (JSON)      {gateway.log_path}
  broker log              {broker.directory / "mosquitto.log"}
  every report's outcome  {gateway.data_dir.parent / "outcomes.json"}
"""
    )


def run_demo(data_dir: Path, terminals: int, reports_per_terminal: int) -> int:
    data_dir = data_dir.resolve()
    prepare(data_dir)
    with Mosquitto(data_dir / "broker") as broker:
        print(f"broker   mosquitto on {broker.url}", file=sys.stderr)
        gateway = GatewayProcess(data_dir / "gateway", broker.url).start()
        print(f"gateway  running, data under {gateway.data_dir}", file=sys.stderr)
        print(
            f"terminals {terminals} simulated, {reports_per_terminal} reports each",
            file=sys.stderr,
        )
        try:
            settings = FleetSettings(
                broker=broker.url,
                terminals=terminals,
                reports_per_terminal=reports_per_terminal,
                device_prefix="demo",
            )
            summary = run_fleet(settings, on_progress=show)
            print(file=sys.stderr)
            outcomes = orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2)
            (data_dir / "outcomes.json").write_bytes(outcomes)
        finally:
            gateway.stop()
        report(summary, gateway, broker)
    return 0 if summary.all_accepted else 1
