"""The gateway against an S3-compatible server and PostgreSQL, both real, both failing.

The S3 server is moto's, over HTTP on a loopback port (boto3 talks to it as to MinIO);
PostgreSQL is a throwaway cluster of the Debian packages. Each outage test streams 300
reports and takes a server away in the middle: afterwards every report has its case
(once) and its objects, whatever the order of events.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.harness.mosquitto import Mosquitto
from tests.factories import envelope, photo_upload, voice_upload
from tests.integration.helpers import GatewayProcess, Terminal, wait_until
from tests.servers import PostgresCluster, S3Server

pytestmark = pytest.mark.integration

BUCKET = "cgt-objects"
PREFIX = "city"
SECRET_ENV = "CGT_TEST_S3_SECRET"  # noqa: S105 - the name of a variable, not a secret
REPORTS = 300
TERMINALS = 6


def write_config(path: Path, s3: S3Server, registry: str, bucket: str = BUCKET) -> Path:
    path.write_text(
        f"""
objects = "s3://{bucket}/{PREFIX}"
registry = "{registry}"

{s3.gateway_settings(SECRET_ENV)}connect_timeout_s = 1
read_timeout_s = 5
max_attempts = 2

[postgres]
connect_timeout_s = 1

[pipeline]
retry_first_s = 0.5
retry_max_s = 2
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def production(
    tmp_path: Path, broker: Mosquitto, s3: S3Server, postgres_dsn: str
) -> Iterator[GatewayProcess]:
    s3.create_bucket(BUCKET)
    config = write_config(tmp_path / "gateway.toml", s3, postgres_dsn)
    gateway = GatewayProcess(
        tmp_path / "gateway", broker.url, config=config, env={SECRET_ENV: "testing"}
    )
    yield gateway.start()
    gateway.stop()


def cases(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT report_id, case_no FROM cases ORDER BY id").fetchall()
    return [(str(report_id), str(case_no)) for report_id, case_no in rows]


def stored(s3: S3Server, key: str) -> bytes:
    return s3.objects(BUCKET)[f"{PREFIX}/{key}"]


def test_a_reports_objects_land_in_the_bucket_and_its_case_in_postgres(
    broker: Mosquitto, production: GatewayProcess, s3: S3Server, postgres_dsn: str
) -> None:
    terminal = Terminal(broker.url, "tz-0101")
    photo = photo_upload(size=(1200, 900), orientation=6)
    voice = voice_upload(seconds=2.0)
    body = envelope([photo, voice])
    terminal.send(body, [photo, voice])

    ack = terminal.wait_final(body["report_id"])
    assert ack["status"] == "accepted"
    report_key = f"{PREFIX}/reports/{body['report_id']}/report.json"
    wait_until(lambda: report_key in s3.objects(BUCKET), 20, "the normalized report in S3")

    normalized = json.loads(stored(s3, f"reports/{body['report_id']}/report.json"))
    assert normalized["case_no"] == ack["case_no"]
    for media, upload in zip(normalized["media"], (photo, voice), strict=True):
        original = stored(s3, media["original"]["key"])
        assert original == upload.data
        assert hashlib.sha256(original).hexdigest() == media["original"]["sha256"]
        assert media["derivatives"]
        for derivative in media["derivatives"]:
            data = stored(s3, derivative["key"])
            assert hashlib.sha256(data).hexdigest() == derivative["sha256"]
            assert len(data) == derivative["bytes"]
    assert cases(postgres_dsn) == [(body["report_id"], ack["case_no"])]
    with psycopg.connect(postgres_dsn) as conn:
        kind, class_code, report = conn.execute(
            "SELECT kind, class_code, report FROM cases WHERE report_id = %s", (body["report_id"],)
        ).fetchone() or (None, None, None)
    assert (kind, class_code) == ("event", "0102")
    assert report == normalized  # jsonb, the same document the bucket holds

    # The same report again: the same case, nothing new in the registry.
    terminal.send(body)

    def answered_twice() -> bool:
        terminal.pump()
        return len(terminal.acks[body["report_id"]]) >= 2

    wait_until(answered_twice, 10, "the second answer")
    assert terminal.acks[body["report_id"]][-1]["case_no"] == ack["case_no"]
    assert len(cases(postgres_dsn)) == 1
    terminal.close()


class Stream:
    """REPORTS reports from TERMINALS terminals, every tenth with a photo, paced."""

    def __init__(self, broker: Mosquitto) -> None:
        self.terminals = [Terminal(broker.url, f"tz-{n:04d}") for n in range(TERMINALS)]
        self.sent: list[str] = []
        self.photos: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(terminal,), daemon=True)
            for terminal in self.terminals
        ]

    def start(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, terminal: Terminal) -> None:
        for n in range(REPORTS // TERMINALS):
            uploads = [photo_upload(size=(320, 240), chunk_bytes=16384)] if n % 10 == 0 else []
            body = envelope(uploads)
            with self._lock:
                self.sent.append(body["report_id"])
                for upload in uploads:
                    self.photos[body["report_id"]] = upload.data
            terminal.send(body, uploads)
            time.sleep(0.05)

    def answers(self) -> dict[str, dict[str, Any]]:
        found = {}
        for terminal in self.terminals:
            for report_id in list(terminal.acks):
                answer = terminal.final(report_id)
                if answer is not None:
                    found[report_id] = answer
            terminal.pump()
        return found

    def wait_accepted(self, count: int, timeout_s: float) -> None:
        wait_until(lambda: len(self.answers()) >= count, timeout_s, f"{count} answers")

    def finish(self) -> dict[str, dict[str, Any]]:
        for thread in self._threads:
            thread.join(120)
        self.wait_accepted(REPORTS, 120)
        answers = self.answers()
        for terminal in self.terminals:
            terminal.close()
        return answers


def assert_everything_landed(
    stream: Stream, answers: dict[str, dict[str, Any]], s3: S3Server, dsn: str
) -> None:
    assert sorted(answers) == sorted(stream.sent)
    assert {answer["status"] for answer in answers.values()} == {"accepted"}
    registered = cases(dsn)
    assert len(registered) == REPORTS  # no case twice
    assert dict(registered) == {report_id: a["case_no"] for report_id, a in answers.items()}
    objects = s3.objects(BUCKET)
    for report_id in stream.sent:
        document = json.loads(objects[f"{PREFIX}/reports/{report_id}/report.json"])
        assert document["case_no"] == answers[report_id]["case_no"]
        if report_id in stream.photos:
            key = f"{PREFIX}/{document['media'][0]['original']['key']}"
            assert objects[key] == stream.photos[report_id]


def objects_pending(gateway: GatewayProcess) -> int:
    return gateway.count(
        "outbox.db", "SELECT count(*) FROM deliveries WHERE sink = 'objects' AND state != 'done'"
    )


@pytest.mark.slow
def test_an_s3_outage_of_30_seconds_loses_nothing(
    broker: Mosquitto, production: GatewayProcess, s3: S3Server, postgres_dsn: str
) -> None:
    stream = Stream(broker).start()
    stream.wait_accepted(REPORTS // 3, 60)
    s3.outage()
    outage_started = time.monotonic()
    # Terminals keep getting their cases meanwhile: the registry and the acks do not wait
    # for the objects.
    stream.wait_accepted(REPORTS * 2 // 3, 60)
    backlog = objects_pending(production)
    time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
    s3.resume()
    answers = stream.finish()
    wait_until(lambda: objects_pending(production) == 0, 120, "the objects backlog to drain")

    assert backlog > 0, "the outage held nothing back; it tested nothing"
    lines = production.log_lines()
    assert any(line["sink"] == "objects" for line in lines if line.get("event") == "sink.retry")
    assert any(line["sink"] == "objects" for line in lines if line.get("event") == "sink.recovered")
    assert_everything_landed(stream, answers, s3, postgres_dsn)


@pytest.mark.slow
def test_postgres_restarted_mid_run_loses_nothing_and_doubles_nothing(
    broker: Mosquitto,
    production: GatewayProcess,
    s3: S3Server,
    postgres: PostgresCluster,
    postgres_dsn: str,
) -> None:
    stream = Stream(broker).start()
    stream.wait_accepted(REPORTS // 3, 60)
    postgres.stop()
    # Longer than the pool waits for a connection (connect_timeout_s, 1 s here): the
    # registry step fails and retries, while reports keep arriving into the outbox.
    time.sleep(8)
    postgres.start()
    answers = stream.finish()
    wait_until(lambda: objects_pending(production) == 0, 60, "the objects to be stored")

    retried = [line for line in production.log_lines() if line.get("event") == "sink.retry"]
    assert any(line["sink"] == "registry" for line in retried)
    assert_everything_landed(stream, answers, s3, postgres_dsn)


def gateway_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_a_missing_bucket_dead_letters_and_is_replayed_once_it_exists(
    tmp_path: Path, broker: Mosquitto, s3: S3Server, postgres_dsn: str
) -> None:
    config = write_config(tmp_path / "gateway.toml", s3, postgres_dsn, bucket="cgt-missing")
    gateway = GatewayProcess(
        tmp_path / "gateway", broker.url, config=config, env={SECRET_ENV: "testing"}
    ).start()
    terminal = Terminal(broker.url, "tz-0201")
    bodies = [envelope() for _ in range(3)]
    for body in bodies:
        terminal.send(body)
    for body in bodies:  # the cases are made and answered; only storing fails
        assert terminal.wait_final(body["report_id"])["status"] == "accepted"
    dead = "SELECT count(*) FROM deliveries WHERE sink = 'objects' AND state = 'dead'"
    wait_until(lambda: gateway.count("outbox.db", dead) == 3, 30, "three dead letters")

    listing = gateway_cli("outbox", "list", "--data-dir", str(gateway.data_dir)).stdout
    assert listing.count("NoSuchBucket: The specified bucket does not exist") == 3
    assert "objects         0         0     3" in listing

    s3.create_bucket("cgt-missing")
    replayed = gateway_cli("outbox", "retry", "--data-dir", str(gateway.data_dir)).stdout
    assert replayed == "3 dead letters made pending again\n"
    wait_until(lambda: gateway.count("outbox.db", dead) == 0, 30, "the dead letters replayed")
    wait_until(lambda: objects_pending(gateway) == 0, 30, "the objects stored")
    keys = s3.objects("cgt-missing")
    for body in bodies:
        assert f"{PREFIX}/reports/{body['report_id']}/report.json" in keys
    terminal.close()
    gateway.stop()
