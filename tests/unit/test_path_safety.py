"""Ids from the network never reach a file path unchecked.

Where a peer's id names a file: the spool (`spool/{device_id}/{media_id}` and its
derivatives, `gateway/runtime/pipeline.py`) and the local object store (`originals/sha256/..`,
`reports/{report_id}/...`, `gateway/object_keys.py`, `gateway/sinks/objects_local.py`).
Chunks live in the inbox (SQLite rows), never in files named by the peer. The simulator
names no file after anything the broker sends (its queue files are its own sequence
numbers, under its own device ids).

The first line of defence is the wire grammar (`gateway/protocols/terminal.py`,
`payloads.py`): traversal in a topic or envelope is refused with a reason code. The second
is `gateway.paths.child`, which every path made from an id passes through.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from firmware_sim.downlink import Malformed, parse_downlink
from gateway import logs
from gateway.config import load_config
from gateway.errors import PermanentSinkError, Reason
from gateway.geo.checks import FixChecks
from gateway.geo.places import load_locator
from gateway.geo.report_location import Geo
from gateway.media.pool import InlineRunner
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import load_profile
from gateway.object_keys import derivative_key, original_key, report_key
from gateway.paths import PathEscape, child
from gateway.protocols.payloads import ReportEnvelope
from gateway.protocols.terminal import (
    ChunkReceived,
    ReportReceived,
    StatusReceived,
    TrackReceived,
    UplinkRejected,
    decode_uplink,
)
from gateway.runtime.intake import Intake
from gateway.runtime.pipeline import Pipeline
from gateway.settings import default_config_dir
from gateway.sinks.memory import MemoryPublisher, MemoryRegistry
from gateway.sinks.objects_local import LocalObjectStore
from gateway.store.db import sqlite_file
from gateway.store.inbox import Inbox
from gateway.store.outbox import Outbox
from gateway.store.spool import LocalSpool
from tests.factories import FAST_PIPELINE, encode, envelope, photo_upload
from tests.unit.conftest import Feeder

DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
LOWER_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MARKER = f"escaped-{uuid.uuid4().hex[:12]}"  # a name no file has unless a path escaped

# What an attacker puts where an id belongs.
TRAVERSALS = [
    ".",
    "..",
    "../",
    "../..",
    f"../../../../{MARKER}",
    f"..%2f..%2f{MARKER}",
    f"%2e%2e%2f{MARKER}",
    f"..\\..\\{MARKER}",
    f"/tmp/{MARKER}",
    f"/{MARKER}",
    f"~/{MARKER}",
    f"a\x00{MARKER}",
    f"\u2025/{MARKER}",  # two-dot leader
    "\uff0e\uff0e",  # fullwidth full stops
    "\u2024\u2024",  # one-dot leaders
    f"..\u2215{MARKER}",  # division slash
    "." * 65,
    "a" * 65,
    "a" * 300,
    "",
    " ",
    "tz-0001/..",
    "normalized",
    "+",
    "#",
]
hostile = st.sampled_from(TRAVERSALS) | st.text(max_size=70).filter(
    lambda text: not DEVICE_ID.fullmatch(text)
)
MEDIA_ID = "0b7e4c1a-2d3f-4e5a-8b9c-0d1e2f3a4b5c"
PHOTO = photo_upload(size=(64, 48), chunk_bytes=1024)


# ---- the wire grammar ---------------------------------------------------------------------


def assert_path_safe(event: object) -> None:
    """Whatever survives decoding names files only with plain names."""
    if isinstance(event, UplinkRejected):
        return
    assert isinstance(event, ReportReceived | ChunkReceived | StatusReceived | TrackReceived)
    assert DEVICE_ID.fullmatch(event.device_id)
    root = Path("/spool")
    if isinstance(event, ChunkReceived):
        assert LOWER_UUID.fullmatch(event.media_id)
        assert child(root, event.device_id, event.media_id).parent.parent == root
    if isinstance(event, ReportReceived):
        assert LOWER_UUID.fullmatch(event.report_id)
        for manifest in event.envelope.media:
            for key in (
                original_key(manifest.sha256, manifest.mime),
                derivative_key(event.report_id, manifest.media_id.lower(), "display.jpg"),
                report_key(event.report_id),
            ):
                child(root, *key.split("/"))


@settings(max_examples=300)
@given(device=hostile, kind=st.sampled_from(["report", "status", "track", f"media/{MEDIA_ID}/0"]))
@example(device="..", kind="report")
@example(device="normalized", kind="report")
def test_a_hostile_device_id_in_a_topic_is_refused(device: str, kind: str) -> None:
    event = decode_uplink(f"cgt/v1/{device}/{kind}", b'{"online": true}')
    assert isinstance(event, UplinkRejected)
    assert event.reason in (Reason.TOPIC_DEVICE_ID, Reason.TOPIC_MALFORMED)
    # nobody to answer, or (`tz-0001/..`) the plain device id before the junk
    assert event.device_id is None or DEVICE_ID.fullmatch(event.device_id)


@settings(max_examples=300)
@given(media_id=hostile, seq=st.sampled_from(["0", "1"]) | hostile)
@example(media_id="..", seq="0")
@example(media_id=MEDIA_ID, seq="..")
@example(media_id=MEDIA_ID, seq="0/../../x")
def test_a_hostile_media_id_or_seq_in_a_topic_is_refused(media_id: str, seq: str) -> None:
    event = decode_uplink(f"cgt/v1/tz-0001/media/{media_id}/{seq}", b"x")
    if LOWER_UUID.fullmatch(media_id.lower()) and re.fullmatch(r"0|[1-9][0-9]{0,8}", seq):
        assert isinstance(event, ChunkReceived)
        return
    assert isinstance(event, UplinkRejected)
    assert event.reason in (Reason.TOPIC_MEDIA_ID, Reason.TOPIC_SEQ, Reason.TOPIC_MALFORMED)


ID_FIELDS = ["report_id", "device_id", "task_id", "inspector_id", "class_code", "object_code"]
MEDIA_FIELDS = ["media_id", "sha256", "mime"]


@settings(max_examples=300)
@given(
    field=st.sampled_from(ID_FIELDS + MEDIA_FIELDS),
    value=hostile.filter(lambda value: value != "normalized"),  # a fine inspector id
)
@example(field="report_id", value="../../x")
@example(field="media_id", value=f"/tmp/{MARKER}")
@example(field="sha256", value="../" * 21 + "a")
@example(field="mime", value="../../x")
def test_a_hostile_id_in_an_envelope_is_refused(field: str, value: str) -> None:
    body = envelope()
    manifest = {
        "media_id": MEDIA_ID,
        "kind": "photo",
        "mime": "image/jpeg",
        "bytes": 10,
        "sha256": "a" * 64,
        "chunk_bytes": 10,
    }
    if field in MEDIA_FIELDS:
        body["media"] = [manifest | {field: value}]
    else:
        body[field] = value
    event = decode_uplink("cgt/v1/tz-0001/report", encode(body))
    assert isinstance(event, UplinkRejected), event
    assert event.reason in (
        Reason.FIELD_INVALID,
        Reason.MEDIA_MIME,
        Reason.ENVELOPE_DEVICE_MISMATCH,
    )
    assert event.device_id == "tz-0001"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | hostile | st.sampled_from([MEDIA_ID, "a" * 64]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    topic=st.builds(
        "cgt/v1/{}/{}".format,
        st.sampled_from(["tz-0001"]) | hostile,
        st.sampled_from(["report", f"media/{MEDIA_ID}/0"]) | hostile,
    ),
    changes=st.dictionaries(st.sampled_from([*ID_FIELDS, "media"]), json_values, max_size=3),
)
@example(topic="cgt/v1/tz-0001/report", changes={})
@example(topic=f"cgt/v1/tz-0001/media/{MEDIA_ID.upper()}/7", changes={})
def test_whatever_survives_decoding_names_files_only_with_plain_names(
    topic: str, changes: dict[str, Any]
) -> None:
    assert_path_safe(decode_uplink(topic, encode(envelope([PHOTO]) | changes)))


# ---- the last guard -----------------------------------------------------------------------


@given(part=st.sampled_from(TRAVERSALS) | st.text(max_size=300))
@example(part="..")
@example(part="a/b")
def test_child_gives_a_path_under_its_root_or_refuses(part: str) -> None:
    root = Path("/srv/cgt/spool")
    try:
        path = child(root, part)
    except PathEscape:
        return
    assert path.parent == root
    assert os.path.normpath(path) == str(path)  # nothing to normalize away
    assert "\x00" not in part
    assert part.isascii()
    assert not part.startswith(".")


def test_the_local_object_store_refuses_a_key_that_leaves_its_root(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    for key in ["../x", "/abs", "a//b", "a/./b", "reports/../../x", "a\x00b", "a/.hidden", ""]:
        with pytest.raises(PermanentSinkError, match="leaves the object root"):
            store.put_bytes(key, b"x", content_type="text/plain")
    store.put_bytes(report_key(str(uuid.uuid4())), b"{}", content_type="application/json")
    assert [p.parent.parent.name for p in root.rglob("report.json")] == ["reports"]
    assert files_outside(tmp_path, root) == []


# ---- end to end: the intake and the pipeline on a data directory --------------------------


def files_outside(top: Path, data_dir: Path) -> list[Path]:
    """Every file under `top` but outside `data_dir`, plus anything named with MARKER in
    the temporary directory."""
    outside = [
        path for path in top.rglob("*") if path.is_file() and not path.is_relative_to(data_dir)
    ]
    return outside + list(Path(tempfile.gettempdir()).glob(f"*{MARKER}*"))


PROFILE = load_profile(default_config_dir() / "codes", "gbt30428")
GEO = Geo(load_locator(load_config(None).geo), FixChecks())


class Gateway:
    """The intake and the pipeline of one data directory, with the local object store."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True)
        self.data_dir = data_dir
        self.inbox = Inbox(data_dir / "inbox.db")
        self.outbox = Outbox(data_dir / "outbox.db")
        self.feed = Feeder(Intake(self.inbox, self.outbox, PROFILE, logs.get("test")))
        self.objects = LocalObjectStore(data_dir / "objects")
        self.publisher = MemoryPublisher()
        self.pipeline = Pipeline(
            inbox=Inbox(data_dir / "inbox.db"),
            outbox=Outbox(data_dir / "outbox.db"),
            spool=LocalSpool(data_dir / "spool"),
            media=InlineRunner(),
            registry=MemoryRegistry(),
            objects=self.objects,
            publisher=self.publisher,
            profile=PROFILE,
            window=AcceptanceWindow(ZoneInfo("Asia/Shanghai"), time(8), time(18)),
            geo=GEO,
            settings=FAST_PIPELINE,
            log=logs.get("test"),
        )

    def drain(self) -> None:
        assert any(self.pipeline.step() == 0 for _ in range(20))

    def acks(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.publisher.messages if t.endswith("/ack")]

    def close(self) -> None:
        self.pipeline.deliveries.close()
        for store in (self.pipeline.inbox, self.pipeline.outbox, self.inbox, self.outbox):
            store.close()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path / "deep" / "down" / "data")
    yield gateway
    gateway.close()


def hostile_messages() -> st.SearchStrategy[list[tuple[str, bytes]]]:
    chunk = st.builds(
        lambda device, media, seq: (f"cgt/v1/{device}/media/{media}/{seq}", PHOTO.chunks[0]),
        st.sampled_from(["tz-0001"]) | hostile,
        st.sampled_from([PHOTO.media_id]) | hostile,
        st.sampled_from(["0"]) | hostile,
    )
    report = st.builds(
        lambda device, field, value: (
            f"cgt/v1/{device}/report",
            encode(
                envelope([PHOTO])
                | (
                    {"media": [PHOTO.manifest | {field: value}]}
                    if field in MEDIA_FIELDS
                    else {field: value}
                )
            ),
        ),
        st.sampled_from(["tz-0001"]) | hostile,
        st.sampled_from(ID_FIELDS + MEDIA_FIELDS),
        hostile,
    )
    return st.lists(chunk | report, min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(messages=hostile_messages())
def test_hostile_messages_through_intake_and_pipeline_write_nothing_outside(
    messages: list[tuple[str, bytes]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="cgt-paths-") as top:
        gateway = Gateway(Path(top) / "deep" / "down" / "data")
        try:
            answers = gateway.feed(*messages)
            gateway.drain()
        finally:
            gateway.close()
        codes = {body["reason"]["code"] for _, body in answers if "reason" in body}
        assert codes <= {
            Reason.MEDIA_ID_IN_USE.value,
            Reason.TOPIC_MEDIA_ID.value,
            Reason.TOPIC_SEQ.value,
            Reason.TOPIC_MALFORMED.value,
            Reason.FIELD_INVALID.value,
            Reason.MEDIA_MIME.value,
            Reason.ENVELOPE_DEVICE_MISMATCH.value,
            Reason.CHUNK_SIZE.value,
        }
        assert sqlite_file(gateway.inbox.path).exists()
        assert files_outside(Path(top), gateway.data_dir) == []


def test_a_report_with_a_photo_files_everything_under_the_data_dir(
    box: Gateway, tmp_path: Path
) -> None:
    body = envelope([PHOTO])
    box.feed(*[(PHOTO.chunk_topic("tz-0001", n), data) for n, data in enumerate(PHOTO.chunks)])
    box.feed(("cgt/v1/tz-0001/report", encode(body)))
    box.drain()
    assert [ack["status"] for ack in box.acks()] == ["accepted"]
    objects = sorted(p.relative_to(box.objects.root) for p in box.objects.root.rglob("*.*"))
    assert len(objects) == 4  # the original, the display photo, the thumbnail, report.json
    assert files_outside(tmp_path, box.data_dir) == []


def test_an_id_that_got_past_the_grammar_is_refused_at_the_spool(
    box: Gateway, tmp_path: Path
) -> None:
    """Defence in depth: a report stored under a device id the grammar would refuse (as a
    bug or a hand-edited inbox could leave it) is rejected when its media would be
    spooled, not written beside the spool, and the pipeline carries on."""
    body = envelope([PHOTO])
    bad_device = f"../../{MARKER}"
    parsed = ReportEnvelope.model_validate_json(encode(body), strict=True)
    box.inbox.add_report(
        bad_device, body["report_id"], parsed, encode(body), "2026-11-28T01:15:03+00:00"
    )
    for seq, data in enumerate(PHOTO.chunks):
        box.inbox.add_chunk(bad_device, PHOTO.media_id, seq, data)
    with pytest.raises(PathEscape):
        box.pipeline.spool.path(bad_device, PHOTO.media_id)
    box.drain()
    [ack] = box.acks()
    assert ack["status"] == "rejected"
    assert ack["reason"]["code"] == Reason.FIELD_INVALID.value
    assert files_outside(tmp_path, box.data_dir) == []
    # the next, honest report goes through
    honest = envelope()
    box.feed(("cgt/v1/tz-0001/report", encode(honest)))
    box.drain()
    assert box.acks()[-1]["status"] == "accepted"


# ---- the simulator: what the broker sends it --------------------------------------------------


@settings(max_examples=300)
@given(device=hostile | st.just("tz-0001"), message=st.sampled_from(["ack", "task", "config"]))
def test_the_simulator_takes_downlinks_only_for_plain_device_ids(device: str, message: str) -> None:
    """Its queue files are named by its own sequence numbers under its own device ids;
    a downlink's ids (report, task, case) only ever go into JSON."""
    body = {"report_id": "../../x", "status": "accepted", "case_no": "../../x",
            "task_id": "../..", "kind": "verify", "chunk_bytes": 1, "photo_max_px": 1}  # fmt: skip
    parsed = parse_downlink(f"cgt/v1/{device}/{message}", json.dumps(body).encode())
    if DEVICE_ID.fullmatch(device) and device != "normalized":
        assert parsed.device_id == device
    else:
        assert isinstance(parsed, Malformed)
        assert parsed.code == "topic.malformed"
        assert parsed.device_id is None
