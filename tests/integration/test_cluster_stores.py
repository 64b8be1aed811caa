"""The shared stores on a real PostgreSQL and S3 server: several instances' intakes and
pipelines over one database, chunks of one report reaching different instances, work
claimed and taken over, budgets and device statuses that hold across instances."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import logs
from gateway.config import load_config
from gateway.devices.device_registry import DeviceRegistry
from gateway.devices.gate import DeviceGate
from gateway.devices.limits import DeviceLimits, DeviceQuotas
from gateway.devices.shared_budgets import SharedTokenBuckets
from gateway.errors import Reason
from gateway.geo.checks import FixChecks
from gateway.geo.places import load_locator
from gateway.geo.report_location import Geo
from gateway.lifecycle import Step
from gateway.media.pool import InlineRunner
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import CodeProfile, load_profile
from gateway.runtime.intake import Intake
from gateway.runtime.pipeline import Pipeline
from gateway.settings import default_config_dir
from gateway.sinks.memory import MemoryObjectStore, MemoryPublisher, MemoryRegistry
from gateway.sinks.objects_s3 import S3ObjectStore
from gateway.sinks.settings import S3Settings
from gateway.store.cluster import InstanceClaim, InstanceIdTaken, cluster_depths
from gateway.store.inbox import Inbox
from gateway.store.outbox import Outbox
from gateway.store.postgres import PgConnection, SchemaError, check, upgrade
from gateway.store.spool import SPOOL_PREFIX, SharedSpool
from tests.factories import (
    FAST_PIPELINE,
    encode,
    envelope,
    photo_upload,
    voice_upload,
)
from tests.servers import S3Server
from tests.unit.conftest import Feeder

DEVICE = "tz-0001"
REPORT_TOPIC = f"cgt/v1/{DEVICE}/report"
BUCKET = "cgt-cluster"
PROFILE: CodeProfile = load_profile(default_config_dir() / "codes", "gbt30428")


class Instance:
    """One gateway instance's intake and pipeline over the shared stores."""

    def __init__(
        self, name: str, url: str, spool: SharedSpool, registry: MemoryRegistry, lease_s: float
    ) -> None:
        self.name = name
        self.intake_conn = PgConnection(url, name=f"{name}-intake")
        self.pipeline_conn = PgConnection(url, name=f"{name}-pipeline")
        inbox = Inbox(self.intake_conn)
        self.feed = Feeder(Intake(inbox, Outbox(self.intake_conn), PROFILE, logs.get(name)))
        self.publisher = MemoryPublisher()
        self.objects = MemoryObjectStore()
        self.outbox = Outbox(self.pipeline_conn, owner=name, lease_s=lease_s)
        self.pipeline = Pipeline(
            inbox=Inbox(self.pipeline_conn),
            outbox=self.outbox,
            spool=spool,
            media=InlineRunner(),
            registry=registry,
            objects=self.objects,
            publisher=self.publisher,
            profile=PROFILE,
            window=AcceptanceWindow(ZoneInfo("Asia/Shanghai"), clock(8), clock(18)),
            geo=Geo(load_locator(load_config(None).geo), FixChecks()),
            settings=FAST_PIPELINE,
            log=logs.get(name),
        )

    def drain(self, steps: int = 30) -> bool:
        return any(self.pipeline.step() == 0 for _ in range(steps))

    def acks(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.publisher.messages if t.endswith("/ack")]

    def close(self) -> None:
        self.intake_conn.close()
        self.pipeline_conn.close()


@pytest.fixture
def cluster_url(postgres_dsn: str) -> str:
    upgrade(postgres_dsn)
    return postgres_dsn


@pytest.fixture
def shared_objects(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3ObjectStore]:
    s3.create_bucket(BUCKET)
    monkeypatch.setenv("CGT_TEST_S3_SECRET", "testing")
    settings = S3Settings(
        endpoint_url=s3.endpoint_url,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key_env="CGT_TEST_S3_SECRET",  # noqa: S106 - a variable's name
        path_style=True,
    )
    store = S3ObjectStore(f"s3://{BUCKET}", settings)
    yield store
    store.close()


@pytest.fixture
def make_instance(cluster_url: str, shared_objects: S3ObjectStore, tmp_path: Path) -> Iterator[Any]:
    made: list[Instance] = []
    registry = MemoryRegistry()

    def make(name: str, lease_s: float = 60.0) -> Instance:
        spool = SharedSpool(tmp_path / name / "spool", shared_objects)
        instance = Instance(name, cluster_url, spool, registry, lease_s)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.close()


def test_upgrade_is_idempotent_and_check_refuses_an_old_schema(postgres_dsn: str) -> None:
    with pytest.raises(SchemaError, match="gateway db upgrade"):
        check(postgres_dsn)
    first = upgrade(postgres_dsn)
    assert set(first) == {"inbox", "outbox", "devices", "cluster", "console"}
    assert upgrade(postgres_dsn) == {}
    check(postgres_dsn)
    # an instance of this code against a schema one migration behind: refused, with the fix
    conn = PgConnection(postgres_dsn, name="test")
    conn.execute("UPDATE schema_parts SET version = version - 1 WHERE part = 'outbox'")
    with pytest.raises(SchemaError, match=r"behind .*outbox 0 < 1.*gateway db upgrade"):
        check(postgres_dsn)
    conn.close()


def test_chunks_of_one_report_scattered_over_three_instances_complete_it(
    make_instance: Any, shared_objects: S3ObjectStore
) -> None:
    """What a shared subscription does to one report: its report and chunks reach the
    instances in turn. The report completes, once, with its photo and voice note."""
    a, b, c = make_instance("gw-a"), make_instance("gw-b"), make_instance("gw-c")
    photo, voice = photo_upload(chunk_bytes=2048), voice_upload(chunk_bytes=4096)
    body = envelope([photo, voice])
    messages = [(REPORT_TOPIC, encode(body))] + [
        (upload.chunk_topic(DEVICE, seq), data)
        for upload in (photo, voice)
        for seq, data in enumerate(upload.chunks)
    ]
    instances = (a, b, c)
    for index, message in enumerate(messages):
        instances[index % 3].feed(message)
    # The pipelines take turns; whoever claims what, the report goes all the way once.
    for _ in range(10):
        for instance in (c, b, a):
            instance.pipeline.step()
    acks = [ack for instance in instances for ack in instance.acks()]
    assert [ack["status"] for ack in acks] == ["accepted"]
    registry = a.pipeline.deliveries.registry
    assert isinstance(registry, MemoryRegistry)
    assert list(registry.cases) == [body["report_id"]]
    stored = {k: v for instance in instances for k, v in instance.objects.objects.items()}
    for upload in (photo, voice):
        sha = hashlib.sha256(upload.data).hexdigest()
        assert [stored[k] for k in stored if sha in k] == [upload.data]
    # the shared spool is empty again once the objects are stored
    keys = shared_objects.client.list_objects_v2(Bucket=BUCKET, Prefix=SPOOL_PREFIX)
    assert keys.get("KeyCount", 0) == 0
    depths = cluster_depths(a.pipeline_conn)
    assert depths.ready == 0
    assert all(pending == 0 for pending, _, _ in depths.per_sink.values())


def test_two_pipelines_never_take_the_same_ready_report(make_instance: Any) -> None:
    a, b = make_instance("gw-a"), make_instance("gw-b")
    bodies = [envelope() for _ in range(40)]
    a.feed(*[(REPORT_TOPIC, encode(body)) for body in bodies])
    # a holds its claim (an open transaction) while b claims: b skips what a holds
    with a.pipeline_conn.transaction(), b.pipeline_conn.transaction():
        held = a.pipeline.inbox.claim_ready(25)
        taken = b.pipeline.inbox.claim_ready(100)
    assert len(held) == 25
    assert len(taken) == 15
    assert not {r.report_id for r in held} & {r.report_id for r in taken}
    with a.pipeline_conn.transaction():  # both committed: the queue is empty
        assert a.pipeline.inbox.claim_ready(100) == []


def test_a_dead_instances_deliveries_are_taken_over_when_its_lease_runs_out(
    make_instance: Any,
) -> None:
    a = make_instance("gw-a", lease_s=1.0)
    b = make_instance("gw-b", lease_s=1.0)
    body = envelope()
    a.feed((REPORT_TOPIC, encode(body)))
    a.pipeline._ready_stage()
    # a takes the registry step's batch and dies with it
    [due] = a.outbox.due(Step.REGISTRY, 10)
    assert due.report_id == body["report_id"]
    a.close()
    assert b.outbox.due(Step.REGISTRY, 10) == []  # leased to a
    time.sleep(1.2)
    assert b.drain()
    assert [ack["status"] for ack in b.acks()] == ["accepted"]


def test_a_restarted_instance_takes_its_own_leases_back_at_once(make_instance: Any) -> None:
    a = make_instance("gw-a", lease_s=300.0)
    body = envelope()
    a.feed((REPORT_TOPIC, encode(body)))
    a.pipeline._ready_stage()
    assert len(a.outbox.due(Step.REGISTRY, 10)) == 1
    again = make_instance("gw-a", lease_s=300.0)  # the same id, after a crash
    assert again.outbox.release() == 1
    assert again.drain()
    assert [ack["status"] for ack in again.acks()] == ["accepted"]


def test_a_devices_budget_holds_across_instances(cluster_url: str) -> None:
    limits = DeviceLimits(reports_per_minute=3, media_bytes_per_hour=10_000, spool_bytes=10_000)
    conns = [PgConnection(cluster_url, name=f"gw-{i}") for i in range(3)]

    def quotas(conn: PgConnection) -> DeviceQuotas:
        return DeviceQuotas(limits, time.time, lambda n, b, p: SharedTokenBuckets(conn, n, b, p))

    intakes = [
        Feeder(Intake(Inbox(conn), Outbox(conn), PROFILE, logs.get("t"), quotas=quotas(conn)))
        for conn in conns
    ]
    answers = [intakes[i % 3]((REPORT_TOPIC, encode(envelope()))) for i in range(6)]
    refused = [a for a in answers if a and a[0][1].get("reason", {}).get("code")]
    # three reports a minute for the device, whichever instance each reached
    assert len(refused) == 3
    assert {a[0][1]["reason"]["code"] for a in refused} == {Reason.LIMIT_REPORTS_PER_MINUTE}
    for conn in conns:
        conn.close()


def test_a_revocation_on_one_instance_is_seen_by_all(cluster_url: str) -> None:
    admin = PgConnection(cluster_url, name="admin")
    registry = DeviceRegistry(admin)
    registry.add(DEVICE, "inspector-1", "unit-1", "hash")
    gates = [DeviceGate(PgConnection(cluster_url, name=f"gw-{i}"), logs.get("t")) for i in range(3)]
    assert all(gate.refusal(DEVICE) is None for gate in gates)
    revoked_at = time.monotonic()
    registry.move(DEVICE, "revoke")
    seen: dict[int, float] = {}
    while len(seen) < 3 and time.monotonic() - revoked_at < 10:
        for index, gate in enumerate(gates):
            gate.refresh()
            if index not in seen and gate.refusal(DEVICE) is Reason.DEVICE_REVOKED:
                seen[index] = time.monotonic() - revoked_at
        time.sleep(0.05)
    assert len(seen) == 3, seen
    print(f"revocation seen by 3 instances after {sorted(round(s, 3) for s in seen.values())} s")
    # each gate re-reads at most once a second (gateway/devices/gate.py)
    assert max(seen.values()) < 5.0
    for gate in gates:
        gate.close()
    admin.close()


def test_a_second_instance_with_the_same_id_is_refused(cluster_url: str) -> None:
    first = InstanceClaim(cluster_url, "gw-a", logs.get("t"))
    with pytest.raises(InstanceIdTaken, match=r"gw-a.*in use.*mqtt\.client_id"):
        InstanceClaim(cluster_url, "gw-a", logs.get("t"))
    other = InstanceClaim(cluster_url, "gw-b", logs.get("t"))
    first.close()
    again = InstanceClaim(cluster_url, "gw-a", logs.get("t"))  # free once the first stopped
    assert cluster_depths(again.conn).live_instances == 2
    again.close()
    other.close()


def test_an_s3_outage_holds_back_media_reports_only(make_instance: Any, s3: S3Server) -> None:
    """The shared spool is in S3: while it is out of reach, a report with a photo goes back
    on the queue and text reports carry on; once S3 is back, the photo report completes."""
    a = make_instance("gw-a")
    photo = photo_upload(chunk_bytes=4096)
    with_photo, text = envelope([photo]), envelope()
    a.feed(*[(photo.chunk_topic(DEVICE, seq), data) for seq, data in enumerate(photo.chunks)])
    a.feed((REPORT_TOPIC, encode(with_photo)), (REPORT_TOPIC, encode(text)))
    s3.outage()
    try:
        a.pipeline._ready_stage()
        for step in (Step.REGISTRY, Step.ACK):
            a.pipeline._record(a.pipeline.deliveries.deliver(step, a.outbox.due(step, 10)))
        assert [ack["report_id"] for ack in a.acks()] == [text["report_id"]]
        assert cluster_depths(a.pipeline_conn).ready == 1  # the photo report, back in line
    finally:
        s3.resume()
    assert a.drain()
    assert {ack["report_id"] for ack in a.acks()} == {text["report_id"], with_photo["report_id"]}


def test_a_corrupt_upload_is_counted_and_asked_for_again(make_instance: Any) -> None:
    """An assembled file that does not match its manifest: counted in the shared outbox,
    the upload thrown away and the terminal asked for it again (found by the shared-mode
    soak: PostgreSQL wanted the upsert's column qualified, and the round kept failing)."""
    a = make_instance("gw-a")
    upload = photo_upload(chunk_bytes=4096)
    body = envelope([upload])
    garbled = [bytes(b ^ 0xFF for b in upload.chunks[0]), *upload.chunks[1:]]
    a.feed((REPORT_TOPIC, encode(body)))
    a.feed(*[(upload.chunk_topic(DEVICE, seq), data) for seq, data in enumerate(garbled)])
    assert a.pipeline.step() >= 1
    (failures,) = a.pipeline_conn.execute("SELECT failures FROM media_files").fetchone()
    assert failures == 1
    [asked] = a.feed((REPORT_TOPIC, encode(body)))  # the terminal re-sends: what is missing
    assert asked[1]["missing"] == {upload.media_id: list(range(len(upload.chunks)))}
    a.feed(*[(upload.chunk_topic(DEVICE, seq), data) for seq, data in enumerate(upload.chunks)])
    assert a.drain()
    assert [ack["status"] for ack in a.acks()] == ["accepted"]
