"""`gateway case CASE_NO ACTION` as operators and scripts run it: each step through the
same rules, an illegal one refused with its reason and exit 1, `show` with the history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.cases.workflow import Action, Command
from gateway.sinks.case_ledger import Applied
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from tests.clocks import NaturalHours
from tests.commands import gateway
from tests.factories import normalized, placed


def a_case(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    registry = SqliteRegistry(data_dir / "registry.db", ZoneInfo("Asia/Shanghai"))
    (case_no,) = registry.register([placed(normalized(), district="崇川区")])
    registry.close()
    return str(case_no)


def test_an_operator_takes_a_case_from_acceptance_to_dispatch(tmp_path: Path) -> None:
    case_no = a_case(tmp_path)
    where = ("--data-dir", str(tmp_path))
    accepted = gateway("case", case_no, "accept", "--by", "王受理", *where)
    assert accepted.returncode == 0, accepted.stderr
    assert "reported → accepted" in accepted.stdout
    filed = gateway("case", case_no, "file", "--condition", "一般", "--by", "王受理", *where)
    assert filed.returncode == 0, filed.stderr
    dispatched = gateway(
        "case", case_no, "dispatch", "--unit", "市容环卫处", "--unit", "城东中队",
        "--note", "请于时限内处置", "--by", "李派遣", "--json", *where,
    )  # fmt: skip
    assert dispatched.returncode == 0, dispatched.stderr
    event = json.loads(dispatched.stdout)
    assert event["to"] == "handling"
    assert event["units"] == ["市容环卫处", "城东中队"]
    assert event["via"] == "cli"
    assert event["deadline_at"] is not None  # the shipped table's limit, on the calendar

    shown = gateway("case", case_no, "show", "--json", *where)
    assert shown.returncode == 0, shown.stderr
    life = json.loads(shown.stdout)
    assert life["state"] == "handling"
    assert life["light"] in ("green", "yellow", "red")
    assert [step["action"] for step in life["history"]] == ["accept", "file", "dispatch"]
    assert life["history"][2]["by"] == "李派遣"
    assert life["history"][2]["note"] == "请于时限内处置"


def test_an_illegal_step_exits_1_with_its_reason_and_changes_nothing(tmp_path: Path) -> None:
    case_no = a_case(tmp_path)
    where = ("--data-dir", str(tmp_path))
    refused = gateway("case", case_no, "close", "--by", "值班长", *where)
    assert refused.returncode == 1
    assert "case.illegal_transition" in refused.stderr
    assert "cannot close a case that is reported" in refused.stderr
    unknown = gateway("case", "E0102202611280999999", "accept", *where)
    assert unknown.returncode == 1
    assert "case.unknown" in unknown.stderr
    no_unit = gateway("case", case_no, "self-handled", "--by", "巡查员", *where)
    assert no_unit.returncode == 0, no_unit.stderr
    shown = json.loads(gateway("case", case_no, "show", "--json", *where).stdout)
    assert shown["state"] == "closed"
    assert [step["action"] for step in shown["history"]] == ["self-handled"]


def test_a_command_id_makes_a_step_happen_once(tmp_path: Path) -> None:
    case_no = a_case(tmp_path)
    where = ("--data-dir", str(tmp_path), "--command-id", "desk-0001", "--json")
    first = gateway("case", case_no, "accept", "--by", "王受理", *where)
    again = gateway("case", case_no, "accept", "--by", "王受理", *where)
    assert first.returncode == again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["repeated"] is True
    assert json.loads(again.stdout)["seq"] == json.loads(first.stdout)["seq"] == 1


def test_overdue_lists_the_cases_handling_past_their_deadline(tmp_path: Path) -> None:
    late, on_time = a_case(tmp_path), a_case(tmp_path)
    registry = SqliteRegistry(tmp_path / "registry.db", ZoneInfo("Asia/Shanghai"))
    long_ago = datetime.now(UTC) - timedelta(days=3)
    for case_no in (late, on_time):
        for action, units in [("accept", ()), ("file", ()), ("dispatch", ("市容环卫处",))]:
            step = Command(case_no, Action(action), long_ago, "test", "王派遣", units)
            assert isinstance(registry.act(step, NaturalHours(hours=24)), Applied)
    feedback = Command(on_time, Action.FEEDBACK, long_ago, "test", "环卫", ("市容环卫处",))
    assert isinstance(registry.act(feedback, NaturalHours(hours=24)), Applied)
    registry.close()

    listed = gateway("overdue", "--json", "--data-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    [case] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert case["case_no"] == late
    assert case["units"] == ["市容环卫处"]
    assert 47 < case["overdue_h"] < 49  # 3 days ago, a 24-hour limit
