"""The demo's command center: a casework backend with a broker account of its own that
takes the demo's new cases a few steps along their lifecycle over MQTT (docs/cases.md), so
the console has states, deadline lights, histories, verification tasks and statistics to
show. It does what a city's acceptance desk and dispatch system would do, through the
same contract (cgt/v1/cases/commands/<account>, docs/asyncapi.yaml)."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.devices.broker_files import with_new_password
from gateway.devices.device_registry import DeviceRegistry
from gateway.protocols import casework

ACCOUNT = "desk"
ANSWER_WAIT_S = 30.0


def plan(index: int, units: Sequence[str]) -> list[tuple[str, dict[str, object]]]:
    """What the desk does with the index-th case: most are dispatched to the units of
    their road, some handled and checked, a few refused or fixed on the spot."""
    Step = tuple[str, dict[str, object]]
    dispatch: Step = ("dispatch", {"units": list(units)})
    feedback: Step = ("feedback", {"units": list(units[:1]), "note": "已处置"})
    steps: list[Step] = [("accept", {}), ("file", {})]
    match index % 10:
        case 0:
            return [("refuse", {"note": "非城管职责范围"})]
        case 1:
            return [("self-handled", {"note": "巡查员现场处置"})]
        case 2 | 3:
            return steps
        case 6:
            return [*steps, dispatch, feedback]
        case 7:
            return [*steps, dispatch, feedback, ("pass", {}), ("close", {})]
        case _:
            return [*steps, dispatch]


def add_account(gateway_dir: Path) -> str:
    """As `gateway devices casework add desk`: the account, the broker's files rewritten and
    the broker told to reload them; returns its password."""
    registry = DeviceRegistry.in_data_dir(gateway_dir)
    _, _, password = with_new_password(
        registry, lambda hashed: registry.add_casework(ACCOUNT, hashed, "演示受理台")
    )
    return password


class Desk:
    """One MQTT connection as `casework.desk`: a command out, its answer back."""

    def __init__(self, broker_url: str, password: str, ca_file: Path | None) -> None:
        self.username = f"casework.{ACCOUNT}"
        self.answers: dict[str, dict[str, object]] = {}
        self.arrived = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.username}-demo")
        self.client.username_pw_set(self.username, password)
        url = urlsplit(broker_url)
        if url.scheme == "mqtts":
            self.client.tls_set_context(ssl.create_default_context(cafile=ca_file))
        self.client.on_message = self._message
        self.connack = threading.Event()
        self.refused: object = None
        self.client.on_connect = self._connected
        self.client.connect(url.hostname or "127.0.0.1", url.port or 1883)
        self.client.loop_start()
        if not self.connack.wait(10) or self.refused is not None:
            self.close()
            raise ConnectionRefusedError(f"{self.username}: {self.refused or 'no CONNACK'}")
        self.client.subscribe(casework.answers_topic(self.username), qos=1)

    def _connected(
        self, client: paho.Client, userdata: object, flags: object, reason: object,
        properties: object = None,
    ) -> None:  # fmt: skip
        if getattr(reason, "is_failure", False):
            self.refused = reason
        self.connack.set()

    def _message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        answer = orjson.loads(message.payload)
        with self.arrived:
            self.answers[str(answer.get("command_id"))] = answer
            self.arrived.notify_all()

    def ask(self, case_no: str, action: str, **more: object) -> str:
        """Sends one command and waits for its answer's result (applied, refused, …)."""
        command_id = str(uuid.uuid4())
        body = {"v": 1, "command_id": command_id, "case_no": case_no, "action": action,
                "by": "演示受理员"} | more  # fmt: skip
        self.client.publish(casework.commands_topic(self.username), orjson.dumps(body), qos=1)
        with self.arrived:
            if not self.arrived.wait_for(lambda: command_id in self.answers, ANSWER_WAIT_S):
                return "unanswered"
            return str(self.answers[command_id]["result"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def work_cases(
    gateway_dir: Path,
    broker_url: str,
    ca_file: Path | None,
    cases: Sequence[tuple[str, Sequence[str]]],
) -> Counter[str]:
    """Takes each (case number, its responsible units) along its plan; counts the steps
    by outcome (`dispatch applied`, …)."""
    password = add_account(gateway_dir)
    desk = _connect(broker_url, password, ca_file)
    done: Counter[str] = Counter()
    try:
        for index, (case_no, units) in enumerate(cases):
            for action, more in plan(index, units or ("城市管理监督指挥中心",)):
                result = desk.ask(case_no, action, **more)
                done[f"{action} {result}"] += 1
                if result != "applied":
                    break
    finally:
        desk.close()
    return done


def _connect(broker_url: str, password: str, ca_file: Path | None) -> Desk:
    """The broker reloads its password file on SIGHUP, a moment after the account is made."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return Desk(broker_url, password, ca_file)
        except (OSError, ssl.SSLError):  # ConnectionRefusedError: not reloaded yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
