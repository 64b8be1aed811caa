"""The bulletin's content rules (pure): month-over-month changes, rankings with ties, and
the sentences naming the best and the worst."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.bulletin.content import (
    HEADLINE,
    Change,
    Measure,
    assemble,
    best_and_worst,
    change_text,
    default_as_of,
    month_bounds,
    previous_month,
    rank,
)
from gateway.cases.evaluation import Evaluation, Figures, Group, evaluation
from gateway.cases.settings import ScoreSettings
from gateway.sinks.case_ledger import Overdue

AS_OF = datetime(2026, 12, 1, tzinfo=UTC)


def figures(score: float | None = None, closing: float | None = None, **counts: int) -> Figures:
    return Figures(counts, {"closing_rate": closing}, score)


def test_counts_change_in_cases_and_percent_rates_in_points() -> None:
    reported = Change(HEADLINE[0], 90.0, 60.0)
    assert reported.delta == 30
    assert reported.relative == 0.5
    assert reported.verdict is None  # more reports is neither better nor worse
    assert change_text(reported) == "↑30件（+50.0%）"
    closing = Change(Measure("closing_rate", "结案率", True, True), 0.786, 0.755)
    assert closing.verdict == "better"
    assert change_text(closing) == "↑3.1个百分点"
    rework = Change(Measure("rework_rate", "返工率", True, False), 0.10, 0.06)
    assert rework.verdict == "worse"
    assert change_text(Change(HEADLINE[0], 5.0, 0.0)) == "↑5件"  # no percent from 0
    assert change_text(Change(HEADLINE[0], 5.0, 5.0)) == "持平"
    assert change_text(Change(HEADLINE[0], 5.0, None)) == "—"


def test_ties_share_a_rank_and_groups_without_a_value_are_unranked() -> None:
    groups = [
        Group("a", "甲", figures(80.0)),
        Group("b", "乙", figures(92.5)),
        Group("c", "丙", figures(80.0)),
        Group("d", "丁", figures(None)),
        Group("e", "戊", figures(70.0)),
    ]
    ranked = rank(groups, lambda g: g.figures.score, {"b": 2, "e": 1})
    assert [(r.rank, r.label) for r in ranked] == [
        (1, "乙"), (2, "丙"), (2, "甲"), (4, "戊"), (0, "丁")
    ]  # fmt: skip
    assert [r.previous_rank for r in ranked] == [2, 0, 0, 1, 0]


def test_the_sentence_names_the_best_and_the_worst_ties_together() -> None:
    ranked = rank(
        [
            Group("a", "环卫处", Figures({}, {}, 90.0, "A")),
            Group("b", "城东中队", Figures({}, {}, 90.0, "A")),
            Group("c", "城西中队", Figures({}, {}, 61.0, "D")),
        ],
        lambda g: g.figures.score,
    )
    said = best_and_worst(ranked, "责任单位", "综合得分", "{:.1f}分")
    assert said == (
        "本月综合得分最高的责任单位是城东中队、环卫处（并列）（90.0分，A级），"
        "最低的是城西中队（61.0分，D级）。"
    )
    alone = rank(
        [Group("x", "崇川区", figures(closing=0.5))], lambda g: g.figures.rates["closing_rate"]
    )
    assert (
        best_and_worst(alone, "区", "结案率", "percent")
        == "本月参与排名的区为崇川区，结案率50.0%。"
    )
    assert "暂无" in best_and_worst((), "区", "结案率", "percent")


def test_months_and_the_default_as_of() -> None:
    assert month_bounds(date(2026, 2, 1)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert previous_month(date(2026, 1, 1)) == date(2025, 12, 1)
    tz = ZoneInfo("Asia/Shanghai")
    ended = default_as_of(date(2026, 11, 1), datetime(2027, 1, 5, tzinfo=UTC), tz)
    assert ended == datetime(2026, 12, 1, tzinfo=tz)
    running = datetime(2026, 11, 20, 3, tzinfo=UTC)
    assert default_as_of(date(2026, 11, 1), running, tz) == running


def _evaluation(by: str, rows: dict[str | None, dict[str, int]]) -> Evaluation:
    return evaluation(date(2026, 11, 1), date(2026, 11, 30), by, AS_OF, rows, ScoreSettings())


def test_assemble_puts_the_month_together() -> None:
    unit_rows: dict[str | None, dict[str, int]] = {
        "环卫处": {"reported": 10, "filed": 10, "due": 10, "closed": 9, "handled_on_time": 9,
                   "closed_on_time": 9},
        "城西中队": {"reported": 10, "filed": 10, "due": 10, "closed": 5, "handled_on_time": 4,
                     "closed_on_time": 4, "overdue": 3},
        None: {"reported": 5},
    }  # fmt: skip
    current = {
        "unit": _evaluation("unit", unit_rows),
        "district": _evaluation("district", {"崇川区": {"reported": 25, "due": 20, "closed": 14}}),
        "street": _evaluation("street", {None: {"reported": 25}}),
        "class": _evaluation(
            "class", {"event:0102": {"reported": 20}, "component:0101": {"reported": 5}}
        ),
        "inspector": _evaluation("inspector", {"INS-1": {"reported": 25, "filed": 20}}),
        "day": _evaluation("day", {"2026-11-03": {"reported": 25, "closed": 14}}),
    }
    previous = {
        "unit": _evaluation("unit", {"环卫处": {"reported": 20, "due": 10, "closed": 5}}),
        "district": _evaluation("district", {"崇川区": {"reported": 20}}),
    }
    late = Overdue("E0102202611030000007", "0102", ("城西中队",), AS_OF - timedelta(days=2),
                   date(2026, 11, 3))  # fmt: skip
    made = assemble(date(2026, 11, 1), current, previous, [late], AS_OF, city="南通市",
                    issuer="南通市城市管理监督指挥中心")  # fmt: skip
    assert made.title == "南通市数字化城市管理通报"
    assert made.headline[0].value == 25
    assert made.headline[0].previous == 20
    assert [r.label for r in made.units] == ["环卫处", "城西中队"]  # 未派遣 is not ranked
    assert made.units[0].previous_rank == 1
    assert "环卫处" in made.units_sentence
    assert "城西中队" in made.units_sentence
    assert [(c.label, c.kind, c.share) for c in made.classes] == [
        ("event:0102", "事件", 0.8), ("component:0101", "部件", 0.2)
    ]  # fmt: skip
    assert made.streets[0].label == "未定位"
    [row] = made.overdue_units
    assert (row.unit, row.month, row.open, row.cases) == ("城西中队", 3, 1, (late.case_no,))
    assert made.overdue_cases[0].days == 2
    assert len(made.days) == 30
    assert made.days[2].reported == 25
    assert made.summary.startswith("2026年11月，全市数字化城市管理信息系统共上报25件，较上月↑5件")
