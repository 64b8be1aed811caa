"""What operators see and rely on: /metrics, /healthz, and bounded local stores."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.harness.mosquitto import Mosquitto, free_port
from tests.factories import encode, envelope, photo_upload
from tests.integration.helpers import GatewayProcess, Terminal, wait_until

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        error.close()
        return error.code, body


def samples(text: str) -> dict[str, float]:
    """Prometheus text format to {name{labels}: value}."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def start_gateway(
    tmp_path: Path, broker: Mosquitto, settings: str = ""
) -> tuple[GatewayProcess, str]:
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n{settings}', encoding="utf-8")
    gateway = GatewayProcess(tmp_path / "gateway", broker.url, config=config).start()
    return gateway, f"http://127.0.0.1:{port}"


def test_metrics_count_what_happened_and_healthz_follows_the_broker(
    tmp_path: Path, broker: Mosquitto
) -> None:
    gateway, base = start_gateway(tmp_path, broker)
    terminal = Terminal(broker.url, "tz-0301")
    photo = photo_upload(size=(640, 480))
    good, unknown = envelope([photo]), envelope(class_code="0999")
    terminal.send(good, [photo])
    terminal.send(unknown)
    assert terminal.wait_final(good["report_id"])["status"] == "accepted"
    assert terminal.wait_final(unknown["report_id"])["status"] == "rejected"
    terminal.close()

    def accepted() -> float:
        return samples(get(f"{base}/metrics")[1]).get("cgt_reports_accepted_total", 0)

    wait_until(lambda: accepted() == 1, 10, "the accepted report in the metrics")
    status, text = get(f"{base}/metrics")
    values = samples(text)
    assert status == 200
    assert values['cgt_messages_received_total{type="report"}'] == 2
    assert values['cgt_messages_received_total{type="chunk"}'] == len(photo.chunks)
    assert values["cgt_reports_received_total"] == 1  # the unknown class was never stored
    assert values['cgt_rejected_total{reason="class.unknown"}'] == 1
    assert values['cgt_media_bytes_in_total{kind="photo"}'] == len(photo.data)
    assert values['cgt_media_bytes_out_total{kind="photo"}'] > 0
    assert values['cgt_stage_latency_seconds_count{stage="registry"}'] == 1
    assert values["cgt_broker_connected"] == 1
    assert values['cgt_outbox_depth{sink="ack"}'] == 0
    assert values['cgt_dead_letters{sink="objects"}'] == 0
    assert values['cgt_intake_refusing{what="media"}'] == 0

    status, body = get(f"{base}/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")
    broker.stop()
    wait_until(lambda: get(f"{base}/healthz")[0] == 503, 20, "healthz to fail")
    assert json.loads(get(f"{base}/healthz")[1])["checks"]["broker"] is False
    assert samples(get(f"{base}/metrics")[1])["cgt_broker_connected"] == 0
    broker.start()
    wait_until(lambda: get(f"{base}/healthz")[0] == 200, 30, "healthz to recover")
    gateway.stop()


def test_a_full_disk_refuses_new_reports_with_retry_later_and_keeps_answering(
    tmp_path: Path, broker: Mosquitto
) -> None:
    # 1 EB of free space wanted: this disk is "full" from the start.
    gateway, base = start_gateway(
        tmp_path, broker, "[store]\nmin_free_bytes = 1000000000000000000\n"
    )
    terminal = Terminal(broker.url, "tz-0302")
    body = envelope()
    terminal.send(body)
    answer = terminal.wait_final(body["report_id"])

    assert answer["status"] == "rejected"
    assert answer["reason"]["code"] == "server.retry_later"
    assert "bytes free" in answer["reason"]["message"]
    assert gateway.count("inbox.db", "SELECT count(*) FROM reports") == 0
    values = samples(get(f"{base}/metrics")[1])
    assert values['cgt_intake_refusing{what="reports"}'] == 1
    assert values['cgt_rejected_total{reason="server.retry_later"}'] == 1
    assert get(f"{base}/healthz")[0] == 200  # full is not broken: the gateway still answers
    refused = [line for line in gateway.log_lines() if line.get("event") == "store.reports_refused"]
    assert len(refused) == 1
    terminal.close()
    gateway.stop()


def test_at_the_spool_bound_media_wait_until_it_drains(tmp_path: Path, broker: Mosquitto) -> None:
    gateway, base = start_gateway(tmp_path, broker, "[store]\nspool_max_bytes = 40000\n")
    terminal = Terminal(broker.url, "tz-0303")
    first = photo_upload(size=(800, 600), chunk_bytes=16384)
    assert len(first.data) > 40000
    held = envelope([first])
    for seq in range(len(first.chunks) - 1):  # all but the last chunk: the spool is full
        terminal.publish(first.chunk_topic("tz-0303", seq), first.chunks[seq])
    terminal.publish("cgt/v1/tz-0303/report", encode(held))
    metric = 'cgt_intake_refusing{what="media"}'
    wait_until(lambda: samples(get(f"{base}/metrics")[1])[metric] == 1, 10, "the spool full")

    second = photo_upload(size=(320, 240))
    waiting, text = envelope([second]), envelope()
    terminal.send(waiting, [second])
    terminal.send(text)
    assert terminal.wait_final(waiting["report_id"])["reason"]["code"] == "server.retry_later"
    assert terminal.wait_final(text["report_id"])["status"] == "accepted"

    # The held upload still cannot finish while full: its last chunk is refused too ...
    last = len(first.chunks) - 1
    terminal.publish(first.chunk_topic("tz-0303", last), first.chunks[last])

    def refused() -> bool:
        terminal.pump()
        return bool(terminal.errors)

    wait_until(refused, 10, "the chunk refused")
    assert terminal.errors[-1]["reason"]["code"] == "server.retry_later"
    # ... so the operator raises the bound (a restart with a bigger spool), and it drains.
    gateway.stop()
    config = tmp_path / "gateway.toml"
    config.write_text(config.read_text().replace("40000", "10000000"), encoding="utf-8")
    gateway.start()
    terminal.publish(first.chunk_topic("tz-0303", last), first.chunks[last])
    assert terminal.wait_final(held["report_id"])["status"] == "accepted"
    terminal.send(waiting, [second])
    wait_until(
        lambda: (terminal.final(waiting["report_id"]) or {}).get("status") == "accepted",
        20,
        "the waiting report accepted on its second try",
    )
    terminal.close()
    gateway.stop()
