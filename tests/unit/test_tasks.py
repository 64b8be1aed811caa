"""Publishing tasks (the dispatcher and `gateway task send` share it), with in-memory
ports; and what `gateway task send` refuses before it touches anything."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from gateway import logs
from gateway.cli import main
from gateway.errors import RetryableSinkError
from gateway.protocols.payloads import Task
from gateway.runtime.task_dispatch import TaskDispatcher, publish_tasks
from gateway.sinks.memory import MemoryPublisher, MemoryRegistry

CASE_NO = "E010220261128000001"


class Unconfirmed(MemoryPublisher):
    """A broker that takes the messages but never acknowledges them."""

    def publish_many(self, messages: Sequence[tuple[str, bytes]], timeout_s: float) -> list[bool]:
        self.messages.extend(messages)
        return [False] * len(messages)


def issue(book: MemoryRegistry, device_id: str) -> Task:
    task = Task(task_id=str(uuid.uuid4()), case_no=CASE_NO, kind="verify", note="核查")
    book.add_task(device_id, task)
    return task


def dispatcher(book: MemoryRegistry, publisher: MemoryPublisher) -> TaskDispatcher:
    return TaskDispatcher(book, publisher, 0.01, 10, 1.0, logs.get("test"))


def test_unsent_tasks_go_to_their_devices_and_are_marked_sent() -> None:
    book, publisher = MemoryRegistry(), MemoryPublisher()
    first, second = issue(book, "tz-0001"), issue(book, "tz-0002")

    with capture_logs() as logged:
        assert dispatcher(book, publisher).dispatch_once() == 2

    assert [topic for topic, _ in publisher.messages] == [
        "cgt/v1/tz-0001/task",
        "cgt/v1/tz-0002/task",
    ]
    assert [Task.model_validate_json(payload) for _, payload in publisher.messages] == [
        first,
        second,
    ]
    assert book.unsent_tasks(10) == []
    assert [line["task_id"] for line in logged if line["event"] == "task.sent"] == [
        first.task_id,
        second.task_id,
    ]
    assert dispatcher(book, publisher).dispatch_once() == 0  # nothing twice
    assert len(publisher.messages) == 2


def test_a_task_the_broker_did_not_confirm_stays_unsent() -> None:
    book, publisher = MemoryRegistry(), Unconfirmed()
    task = issue(book, "tz-0001")

    assert publish_tasks(book, publisher, book.unsent_tasks(10), 1.0, logs.get("test")) == []

    assert [due.task for due in book.unsent_tasks(10)] == [task]


def test_a_broker_outage_is_logged_and_the_tasks_go_when_it_is_back() -> None:
    book, publisher = MemoryRegistry(), MemoryPublisher()
    task = issue(book, "tz-0001")
    publisher.failure = RetryableSinkError("not connected to the broker")

    with capture_logs() as logged:
        assert dispatcher(book, publisher).dispatch_once() == 0
    assert [line["event"] for line in logged] == ["task.dispatch_failed"]
    assert [due.task for due in book.unsent_tasks(10)] == [task]

    publisher.failure = None
    stop = threading.Event()
    runner = threading.Thread(target=dispatcher(book, publisher).run, args=(stop,))
    runner.start()
    try:
        for _ in range(200):
            if book.tasks()[0].sent_at is not None:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        runner.join(5)
    assert book.tasks()[0].sent_at is not None
    assert json.loads(publisher.messages[0][1])["task_id"] == task.task_id


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        pytest.param(["--device", "tz/1"], "--device", id="device id outside the grammar"),
        pytest.param(["--lat", "32.0"], "--lat and --lon together", id="lat without lon"),
        pytest.param(["--address", "崇川路"], "--address only with", id="address without a place"),
        pytest.param(["--note", "x" * 501], "note", id="note too long"),
        pytest.param(["--deadline", "tomorrow"], "--deadline", id="deadline not RFC 3339"),
        pytest.param(["--kind", "repair"], "--kind", id="unknown kind"),
    ],
)
def test_send_refuses_a_malformed_task(args: list[str], complaint: str, tmp_path: Path) -> None:
    command = ["task", "send", "--data-dir", str(tmp_path), "--device", "tz-0001"]
    result = CliRunner().invoke(main, [*command, "--case", CASE_NO, *args])

    assert result.exit_code == 2, result.output
    assert complaint in result.output
    assert not (tmp_path / "registry.db").exists()  # nothing recorded


def test_send_and_list_refuse_a_data_dir_without_a_registry(tmp_path: Path) -> None:
    send = ["task", "send", "--data-dir", str(tmp_path), "--device", "tz-0001", "--case", CASE_NO]
    for command in (send, ["task", "list", "--data-dir", str(tmp_path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert f"no registry at {tmp_path / 'registry.db'}" in result.output
    assert not (tmp_path / "registry.db").exists()
