"""Verification tasks through the real gateway, Mosquitto and PostgreSQL: a task goes out
(from `gateway task send`, or from a row a backend inserted), the terminal answers with a
verification report, and the report is filed under the task's case."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.harness.mosquitto import Mosquitto
from tests.factories import envelope, photo_upload
from tests.integration.helpers import Client, GatewayProcess, Terminal, wait_until

pytestmark = pytest.mark.integration

# What docs/operations.md tells a backend to run to have a task sent.
BACKEND_INSERT = """
INSERT INTO tasks (case_no, device_id, kind, note, deadline, lat, lon, address)
VALUES (%s, %s, 'verify', '请核查井盖是否已更换', now() + interval '1 day',
        32.0302, 120.8651, '崇川区工农路 88 号')
RETURNING task_id::text
"""


def gateway_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fast_dispatch(path: Path, registry: str | None = None) -> Path:
    lines = [f'registry = "{registry}"'] if registry else []
    path.write_text("\n".join([*lines, "[tasks]", "poll_s = 0.2", ""]))
    return path


def accepted_case(terminal: Terminal, body: dict[str, Any]) -> str:
    terminal.send(body)
    ack = terminal.wait_final(body["report_id"])
    assert ack["status"] == "accepted", ack
    case_no: str = ack["case_no"]
    return case_no


def test_a_task_sent_from_the_cli_is_answered_by_a_verification_of_its_case(
    tmp_path: Path, broker: Mosquitto
) -> None:
    gateway = GatewayProcess(
        tmp_path / "gateway", broker.url, config=fast_dispatch(tmp_path / "gateway.toml")
    ).start()
    terminal = Terminal(broker.url, "tz-0601")
    case_no = accepted_case(terminal, envelope())
    where = ["--data-dir", str(gateway.data_dir), "--broker", broker.url]

    sent = gateway_cli(
        "task", "send", *where, "--device", "tz-0601", "--case", case_no, "--kind", "verify",
        "--note", "请核查", "--deadline", "2026-12-01T18:00", "--lat", "32.0302", "--lon",
        "120.8651", "--address", "工农路 88 号",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    printed = json.loads(sent.stdout)
    assert printed["sent_at"] is not None
    assert any(json.loads(line)["event"] == "task.sent" for line in sent.stderr.splitlines())
    [task] = terminal.wait_tasks(1)
    assert task == {
        "task_id": printed["task_id"],
        "case_no": case_no,
        "kind": "verify",
        "location": {"lat": 32.0302, "lon": 120.8651, "address": "工农路 88 号"},
        "deadline": "2026-12-01T18:00:00+08:00",
        "note": "请核查",
    }

    backend = Client(broker.url, "backend-verifications", ["cgt/v1/normalized/event/#"])
    photo = photo_upload(size=(640, 480))
    answer = envelope([photo], task_id=task["task_id"], description="井盖已更换")
    terminal.send(answer, [photo])
    ack = terminal.wait_final(answer["report_id"])
    assert (ack["status"], ack["case_no"]) == ("accepted", case_no)
    terminal.send(answer)  # asked again: the same answer
    wait_until(lambda: terminal.pump() or len(terminal.acks[answer["report_id"]]) >= 2, 10, "ack")
    assert terminal.acks[answer["report_id"]][-1]["case_no"] == case_no

    normalized = {}
    while answer["report_id"] not in normalized:
        _, payload = backend.received.get(timeout=10)
        document = json.loads(payload)
        normalized[document["report_id"]] = document
    published = normalized[answer["report_id"]]
    assert (published["case_no"], published["task_id"]) == (case_no, task["task_id"])

    assert len(gateway.cases()) == 1  # the verification made no case
    assert gateway.count("registry.db", "SELECT count(*) FROM verifications") == 1
    listed = gateway_cli("task", "list", "--data-dir", str(gateway.data_dir), "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["task_id"], row["verifications"]) == (task["task_id"], 1)
    events = {line.get("event") for line in gateway.log_lines()}
    assert "verification.registered" in events
    assert "task.sent" not in events  # the CLI sent it; the dispatcher left it alone
    assert len(terminal.tasks) == 1
    backend.close()
    terminal.close()
    gateway.stop()


def test_a_verification_of_an_unknown_task_is_rejected(
    tmp_path: Path, broker: Mosquitto, gateway: GatewayProcess
) -> None:
    terminal = Terminal(broker.url, "tz-0602")
    case_no = accepted_case(terminal, envelope())
    nobody = str(uuid.uuid4())
    answer = envelope(task_id=nobody)
    terminal.send(answer)
    ack = terminal.wait_final(answer["report_id"])
    assert (ack["status"], ack["reason"]["code"]) == ("rejected", "task.unknown")
    assert gateway.count("registry.db", "SELECT count(*) FROM verifications") == 0
    [logged] = [line for line in gateway.log_lines() if line.get("event") == "report.rejected"]
    assert (logged["task_id"], logged["device_id"]) == (nobody, "tz-0602")
    assert logged["reason"] == "task.unknown"

    unknown_case = gateway_cli(
        "task", "send", "--data-dir", str(gateway.data_dir), "--broker", broker.url,
        "--device", "tz-0602", "--case", case_no.replace("E0102", "E0101"),
    )  # fmt: skip
    assert unknown_case.returncode == 2
    assert "no case E0101" in unknown_case.stderr
    assert gateway.count("registry.db", "SELECT count(*) FROM tasks") == 0
    terminal.close()


def test_a_task_a_backend_inserts_is_published_by_the_running_gateway(
    tmp_path: Path, broker: Mosquitto, postgres_dsn: str
) -> None:
    config = fast_dispatch(tmp_path / "gateway.toml", registry=postgres_dsn)
    gateway = GatewayProcess(tmp_path / "gateway", broker.url, config=config).start()
    terminal = Terminal(broker.url, "tz-0603")
    case_no = accepted_case(terminal, envelope())

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        row = conn.execute(BACKEND_INSERT, (case_no, "tz-0603")).fetchone()
    assert row is not None
    task_id = row[0]
    [task] = terminal.wait_tasks(1)
    assert (task["task_id"], task["case_no"], task["kind"]) == (task_id, case_no, "verify")
    assert task["location"]["address"] == "崇川区工农路 88 号"

    def sent_at() -> Any:
        with psycopg.connect(postgres_dsn) as conn:
            found = conn.execute("SELECT sent_at FROM tasks WHERE task_id = %s", (task_id,))
            return found.fetchone()[0]  # type: ignore[index]

    wait_until(lambda: sent_at() is not None, 10, "the task marked sent")

    answer = envelope(task_id=task_id)
    terminal.send(answer)
    ack = terminal.wait_final(answer["report_id"])
    assert (ack["status"], ack["case_no"]) == ("accepted", case_no)
    with psycopg.connect(postgres_dsn) as conn:
        cases = conn.execute("SELECT count(*) FROM cases").fetchone()
        verified = conn.execute(
            "SELECT report_id, case_no, report->>'task_id' FROM verifications"
        ).fetchall()
    assert cases == (1,)
    assert verified == [(answer["report_id"], case_no, task_id)]
    sent = [line for line in gateway.log_lines() if line.get("event") == "task.sent"]
    assert [line["task_id"] for line in sent] == [task_id]
    listed = gateway_cli("task", "list", "--registry", postgres_dsn, "--json")
    assert [json.loads(line)["verifications"] for line in listed.stdout.splitlines()] == [1]
    terminal.close()
    gateway.stop()
