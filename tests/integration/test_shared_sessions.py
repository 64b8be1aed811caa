"""Several gateway instances in one shared subscription on Mosquitto: what the session
settings do when one member dies and never comes back (docs/cluster-broker.md).

Two members, A (in this process) and B (a child process, so that it can die the way an
instance dies: SIGKILL, or SIGSTOP for a host that hangs), share `$share/cluster/...` on
one topic filter; a publisher sends QoS 1 messages before and after B dies. Measured for
the gateway's session today (clean start off, expiry 7 days) and for the cluster mode's
(clean start, expiry 0):

- how many of the messages published after B's death reach A;
- what becomes of the messages B had received and not acknowledged (never sent a
  PUBACK) when it died: sent again to A, kept for B, or dropped.

Each test prints one `shared-sessions:` line with the counts (`pytest -s` shows them).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.harness.mosquitto import Mosquitto

pytestmark = pytest.mark.integration

GROUP = "cluster"
FILTER = "cgt/v1/+/report"
SHARED = f"$share/{GROUP}/{FILTER}"
WEEK_S = 7 * 24 * 3600
N = 200  # messages published after B's death
N_BEFORE = 40  # published while both members are up: about half go to B
GRACE_S = 1.0  # after the last PUBACK: time for a redispatch that would still come

# Member B: connects, subscribes to the shared filter, prints every payload it receives
# (flushed, so the test sees it before B dies), and acknowledges it or never does.
MEMBER = r"""
import sys
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

port, client_id, expiry, clean, acks, shared, keepalive = sys.argv[1:]
client = paho.Client(
    CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, manual_ack=True
)

def connected(client, userdata, flags, reason, properties):
    client.subscribe(shared, qos=1)

def subscribed(client, userdata, mid, reasons, properties):
    print("ready", flush=True)

def received(client, userdata, message):
    print(message.payload.decode(), flush=True)
    if acks == "1":
        client.ack(message.mid, message.qos)

client.on_connect = connected
client.on_subscribe = subscribed
client.on_message = received
properties = Properties(PacketTypes.CONNECT)
properties.SessionExpiryInterval = int(expiry)
properties.ReceiveMaximum = 500  # the gateway's default (mqtt.receive_maximum)
client.connect(
    "127.0.0.1", int(port), keepalive=int(keepalive), clean_start=clean == "1",
    properties=properties,
)
client.loop_forever()
"""


@dataclass(frozen=True, slots=True)
class Session:
    """The member's side of the session: what it sends in CONNECT."""

    name: str
    clean_start: bool
    expiry_s: int


PERSISTENT = Session("persistent (clean_start=False, expiry 7 d)", False, WEEK_S)
CLEAN = Session("clean (clean_start=True, expiry 0)", True, 0)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Member:
    """Member B: a child process, printing what it receives."""

    def __init__(
        self, broker: Mosquitto, client_id: str, session: Session, *, acks: bool, keepalive: int
    ) -> None:
        self.client_id = client_id
        self.received: list[str] = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                MEMBER,
                str(broker.port),
                client_id,
                str(session.expiry_s),
                "1" if session.clean_start else "0",
                "1" if acks else "0",
                SHARED,
                str(keepalive),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,))
        self._reader.start()
        if not self._ready.wait(10):
            self.kill()
            raise TimeoutError(f"{client_id} did not subscribe")

    def _read(self, stdout: IO[str]) -> None:
        with stdout:
            for line in stdout:
                if line.strip() == "ready":
                    self._ready.set()
                else:
                    self.received.append(line.strip())

    def signal(self, which: signal.Signals) -> None:
        self.process.send_signal(which)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL; also ends a stopped process
        self.process.wait(10)
        self._reader.join(10)


class InProcess:
    """Member A (acknowledging each message as it arrives) or the publisher."""

    def __init__(self, broker: Mosquitto, client_id: str, session: Session | None) -> None:
        self.received: list[str] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )

        def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
            with self._lock:
                self.received.append(message.payload.decode())

        self.client.on_message = on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = session.expiry_s if session else 0
        properties.ReceiveMaximum = 500
        self.client.connect(
            "127.0.0.1",
            broker.port,
            clean_start=session.clean_start if session else True,
            properties=properties,
        )
        self.client.loop_start()
        if session is not None:
            self.client.subscribe(SHARED, qos=1)
            if not subscribed.wait(10):
                raise TimeoutError(f"{client_id} did not subscribe")

    def got(self, prefix: str) -> set[str]:
        with self._lock:
            return {item for item in self.received if item.startswith(prefix)}

    def publish(self, prefix: str, count: int) -> None:
        sent = [
            self.client.publish(f"cgt/v1/tz-{i % 20:04d}/report", f"{prefix}{i}", qos=1)
            for i in range(count)
        ]
        for info in sent:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def disconnected(broker: Mosquitto, client_id: str) -> Callable[[], bool]:
    """The broker has logged the end of `client_id`'s connection (connection_messages)."""
    log = broker.directory / "mosquitto.log"
    endings = ("closed its connection.", "disconnecting.", "has exceeded timeout.")

    def seen() -> bool:
        text = log.read_text() if log.exists() else ""
        return any(client_id in line and line.endswith(endings) for line in text.splitlines())

    return seen


@dataclass
class Measured:
    session: Session
    b_acks: bool
    before_to_b: int = 0  # of N_BEFORE, received by B (acked or not, as b_acks says)
    before_to_a: int = 0
    after_to_a: int = 0  # of N, published after B's death
    b_unacked_to_a: int = 0  # B's messages that A received after B died
    b_return: dict[str, int] = field(default_factory=dict)  # what B got when it came back

    def line(self) -> str:
        held = "acked" if self.b_acks else "unacked"
        text = (
            f"shared-sessions: mosquitto, {self.session.name},"
            f" B {'acks' if self.b_acks else 'never acks'}"
            f" -> before the kill A={self.before_to_a} B={self.before_to_b} of {N_BEFORE};"
            f" after B's SIGKILL A got {self.after_to_a} of {N} new;"
            f" of B's {self.before_to_b} {held} ones A got {self.b_unacked_to_a}"
        )
        if self.b_return:
            text += (
                f"; B reconnecting (same id, clean_start=False) got {self.b_return['after']}"
                f" of the new and {self.b_return['before']} of its own earlier ones"
            )
        return text


def settle(members: list[Callable[[], int]], timeout_s: float) -> None:
    """Wait until the counts stop moving for GRACE_S (or timeout_s passes)."""
    deadline = time.monotonic() + timeout_s
    last, since = [f() for f in members], time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = [f() for f in members]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= GRACE_S:
            return


def measure_sigkill(broker: Mosquitto, session: Session, *, b_acks: bool) -> Measured:
    result = Measured(session, b_acks)
    a = InProcess(broker, "member-a", session)
    b = Member(broker, "member-b", session, acks=b_acks, keepalive=30)
    publisher = InProcess(broker, "publisher", None)
    try:
        publisher.publish("before-", N_BEFORE)
        wait_for(
            lambda: len(a.got("before-")) + len(set(b.received)) >= N_BEFORE,
            10,
            "the first messages at A and B",
        )
        b_before = set(b.received)
        b.kill()
        wait_for(disconnected(broker, "member-b"), 10, "the broker to see B gone")
        publisher.publish("after-", N)
        settle([lambda: len(a.received)], 5)
        result.before_to_b = len(b_before)
        result.before_to_a = len(a.got("before-") - b_before)
        result.after_to_a = len(a.got("after-"))
        result.b_unacked_to_a = len(a.got("before-") & b_before)
        if not session.clean_start:
            # The stranded messages are B's, not lost: they wait for B's client id.
            back = Member(broker, "member-b", session, acks=True, keepalive=30)
            settle([lambda: len(back.received)], 5)
            result.b_return = {
                "after": len({m for m in back.received if m.startswith("after-")}),
                "before": len(set(back.received) & b_before),
            }
            back.kill()
    finally:
        b.kill()
        a.close()
        publisher.close()
    print(result.line())
    return result


@pytest.mark.parametrize("b_acks", [True, False], ids=["b-acks", "b-never-acks"])
def test_persistent_sessions_strand_a_dead_members_share(broker: Mosquitto, b_acks: bool) -> None:
    """The gateway's session today, shared: a dead member's offline session keeps taking
    its share of new messages, which wait for a client id that never comes back."""
    measured = measure_sigkill(broker, PERSISTENT, b_acks=b_acks)
    assert 0 < measured.after_to_a < N, "A gets only its share: the rest is queued for B"
    assert measured.b_unacked_to_a == 0, "B's messages stay B's (its session holds them)"
    # ... and they are all there for B if it ever comes back with the same id.
    assert measured.b_return["after"] == N - measured.after_to_a
    if not b_acks:  # its unacknowledged ones are sent again too
        assert measured.b_return["before"] == measured.before_to_b


@pytest.mark.parametrize("b_acks", [True, False], ids=["b-acks", "b-never-acks"])
def test_clean_sessions_give_the_survivor_everything_new(broker: Mosquitto, b_acks: bool) -> None:
    """The cluster mode: B's session ends with its connection, so every new message goes
    to the members still connected. What B held unacknowledged is dropped by the broker
    (not sent to A); the terminals send again what was never `accepted`."""
    measured = measure_sigkill(broker, CLEAN, b_acks=b_acks)
    assert measured.after_to_a == N, "the survivor gets every message after B's death"
    assert measured.b_unacked_to_a == 0, "Mosquitto does not redispatch a dead member's"


def test_a_hung_member_takes_its_share_until_the_keepalive_ends_it(broker: Mosquitto) -> None:
    """A member that stops without its socket closing (a hung host, a partition): the
    broker goes on dispatching to it until 1.5 x keepalive has passed, and with expiry 0
    those messages go when the session does. Afterwards the survivor gets everything."""
    keepalive = 2
    a = InProcess(broker, "member-a", CLEAN)
    b = Member(broker, "member-b", CLEAN, acks=True, keepalive=keepalive)
    publisher = InProcess(broker, "publisher", None)
    try:
        b.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        publisher.publish("hung-", N)
        wait_for(disconnected(broker, "member-b"), 3 * keepalive, "the keepalive to end B")
        noticed_s = time.monotonic() - stopped
        publisher.publish("after-", N)
        settle([lambda: len(a.received)], 5)
        hung_to_a, after_to_a = len(a.got("hung-")), len(a.got("after-"))
    finally:
        b.kill()
        a.close()
        publisher.close()
    print(
        f"shared-sessions: mosquitto, {CLEAN.name}, B SIGSTOPped (keepalive {keepalive} s)"
        f" -> broker ended B after {noticed_s:.1f} s; while B hung A got {hung_to_a} of {N};"
        f" after B was ended A got {after_to_a} of {N}"
    )
    assert hung_to_a < N, "while hung, B still takes its share"
    assert after_to_a == N
