"""Three gateway instances on one shared subscription, their state in PostgreSQL and their
media in S3, as a city runs them: the simulator's reports with photos and voice notes all
accepted; instances SIGKILLed at random and one killed for good, and still every report
accepted once, one case each, every original in S3 with its hash; a task sent once."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.harness.mosquitto import Mosquitto, free_port
from tests.factories import envelope
from tests.integration.helpers import GatewayProcess, Probe, Terminal, gateway_cli, wait_until
from tests.integration.test_operations import get, samples
from tests.integration.test_production_sinks import BUCKET, PREFIX, SECRET_ENV
from tests.integration.test_production_sinks import write_config as write_production_config
from tests.servers import S3Server

INSTANCES = 3


def write_config(path: Path, s3: S3Server, cluster_url: str, lease_s: float) -> Path:
    """The production sinks' config (tests/integration/test_production_sinks.py), shared."""
    write_production_config(path, s3, cluster_url)
    with path.open("a", encoding="utf-8") as out:
        out.write(
            f"""
[cluster]
url = "{cluster_url}"
lease_s = {lease_s}

[mqtt]
shared_group = "cgt"

[tasks]
poll_s = 0.5
"""
        )
    return path


@dataclass
class Cluster:
    url: str
    s3: S3Server
    broker: Mosquitto
    instances: list[GatewayProcess]
    config: Path

    def start_all(self) -> None:
        for instance in self.instances:
            instance.start(timeout_s=40)

    def stop_all(self) -> None:
        for instance in self.instances:
            instance.stop()

    def cases(self) -> list[tuple[str, str]]:
        with psycopg.connect(self.url) as conn:
            rows = conn.execute("SELECT report_id, case_no FROM cases ORDER BY id").fetchall()
        return [(str(report_id), str(case_no)) for report_id, case_no in rows]

    def pending(self) -> int:
        """Deliveries not yet done (objects and bus go on after the terminal's ack)."""
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM cgt.deliveries WHERE state = 'pending'"
            ).fetchone()
        return int(row[0]) if row else 0

    def simulate(self, tmp: Path, terminals: int, reports: int, **extra: str) -> dict[str, Any]:
        summary = tmp / f"sim-{time.monotonic_ns()}.json"
        options = [f"--{key.replace('_', '-')}={value}" for key, value in extra.items()]
        run = subprocess.run(
            [sys.executable, "-m", "firmware_sim", "run", "--broker", self.broker.url,
             "--terminals", str(terminals), "--reports-per-terminal", str(reports),
             "--seed", "20261203", "--json", str(summary), *options],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert summary.exists(), run.stdout + run.stderr
        result: dict[str, Any] = json.loads(summary.read_text())
        result["exit"] = run.returncode
        result["output"] = run.stdout[-3000:] + run.stderr[-3000:]
        return result


@pytest.fixture
def cluster(
    tmp_path: Path, broker: Mosquitto, s3: S3Server, postgres_dsn: str
) -> Iterator[Cluster]:
    s3.create_bucket(BUCKET)
    upgraded = gateway_cli("db", "upgrade", "--cluster", postgres_dsn)
    assert "upgraded" in upgraded.stdout
    assert gateway_cli("db", "status", "--cluster", postgres_dsn).returncode == 0
    config = write_config(tmp_path / "gateway.toml", s3, postgres_dsn, lease_s=4)
    instances = [
        GatewayProcess(
            tmp_path / f"gw-{index}",
            broker.url,
            config=config,
            env={SECRET_ENV: "testing"},
            args=["--client-id", f"cgt-gw-{index}", "--metrics", f"127.0.0.1:{free_port()}"],
        )
        for index in range(INSTANCES)
    ]
    running = Cluster(postgres_dsn, s3, broker, instances, config)
    running.start_all()
    yield running
    running.stop_all()


def check_every_report_once(cluster: Cluster, sim: dict[str, Any]) -> None:
    """Every report the simulator sent is accepted, one case each, its objects in S3."""
    outcomes = sim["outcomes"]
    assert sim["exit"] == 0, sim["output"]
    accepted = {o["report_id"]: o["case_no"] for o in outcomes if o["status"] == "accepted"}
    assert len(accepted) == len(outcomes)
    cases = cluster.cases()
    by_report = dict(cases)
    assert len(by_report) == len(cases), "a report has two cases"
    assert len({case_no for _, case_no in cases}) == len(cases), "a case number twice"
    assert set(accepted) <= set(by_report)
    assert all(by_report[report_id] == case_no for report_id, case_no in accepted.items())
    wait_until(lambda: cluster.pending() == 0, 60, "every delivery done")
    objects = cluster.s3.objects(BUCKET)
    media = 0
    for report_id in accepted:
        report = json.loads(objects[f"{PREFIX}/reports/{report_id}/report.json"])
        for entry in report["media"]:
            original = objects[f"{PREFIX}/{entry['original']['key']}"]
            assert hashlib.sha256(original).hexdigest() == entry["original"]["sha256"]
            for derivative in entry["derivatives"]:
                stored = objects[f"{PREFIX}/{derivative['key']}"]
                assert hashlib.sha256(stored).hexdigest() == derivative["sha256"]
            media += 1
    assert media >= len(accepted), "the simulator's reports carry photos"
    # the shared spool is let go once the objects are stored
    leftovers = [key for key in objects if key.startswith(f"{PREFIX}/spool/")]
    assert leftovers == []


def test_three_instances_take_every_report_with_its_media(cluster: Cluster, tmp_path: Path) -> None:
    sim = cluster.simulate(tmp_path, terminals=10, reports=2, chunk_bytes="16384")
    check_every_report_once(cluster, sim)
    # Each instance's /healthz checks the shared database; its /metrics shows the
    # cluster's depths (all zero now) and how many instances have a fresh heartbeat.
    for instance in cluster.instances:
        base = f"http://{instance.args[instance.args.index('--metrics') + 1]}"
        status, body = get(f"{base}/healthz")
        assert status == 200, body
        assert json.loads(body)["checks"]["database"] is True
        shown = samples(get(f"{base}/metrics")[1])
        assert shown["cgt_cluster_instances"] == INSTANCES
        assert shown["cgt_inbox_depth"] == 0
        assert shown['cgt_outbox_depth{sink="objects"}'] == 0
    # The operators' outbox command reads the shared outbox from the cluster's config.
    listed = gateway_cli("outbox", "list", "--config", str(cluster.config))
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert {row[0]: (row[1], row[3]) for row in rows} == dict.fromkeys(
        ("media", "registry", "objects", "bus", "ack"), ("0", "0")
    )


def run_refused(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`gateway run` that should refuse to start: its exit status and what it said."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, SECRET_ENV: "testing"},
    )  # fmt: skip


def test_start_up_says_what_is_missing(
    tmp_path: Path, broker: Mosquitto, s3: S3Server, postgres_dsn: str
) -> None:
    config = write_config(tmp_path / "gateway.toml", s3, postgres_dsn, lease_s=4)
    common = ["--broker", broker.url, "--data-dir", str(tmp_path / "gw")]
    # no schema yet, and no bucket: both said, with what to do
    refused = run_refused(config, *common)
    assert refused.returncode == 2
    assert "run `gateway db upgrade --cluster URL`" in refused.stderr
    assert f"bucket of s3://{BUCKET}/{PREFIX} not found" in refused.stderr
    # a server that is not there
    down = write_config(
        tmp_path / "down.toml", s3, f"postgresql://postgres@127.0.0.1:{free_port()}/x", 4
    )
    refused = run_refused(down, *common)
    assert refused.returncode == 2
    assert "is not reachable" in refused.stderr
    # with both in place, a second instance under a running one's client id is refused
    gateway_cli("db", "upgrade", "--cluster", postgres_dsn)
    s3.create_bucket(BUCKET)
    first = GatewayProcess(
        tmp_path / "gw-a", broker.url, config=config, env={SECRET_ENV: "testing"},
        args=["--client-id", "cgt-gw-a"],
    ).start(timeout_s=40)  # fmt: skip
    try:
        refused = run_refused(config, *common, "--client-id", "cgt-gw-a")
        assert refused.returncode == 2
        assert "instance id 'cgt-gw-a' is in use by a running gateway" in refused.stderr
    finally:
        first.stop()


def test_instances_killed_at_random_and_one_for_good_lose_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    rng = random.Random(20261203)
    result: dict[str, Any] = {}

    def simulate() -> None:
        result.update(
            cluster.simulate(
                tmp_path, terminals=10, reports=4, chunk_bytes="16384", timeout_s="10",
                interval_s="0.5",
            )
        )  # fmt: skip

    import threading  # noqa: PLC0415

    runner = threading.Thread(target=simulate)
    runner.start()
    kills = 0
    gone: GatewayProcess | None = None
    while runner.is_alive() and kills < 6:
        time.sleep(rng.uniform(1.5, 3.5))
        alive = [i for i in cluster.instances if i is not gone]
        victim = rng.choice(alive)
        victim.kill()
        kills += 1
        if gone is None and kills == 3:
            gone = victim  # this one never comes back: its leases must run out
            continue
        time.sleep(rng.uniform(0.2, 1.0))
        victim.start(timeout_s=40)
    runner.join(600)
    assert kills >= 3, "the simulator finished before the kills meant anything"
    check_every_report_once(cluster, result)


def test_a_task_is_sent_once_by_three_instances(cluster: Cluster, tmp_path: Path) -> None:
    sim = cluster.simulate(tmp_path, terminals=1, reports=1)
    [(_, case_no)] = cluster.cases()
    assert sim["exit"] == 0, sim["output"]
    device = sim["outcomes"][0]["device_id"]
    probe = Probe(cluster.broker.url, None, None)
    try:
        assert probe.connack() == "Success"
        probe.subscribe(f"cgt/v1/{device}/task")
        with psycopg.connect(cluster.url) as conn:
            conn.execute(
                "INSERT INTO tasks (case_no, device_id, kind) VALUES (%s, %s, 'verify')",
                (case_no, device),
            )
        wait_until(lambda: len(probe.messages) >= 1, 20, "the task to be sent")
        time.sleep(3)  # every instance polls several times meanwhile
        assert len(probe.messages) == 1
    finally:
        probe.close()
    with psycopg.connect(cluster.url) as conn:
        row = conn.execute("SELECT count(*) FROM tasks WHERE sent_at IS NOT NULL").fetchone()
    assert row == (1,)


def test_a_revocation_is_seen_by_every_instance(cluster: Cluster) -> None:
    """`gateway devices` on the cluster's config writes the shared registry; each instance
    re-reads it every second, so whichever instance a message reaches refuses it."""
    for device in ("tz-kept", "tz-gone"):
        added = gateway_cli("devices", "add", device, "--inspector", "INS-1", "--unit", "崇川区",
                            "--config", str(cluster.config), check=False)  # fmt: skip
        assert added.returncode == 0, added.stderr
    time.sleep(1.5)  # every instance has seen both devices
    terminal = Terminal(cluster.broker.url, "tz-gone")
    try:
        before = envelope()
        terminal.send(before)
        assert terminal.wait_final(before["report_id"])["status"] == "accepted"
        revoked = gateway_cli("devices", "revoke", "tz-gone", "--config", str(cluster.config))
        assert revoked.returncode == 0
        revoked_at = time.monotonic()
        time.sleep(2.5)
        # Six reports: the shared subscription hands them to all three instances in turn.
        after = [envelope() for _ in range(6)]
        for body in after:
            terminal.send(body)
        answers = [terminal.wait_final(body["report_id"]) for body in after]
        assert [a.get("reason", {}).get("code") for a in answers] == ["device.revoked"] * 6
        assert time.monotonic() - revoked_at < 30
    finally:
        terminal.close()
