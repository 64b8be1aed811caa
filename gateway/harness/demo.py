"""`gateway demo`: the whole pipeline on embedded defaults, on one machine, in a minute.

Set up as an operator sets up a district (docs/operations.md): each terminal registered
with a password of its own, a Mosquitto of its own on a free port with the configuration
`gateway broker-config --tls` writes (a throwaway CA, TLS, the ACL that confines each
terminal to its topics), the gateway on embedded defaults (a local directory for
objects, SQLite for the registry) logging in with its own account, and a fleet of
simulated terminals sending real photos and voice notes over TLS. It prints progress,
then what happened and where everything is.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson

from firmware_sim.fleet import FleetSettings, run_fleet
from firmware_sim.identity import Identity, write_credentials
from firmware_sim.outcomes import Progress, Summary
from gateway.console.accounts import Accounts
from gateway.devices.broker_setup import BrokerSetup, TlsRequest, configure_broker
from gateway.devices.device_registry import DeviceRegistry
from gateway.devices.passwords import hash_password, new_password
from gateway.harness.desk import work_cases
from gateway.harness.gateway_process import GatewayProcess
from gateway.harness.mosquitto import Mosquitto, free_port
from gateway.normalize.settings import AcceptanceSettings
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_search import PAGE_MAX, CaseQuery

DEMO_UNIT = "崇川区城市管理监督指挥中心"
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


def register_terminals(data_dir: Path, device_ids: list[str]) -> dict[str, str]:
    """`gateway devices add` for each terminal; their passwords, as it prints them."""
    passwords = {device_id: new_password() for device_id in device_ids}
    registry = DeviceRegistry.in_data_dir(data_dir)
    try:
        for number, (device_id, password) in enumerate(passwords.items()):
            inspector = f"DEMO-{number + 1:04d}"
            registry.add(device_id, inspector, DEMO_UNIT, hash_password(password))
    finally:
        registry.close()
    return passwords


def console_logins(data_dir: Path) -> dict[str, tuple[str, str]]:
    """`gateway users add` for an acceptor and a technician: name → (role, one-time password)."""
    accounts = Accounts.in_data_dir(data_dir)
    try:
        return {
            name: (role, accounts.add(name, role))  # type: ignore[arg-type]
            for name, role in (("acceptor", "operator"), ("technician", "technician"))
        }
    finally:
        accounts.close()


def show_console(url: str, logins: dict[str, tuple[str, str]]) -> None:
    print(f"console  {url}  (one-time passwords: the console asks for a new one)", file=sys.stderr)
    for name, (role, password) in logins.items():
        print(f"         {name:<11} {password}  ({role})", file=sys.stderr)


def report(
    summary: Summary, gateway: GatewayProcess, broker: Mosquitto, setup: BrokerSetup
) -> None:
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
  device registry         {gateway.data_dir / "devices.db"} (`gateway devices list --data-dir \
{gateway.data_dir}`)
  console accounts        {gateway.data_dir / "console.db"} (`gateway users list --data-dir \
{gateway.data_dir}`)
  broker config           {setup.conf} (TLS, {setup.active_devices} terminal accounts, ACL)
  throwaway CA            {setup.ca.cert_path if setup.ca else "-"}
  broker log              {broker.directory / "mosquitto.log"}
  every report's outcome  {gateway.data_dir.parent / "outcomes.json"}
"""
    )


def new_cases(gateway_dir: Path) -> list[tuple[str, tuple[str, ...]]]:
    """The cases the fleet made, oldest first, each with the units answerable for its road."""
    registry = SqliteRegistry(gateway_dir / "registry.db", AcceptanceSettings().zone)
    try:
        rows = reversed(registry.find_cases(CaseQuery(limit=PAGE_MAX)))
        return [
            (row.case_no, tuple(unit.unit_zh for unit in row.report.location.responsible_units))
            for row in rows
        ]
    finally:
        registry.close()


def show_casework(done: Counter[str]) -> None:
    steps = ", ".join(f"{step} {count}" for step, count in sorted(done.items()))
    print(
        f"command center (casework.desk over MQTT, docs/cases.md): {steps}\n"
        "  the console shows each case's state, deadline light and history; /stats the"
        " figures and the month's bulletin",
        file=sys.stderr,
    )


def run_demo(
    data_dir: Path, terminals: int, reports_per_terminal: int, *, keep_serving: bool = True
) -> int:
    data_dir = data_dir.resolve()
    prepare(data_dir)
    settings = FleetSettings(
        terminals=terminals, reports_per_terminal=reports_per_terminal, device_prefix="demo"
    )
    gateway_dir, broker_dir = data_dir / "gateway", data_dir / "broker"
    device_ids = [settings.device_id(index) for index in range(terminals)]
    passwords = register_terminals(gateway_dir, device_ids)
    logins = console_logins(gateway_dir)
    console_url = f"http://127.0.0.1:{free_port()}"
    credentials = data_dir / "terminals.credentials"
    write_credentials(credentials, passwords)
    tls = TlsRequest(hostnames=("localhost", "127.0.0.1"))
    setup = configure_broker(gateway_dir, broker_dir, free_port(), bind="127.0.0.1", tls=tls)
    with Mosquitto(broker_dir, port=setup.port, conf=setup.conf, tls=True) as broker:
        print(f"broker   mosquitto on {broker.url} (TLS, a password per terminal)", file=sys.stderr)
        gateway = GatewayProcess(
            gateway_dir, broker.url, args=["--console", console_url.removeprefix("http://")]
        ).start()
        print(f"gateway  running, data under {gateway.data_dir}", file=sys.stderr)
        show_console(console_url, logins)
        print(
            f"terminals {terminals} registered and simulated, {reports_per_terminal} reports each"
            f" (passwords in {credentials})",
            file=sys.stderr,
        )
        try:
            ca_file = setup.ca.cert_path if setup.ca else None
            identity = Identity(passwords=passwords, ca_file=ca_file)
            settings = replace(settings, broker=broker.url, identity=identity)
            summary = run_fleet(settings, on_progress=show)
            print(file=sys.stderr)
            outcomes = orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2)
            (data_dir / "outcomes.json").write_bytes(outcomes)
            report(summary, gateway, broker, setup)
            show_casework(work_cases(gateway_dir, broker.url, ca_file, new_cases(gateway_dir)))
            show_console(console_url, logins)
            if keep_serving:
                print("the console keeps serving until Ctrl-C", file=sys.stderr, flush=True)
                wait_for_interrupt()
        finally:
            gateway.stop()
    return 0 if summary.all_accepted else 1


def wait_for_interrupt() -> None:
    """Until Ctrl-C (or SIGTERM)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
