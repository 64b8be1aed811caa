"""What TLS costs the ingest path: the same backlogs as `bench.ingest`, drained over a plain
and over a TLS listener of one Mosquitto, and what a terminal's connection costs over each.

One broker, the project's config template with two listeners on loopback: plain and TLS
(a throwaway CA; the server's key ECDSA P-256, as `gateway broker-config --tls` makes it),
anonymous allowed. Rounds interleaved, the side that goes first alternating:
- bare paho-mqtt subscriber: N reports queued for its persistent session, then it connects
  and the clock runs until the N-th message is received (auto PUBACK);
- gateway end to end: N reports queued for the gateway's session, then it starts and the
  clock runs until every report is registered and its `accepted` ack confirmed (as in
  `bench.ingest`); over TLS the gateway trusts the CA through `[mqtt.tls] ca_file`;
- connect: a terminal-like client (MQTT 5, its own client id, keepalive 60) connects
  sequentially, each time a new TCP connection and a full handshake (no session
  resumption, as after a broker restart); the time from the TCP connect to the CONNACK,
  and the broker's CPU time (user + system, /proc) over all of them.
Every connection of a side, the backlog's publisher included, goes to that side's listener.
Between rounds the gateway's session is ended, so that the subscriber's backlogs are not
queued for it as well.
"""

from __future__ import annotations

import json
import os
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from bench.common import summary, write
from bench.ingest import GATEWAY_CLIENT_ID, client, end_session, gateway_round, payloads, raw_round
from bench.media import Load
from gateway.devices.pki import new_ca
from gateway.devices.tls_files import write_broker_tls
from gateway.harness.mosquitto import Listener, Mosquitto, free_port, write_config

REPORTS = 10_000
ROUNDS = 3
CONNECTS = 1_000  # per side and round: a fleet reconnecting after a broker restart


def broker_cpu_s(broker: Mosquitto) -> float:
    """User + system CPU time of the Mosquitto process so far."""
    assert broker.process is not None
    fields = Path(f"/proc/{broker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect_round(
    broker: Mosquitto, port: int, tls: ssl.SSLContext | None, side: str
) -> dict[str, Any]:
    """CONNECTS sequential connections, each timed from the TCP connect to its CONNACK."""
    times: list[float] = []
    negotiated: tuple[str | None, str | None] = (None, None)
    cpu_before = broker_cpu_s(broker)
    for n in range(CONNECTS):
        start = time.perf_counter()
        c = client(f"tz-bench-{side}-{n:04d}", port, persistent=False, tls=tls)
        while not c.is_connected():  # until the CONNACK
            status = c.loop(timeout=1)
            if status != paho.MQTT_ERR_SUCCESS or time.perf_counter() - start > 10:
                raise RuntimeError(f"connection {n} over {side}: no CONNACK ({status})")
        times.append(time.perf_counter() - start)
        sock = c.socket()
        if isinstance(sock, ssl.SSLSocket):
            negotiated = (sock.version(), (sock.cipher() or (None,))[0])
        c.disconnect()
    cpu = broker_cpu_s(broker) - cpu_before
    return {
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": statistics.quantiles(times, n=20)[-1] * 1000,
        "all_s": sum(times),
        "broker_cpu_ms_per_connect": cpu / CONNECTS * 1000,
        "tls_version": negotiated[0],
        "cipher": negotiated[1],
    }


def run() -> dict[str, Any]:
    load_before = os.getloadavg()[0]  # others share the cores; the doc states it
    load = Load()  # and how much of the CPU time others took during the run
    messages = payloads()[:REPORTS]
    samples: dict[str, dict[str, list[float]]] = {"plain": {}, "tls": {}}
    negotiated: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cgt-bench-tls-") as scratch_dir:
        scratch = Path(scratch_dir)
        files = write_broker_tls(scratch / "certs", new_ca(), ["127.0.0.1", "localhost"])
        plain_port = free_port()
        tls_port = free_port()
        while tls_port == plain_port:
            tls_port = free_port()
        conf = write_config(
            scratch / "broker",
            [Listener(plain_port), Listener(tls_port, tls=files)],
            allow_anonymous=True,
            run_as="root" if os.geteuid() == 0 else None,  # as `Mosquitto.start` does
        )
        gateway_config = scratch / "gateway-tls.toml"
        gateway_config.write_text(f'[mqtt.tls]\nca_file = "{files.ca_file}"\n')
        context = ssl.create_default_context(cafile=str(files.ca_file))  # as the gateway's
        sides: dict[str, tuple[int, ssl.SSLContext | None, str, Path | None]] = {
            "plain": (plain_port, None, f"mqtt://127.0.0.1:{plain_port}", None),
            "tls": (tls_port, context, f"mqtts://127.0.0.1:{tls_port}", gateway_config),
        }
        with (
            load.section("run"),  # the broker included: it is reaped at the section's end
            Mosquitto(scratch / "broker", port=plain_port, conf=conf) as broker,
        ):
            for n in range(ROUNDS):  # interleaved, so drift in the machine hits both alike
                order = ["plain", "tls"] if n % 2 == 0 else ["tls", "plain"]
                for side in order:
                    port, tls, url, config = sides[side]
                    rates = samples[side]
                    rates.setdefault("raw", []).append(raw_round(port, messages, tls))
                    gateway = gateway_round(url, messages, scratch, tls=tls, config=config)
                    end_session(plain_port, GATEWAY_CLIENT_ID)
                    rates.setdefault("end_to_end", []).append(gateway["end_to_end"])
                    rates.setdefault("inbox_commit", []).append(gateway["inbox_commit"])
                    connects = connect_round(broker, port, tls, side)
                    rates.setdefault("connect_ms", []).append(connects["median_ms"])
                    rates.setdefault("connect_p95_ms", []).append(connects["p95_ms"])
                    rates.setdefault("connects_all_s", []).append(connects["all_s"])
                    rates.setdefault("broker_cpu_ms_per_connect", []).append(
                        connects["broker_cpu_ms_per_connect"]
                    )
                    if side == "tls":
                        negotiated = {
                            "version": connects["tls_version"],
                            "cipher": connects["cipher"],
                        }
    figures: dict[str, dict[str, Any]] = {}
    for key in samples["plain"]:
        plain, over_tls = summary(samples["plain"][key]), summary(samples["tls"][key])
        ratio = over_tls["median"] / plain["median"] if plain["median"] else None
        figures[key] = {"plain": plain, "tls": over_tls, "ratio_tls_to_plain": ratio}
    result = {
        "benchmark": "tls",
        "reports": REPORTS,
        "rounds": ROUNDS,
        "connects_per_round": CONNECTS,
        "load_average_1m": {"start": load_before, "end": os.getloadavg()[0]},
        "others": load.sections["run"],
        "tls": {"server_key": "ECDSA P-256", **negotiated},
        "units": {
            "raw": "reports per second, bare paho subscriber",
            "end_to_end": "reports per second, registered and acked",
            "inbox_commit": "reports per second, committed to the inbox",
            "connect_ms": "median ms from TCP connect to CONNACK, per round",
            "connect_p95_ms": "95th percentile ms from TCP connect to CONNACK, per round",
            "connects_all_s": "s for all the connections of a round, back to back (sum)",
            "broker_cpu_ms_per_connect": "Mosquitto's CPU ms per connection (and disconnect)",
        },
        **figures,
    }
    write("tls", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
