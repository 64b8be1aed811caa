"""The terminal's upload protocol against a scripted gateway, with no broker.

`FakeLink` stands in for the MQTT link: it records what the terminal publishes and
hands each message to a script, which answers through `Terminal.on_downlink` on the
next loop iteration, the way a broker delivery would arrive.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from datetime import datetime

import orjson
import pytest

from firmware_sim import wire
from firmware_sim.faults import FaultDice, Faults
from firmware_sim.link import LinkError, UplinkSource
from firmware_sim.outcomes import Outcome, Tally
from firmware_sim.reports import (
    CHINA_TIME,
    ComposedReport,
    MediaKit,
    ReportPlanner,
    compose,
    load_codes,
)
from firmware_sim.terminal import Terminal, TerminalSettings
from firmware_sim.wire import Uplink

DEVICE = "tz-0042"
CHUNK = 4096


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[Uplink] = []
        self.script: Callable[[Uplink], None] = lambda _: None
        self.down = False

    async def publish(self, message: Uplink) -> None:
        if self.down:
            raise LinkError("the broker is unreachable")
        self.sent.append(message)
        asyncio.get_running_loop().call_soon(self.script, message)

    async def publish_all(self, sources: Iterable[UplinkSource]) -> None:
        for source in sources:
            await self.publish(source())

    def envelopes(self) -> list[Uplink]:
        return [m for m in self.sent if m.topic.endswith("/report")]

    def chunks(self) -> list[tuple[str, int]]:
        return [
            (parts[4], int(parts[5]))
            for parts in (m.topic.split("/") for m in self.sent)
            if parts[3] == "media"
        ]


def answer(terminal: Terminal, message: str, **body: object) -> None:
    terminal.on_downlink(f"cgt/v1/{DEVICE}/{message}", orjson.dumps(body))


@pytest.fixture
def report(small_kit: MediaKit) -> ComposedReport:
    rng = random.Random(7)
    plan = ReportPlanner(load_codes(), rng, voice_share=1.0).next(datetime.now(CHINA_TIME))
    return compose(plan, small_kit, "INS-0042", CHUNK, rng)


def make(
    ack_timeout_s: float = 30.0, max_attempts: int = 3, max_resends: int = 5
) -> tuple[Terminal, FakeLink, Tally]:
    link = FakeLink()
    tally = Tally(terminals=1, planned=1)
    settings = TerminalSettings(CHUNK, ack_timeout_s, max_attempts, max_resends)
    return Terminal(DEVICE, link, settings, tally), link, tally


def submit(terminal: Terminal, report: ComposedReport) -> Outcome:
    return asyncio.run(terminal.submit(report))


def all_chunks(report: ComposedReport) -> list[tuple[str, int]]:
    return [(e.media_id, seq) for e in report.envelope.media for seq in range(e.chunk_count)]


def test_chunks_first_then_the_envelope_then_accepted(report: ComposedReport) -> None:
    terminal, link, tally = make()
    report_id = report.envelope.report_id

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            answer(terminal, "ack", report_id=report_id, status="accepted", case_no="E0102")

    link.script = gateway
    outcome = submit(terminal, report)
    assert (outcome.status, outcome.case_no, outcome.published) == ("accepted", "E0102", 1)
    assert outcome.latency_ms is not None
    assert outcome.latency_ms >= 0
    assert link.chunks() == all_chunks(report)
    assert link.sent[-1] == wire.report_message(DEVICE, report.envelope)
    for entry in report.envelope.media:  # the chunks are the files, cut at CHUNK bytes
        data = b"".join(m.payload for m in link.sent if f"/media/{entry.media_id}/" in m.topic)
        assert data == report.files[entry.media_id].read()
    assert (tally.sent, tally.accepted, tally.in_flight) == (1, 1, 0)


def test_incomplete_resends_exactly_the_missing_chunks(report: ComposedReport) -> None:
    terminal, link, _ = make()
    photo = report.envelope.media[0]
    report_id = report.envelope.report_id
    stranger = "00000000-0000-4000-8000-000000000000"

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            missing = {photo.media_id.upper(): [1, 3, 10_000], stranger: [0]}
            answer(terminal, "ack", report_id=report_id, status="incomplete", missing=missing)
        elif len(link.chunks()) == len(all_chunks(report)) + 2:
            answer(terminal, "ack", report_id=report_id, status="accepted", case_no="E1")

    link.script = gateway
    outcome = submit(terminal, report)
    assert (outcome.status, outcome.resends, outcome.published) == ("accepted", 1, 1)
    # Only what was asked for and exists: not the stranger's, not past the last chunk.
    assert link.chunks()[len(all_chunks(report)) :] == [(photo.media_id, 1), (photo.media_id, 3)]


def test_silence_republishes_the_same_envelope(report: ComposedReport) -> None:
    terminal, link, _ = make(ack_timeout_s=0.05)
    report_id = report.envelope.report_id

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report") and len(link.envelopes()) == 2:
            answer(terminal, "ack", report_id=report_id, status="accepted", case_no="E1")

    link.script = gateway
    outcome = submit(terminal, report)
    assert (outcome.status, outcome.published) == ("accepted", 2)
    first, second = link.envelopes()
    assert first == second  # same report id: "tell me where it stands"
    assert link.chunks() == all_chunks(report)  # the media are not sent again


def test_gives_up_after_max_attempts(report: ComposedReport) -> None:
    terminal, link, tally = make(ack_timeout_s=0.02, max_attempts=3)
    outcome = submit(terminal, report)
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.code == "ack.timeout"
    assert (outcome.published, len(link.envelopes())) == (3, 3)
    assert (tally.sent, tally.retries, tally.in_flight) == (1, 1, 0)


def test_rejected_is_final(report: ComposedReport) -> None:
    terminal, link, tally = make()
    reason = {"code": "class.unknown", "message": "event 0999 is not in profile", "field": "x"}

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            answer(
                terminal,
                "ack",
                report_id=report.envelope.report_id,
                status="rejected",
                reason=reason,
            )

    link.script = gateway
    outcome = submit(terminal, report)
    assert outcome.status == "rejected"
    assert outcome.reason is not None
    assert (outcome.reason.code, outcome.reason.field) == ("class.unknown", "x")
    assert tally.rejected == 1


def test_an_error_about_the_envelope_ends_the_report(report: ComposedReport) -> None:
    terminal, link, _ = make()

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            reason = {"code": "payload.not_json", "message": "the payload is not UTF-8 JSON"}
            answer(terminal, "error", topic=message.topic, reason=reason)

    link.script = gateway
    outcome = submit(terminal, report)
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.code == "payload.not_json"
    assert len(link.envelopes()) == 1  # repeating a broken envelope cannot help


def test_an_error_about_a_chunk_is_noted_and_the_wait_goes_on(report: ComposedReport) -> None:
    terminal, link, _ = make()
    photo = report.envelope.media[0]
    report_id = report.envelope.report_id

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            reason = {"code": "chunk.size_mismatch", "message": "chunk 0 has 1 bytes"}
            topic = wire.media_topic(DEVICE, photo.media_id, 0)
            answer(terminal, "error", topic=topic, reason=reason, media_id=photo.media_id, seq=0)
            answer(terminal, "ack", report_id=report_id, status="accepted", case_no="E7")

    link.script = gateway
    assert submit(terminal, report).status == "accepted"


def test_bounded_resends_when_the_gateway_keeps_asking(report: ComposedReport) -> None:
    terminal, link, _ = make(max_resends=2)
    photo = report.envelope.media[0]

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report") or message.topic.endswith("/0"):
            missing = {photo.media_id: [0]}
            answer(
                terminal,
                "ack",
                report_id=report.envelope.report_id,
                status="incomplete",
                missing=missing,
            )

    link.script = gateway
    outcome = submit(terminal, report)
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.code == "upload.stuck"
    assert outcome.resends == 3


def test_a_dead_link_fails_the_report_without_counting_it_sent(report: ComposedReport) -> None:
    terminal, link, tally = make(max_attempts=2)
    link.down = True
    outcome = submit(terminal, report)
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.code == "link.down"
    assert (outcome.published, tally.sent, tally.retries) == (0, 0, 1)


def test_downlinks_outside_any_report() -> None:
    terminal, _, _ = make()
    answer(
        terminal,
        "ack",
        report_id="6f1c2d2e-4b8e-4a53-9a8e-2f7d0b5c1a90",
        status="accepted",
        case_no="E",
    )
    answer(terminal, "task", task_id="t-1", case_no="E01", kind="verify")
    answer(terminal, "error", topic=f"cgt/v1/{DEVICE}/status", reason={"code": "x", "message": "y"})
    terminal.on_downlink(f"cgt/v1/{DEVICE}/ack", b"not json")
    assert terminal.chunk_bytes == CHUNK
    answer(terminal, "config", chunk_bytes=32768, photo_max_px=4000)
    assert terminal.strays == 1
    assert [task.task_id for task in terminal.tasks] == ["t-1"]
    assert [notice.reason.code for notice in terminal.notices] == ["x"]
    assert [m.code for m in terminal.malformed] == ["payload.not_json"]
    assert terminal.chunk_bytes == 32768  # the gateway's config wins over the default
    answer(terminal, "config", chunk_bytes=10**9, photo_max_px=4000)
    assert terminal.chunk_bytes == CHUNK  # beyond wire-v1's chunk limit: ignored


# ---- store and forward, and faults on demand ---------------------------------------------


def test_a_resumed_report_sends_the_envelope_then_only_what_is_missing(
    report: ComposedReport,
) -> None:
    terminal, link, _ = make()
    photo = report.envelope.media[0]
    report_id = report.envelope.report_id

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            missing = {photo.media_id: [2]}
            answer(terminal, "ack", report_id=report_id, status="incomplete", missing=missing)
        else:
            answer(terminal, "ack", report_id=report_id, status="accepted", case_no="E7")

    link.script = gateway
    outcome = asyncio.run(terminal.submit(report, resume=True))
    assert (outcome.status, outcome.case_no) == ("accepted", "E7")
    assert link.chunks() == [(photo.media_id, 2)]
    assert link.sent[0].topic.endswith("/report")


def test_the_uploaded_mark_comes_once_every_chunk_went_out(report: ComposedReport) -> None:
    terminal, link, _ = make()
    marks: list[int] = []

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            answer(terminal, "ack", report_id=report.envelope.report_id, status="accepted",
                   case_no="E1")  # fmt: skip

    link.script = gateway
    asyncio.run(terminal.submit(report, on_uploaded=lambda: marks.append(len(link.chunks()))))
    assert marks == [len(all_chunks(report))]


def test_retry_later_keeps_the_report_for_another_try(report: ComposedReport) -> None:
    terminal, link, tally = make()
    reason = {"code": "server.retry_later", "message": "the spool is full"}

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            answer(terminal, "ack", report_id=report.envelope.report_id, status="rejected",
                   reason=reason)  # fmt: skip

    link.script = gateway
    outcome = submit(terminal, report)
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.code == "server.retry_later"
    assert (tally.rejected, tally.retries) == (0, 1)


@pytest.mark.parametrize("code", ["limit.reports_per_minute", "server.retry_later"])
def test_a_rejection_saying_not_now_keeps_the_report(report: ComposedReport, code: str) -> None:
    terminal, link, tally = make()

    def gateway(message: Uplink) -> None:
        if message.topic.endswith("/report"):
            answer(terminal, "ack", report_id=report.envelope.report_id, status="rejected",
                   reason={"code": code, "message": "over budget"})  # fmt: skip

    link.script = gateway
    outcome = submit(terminal, report)
    assert (outcome.status, outcome.reason and outcome.reason.code) == ("failed", code)
    assert (tally.rejected, tally.retries) == (0, 1)


@pytest.mark.parametrize("code", ["limit.media_bytes_per_hour", "limit.spool_bytes"])
def test_a_chunk_over_the_devices_budget_keeps_the_report_for_later(
    report: ComposedReport, code: str
) -> None:
    terminal, link, tally = make()
    media_id = report.envelope.media[0].media_id

    def gateway(message: Uplink) -> None:
        if message.topic.endswith(f"/{media_id}/0"):
            answer(terminal, "error", topic=message.topic, media_id=media_id, seq=0,
                   reason={"code": code, "message": "over budget"})  # fmt: skip

    link.script = gateway
    outcome = submit(terminal, report)
    assert (outcome.status, outcome.reason and outcome.reason.code) == ("failed", code)
    assert len(link.envelopes()) == 1  # no round of re-sends into the limit
    assert (tally.rejected, tally.retries) == (0, 1)


def test_faults_spoil_only_the_first_upload_and_junk_does_not_end_the_report(
    report: ComposedReport,
) -> None:
    faults = Faults(chunk_loss=0.3, chunk_corrupt=0.3, duplicate_publish=0.5, malformed_envelope=1)
    dice = FaultDice(faults, random.Random(11))
    link = FakeLink()
    terminal = Terminal(DEVICE, link, TerminalSettings(CHUNK, 30.0, 3, 5), Tally(1), faults=dice)
    report_id = report.envelope.report_id
    clean = {
        (e.media_id, seq): report.files[e.media_id].chunk(seq, CHUNK)
        for e in report.envelope.media
        for seq in range(e.chunk_count)
    }
    asked: list[tuple[str, int]] = []
    resent_from = 0

    def gateway(message: Uplink) -> None:
        nonlocal resent_from
        topic = message.topic
        if (
            topic.endswith("/report")
            and message.payload != wire.report_message(DEVICE, report.envelope).payload
        ):  # junk: an error notice, tied to no report
            reason = {"code": "envelope.invalid", "message": "not an envelope"}
            answer(terminal, "error", topic=topic, reason=reason)
        elif topic.endswith("/report") and not asked:  # the gateway checks what it got
            received: dict[tuple[str, int], bytes] = {}
            for sent in link.sent:
                parts = sent.topic.split("/")
                if parts[3] == "media":
                    received.setdefault((parts[4], int(parts[5])), sent.payload)
            asked.extend(key for key, data in clean.items() if received.get(key) != data)
            missing: dict[str, list[int]] = {}
            for media_id, seq in asked:
                missing.setdefault(media_id, []).append(seq)
            resent_from = len(link.sent)
            answer(terminal, "ack", report_id=report_id, status="incomplete", missing=missing)
        elif asked and len(link.sent) - resent_from == len(asked):
            answer(terminal, "ack", report_id=report_id, status="accepted", case_no="E9")

    link.script = gateway
    outcome = asyncio.run(terminal.submit(report))

    assert outcome.status == "accepted"
    assert asked, "the faults spoilt nothing with this seed"
    assert dice.counts.chunks_lost + dice.counts.chunks_garbled > 0
    for message in link.sent[resent_from:]:  # what was asked for again went out clean
        parts = message.topic.split("/")
        assert message.payload == clean[(parts[4], int(parts[5]))]
    assert (terminal.junk_pending, terminal.junk_answered) == (0, 1)
    assert dice.counts.junk_envelopes == 1
