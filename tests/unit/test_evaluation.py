"""Evaluation figures from counts (pure): rates, the units' score and grade, weeks merged,
and, for any consistent counts, groups that add up to the total and rates in [0, 1]."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.cases.evaluation import (
    ALL_COUNT_KEYS,
    BY_KEYS,
    COUNT_KEYS,
    RATE_KEYS,
    Figures,
    class_labels,
    evaluation,
    from_groups,
    grade_of,
    iso_week,
    merge_weeks,
    rate_keys,
    unit_score,
)
from gateway.cases.settings import ScoreSettings
from gateway.normalize.codes import ClassEntry, CodeProfile

AS_OF = datetime(2026, 12, 1, tzinfo=UTC)
NOV = (date(2026, 11, 1), date(2026, 11, 30))
SCORE = ScoreSettings()


def test_rates_are_their_counts_divided_and_none_without_a_denominator() -> None:
    figures = Figures.of(
        {"reported": 10, "accepted": 8, "filed": 6, "closed": 3, "due": 4, "closed_on_time": 2,
         "handled_on_time": 3, "reworked_due": 1, "extended_due": 0},
        "unit",
    )  # fmt: skip
    assert figures.rates == {
        "filing_rate": 6 / 8,
        "closing_rate": 3 / 4,
        "on_time_closing_rate": 2 / 4,
        "rework_rate": 1 / 4,
        "extension_rate": 0.0,
        "on_time_handling_rate": 3 / 4,
    }
    assert Figures.of({"reported": 2}, "district").rates == dict.fromkeys(RATE_KEYS)
    inspector = Figures.of({"reported": 4, "filed": 3, "verification_tasks": 0}, "inspector")
    assert inspector.rates["valid_report_rate"] == 3 / 4
    assert inspector.rates["on_time_verification_rate"] is None


def test_each_grouping_has_its_rates() -> None:
    assert rate_keys("unit") == (*RATE_KEYS, "on_time_handling_rate")
    assert rate_keys("inspector") == (*RATE_KEYS, "valid_report_rate", "on_time_verification_rate")
    assert rate_keys("month") == RATE_KEYS


def test_the_score_weighs_filed_closing_on_time_handling_and_no_rework() -> None:
    counts = {"filed": 5, "closed": 4, "due": 5, "handled_on_time": 3, "reworked_due": 1}
    rates = Figures.of(counts, "unit").rates
    # 0.1 × 5/10 + 0.3 × 4/5 + 0.3 × 3/5 + 0.3 × (1 − 1/5) = 0.05 + 0.24 + 0.18 + 0.24 = 0.71
    assert unit_score(counts, rates, 10, SCORE) == 71.0
    # Nothing due: no rate to judge by, so no score (rather than 0 for each).
    assert unit_score({"filed": 2}, Figures.of({"filed": 2}, "unit").rates, 10, SCORE) is None


def test_a_missing_part_has_its_weight_shared_out() -> None:
    rates = {"closing_rate": 1.0, "on_time_handling_rate": 0.5, "rework_rate": 0.0}
    # most filed 0: the filed part is missing; (0.3 × 1 + 0.3 × 0.5 + 0.3 × 1) / 0.9 = 0.8333…
    assert unit_score({"filed": 0}, rates, 0, SCORE) == 83.33


@pytest.mark.parametrize(
    ("score", "grade"),
    [(100.0, "A"), (90.0, "A"), (89.99, "B"), (80.0, "B"), (70.0, "C"), (60.0, "D"),
     (59.99, "E"), (0.0, "E"), (None, None)],
)  # fmt: skip
def test_grades_follow_the_lowest_scores_of_each(score: float | None, grade: str | None) -> None:
    assert grade_of(score, SCORE.grades) == grade


def test_days_merge_into_iso_weeks() -> None:
    assert iso_week("2026-11-02") == "2026-W45"  # a Monday
    assert iso_week("2026-11-08") == "2026-W45"  # its Sunday
    assert iso_week("2027-01-01") == "2026-W53"  # the ISO year of a new year's day
    merged = merge_weeks({
        "2026-11-02": {"reported": 2, "closed": 1},
        "2026-11-08": {"reported": 3},
        "2026-11-09": {"reported": 4},
        None: {"reported": 1},
    })  # fmt: skip
    assert {key: counts["reported"] for key, counts in merged.items()} == {
        "2026-W45": 5, "2026-W46": 4, None: 1
    }  # fmt: skip
    assert merged["2026-W45"]["closed"] == 1


def test_units_are_scored_against_the_unit_with_most_filed_and_graded() -> None:
    rows = {
        "环卫处": {"reported": 10, "accepted": 10, "filed": 10, "due": 8, "closed": 8,
                   "handled_on_time": 8},
        "市政处": {"reported": 5, "accepted": 5, "filed": 5, "due": 4, "closed": 2,
                   "handled_on_time": 1, "reworked_due": 2},
        None: {"reported": 3, "accepted": 3, "filed": 1},
    }  # fmt: skip
    found = evaluation(*NOV, "unit", AS_OF, rows, SCORE)
    by_key = {group.key: group for group in found.groups}
    assert [group.key for group in found.groups] == ["市政处", "环卫处", None]  # NULL last
    assert by_key["环卫处"].figures.score == 100.0
    assert by_key["环卫处"].figures.grade == "A"
    # 0.1 × 5/10 + 0.3 × 2/4 + 0.3 × 1/4 + 0.3 × (1 − 2/4) = 0.05 + 0.15 + 0.075 + 0.15
    assert by_key["市政处"].figures.score == 42.5
    assert by_key["市政处"].figures.grade == "E"
    assert by_key[None].label == "未派遣 not dispatched"
    assert by_key[None].figures.score is None
    assert found.total.counts["reported"] == 18
    assert found.total.score is None


GARBAGE = CodeProfile("t", {("event", "0102"): ClassEntry(
    "event", "0102", "01", "市容环境", "02", "暴露垃圾", "exposed garbage")})  # fmt: skip


def test_class_labels_name_the_kind_code_and_class_or_the_class_alone() -> None:
    assert class_labels(GARBAGE) == {"event:0102": "事件 0102 暴露垃圾"}
    assert class_labels(GARBAGE, short=True) == {"event:0102": "暴露垃圾"}


def test_the_json_has_every_count_and_rate_flat_in_each_group() -> None:
    found = evaluation(*NOV, "class", AS_OF, {"event:0102": {"reported": 1}}, SCORE,
                       class_labels(GARBAGE))  # fmt: skip
    shown = found.as_json()
    assert (shown["from"], shown["to"], shown["by"]) == ("2026-11-01", "2026-11-30", "class")
    assert shown["as_of"] == "2026-12-01T00:00:00+00:00"
    (group,) = shown["groups"]
    assert group["key"] == "event:0102"
    assert group["label"] == "事件 0102 暴露垃圾"
    assert set(group) == {"key", "label", *ALL_COUNT_KEYS, *RATE_KEYS, "score", "grade"}
    assert set(shown["total"]) == set(group) - {"key", "label"}


def test_an_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="by: one of"):
        evaluation(*NOV, "colour", AS_OF, {}, SCORE)


# ---- properties -----------------------------------------------------------------------------


@st.composite
def consistent_counts(draw: st.DrawFn) -> dict[str, int]:
    """Counts as one cohort's cases can give them: each subset no bigger than its set."""
    n = draw(st.integers(0, 50))

    def upto(bound: int) -> int:
        return draw(st.integers(0, bound))

    accepted = upto(n)
    filed = upto(accepted)
    dispatched = upto(filed)
    due = upto(filed)
    handled = upto(due)
    closed = upto(handled)
    tasks = upto(20)
    return {
        "reported": n, "accepted": accepted, "filed": filed, "dispatched": dispatched,
        "handled": handled, "closed": closed, "reworked": upto(n), "extended": upto(n),
        "returned": upto(n), "suspended": upto(n), "cancelled": upto(n),
        "self_handled": upto(closed), "overdue": upto(due), "due": due,
        "closed_on_time": upto(closed), "handled_on_time": upto(handled),
        "reworked_due": upto(due), "extended_due": upto(due),
        "verification_tasks": tasks, "verified_on_time": upto(tasks),
    }  # fmt: skip


keys = st.one_of(st.none(), st.sampled_from(["2026-11-02", "2026-11-09", "2026-11-30", "x"]))


@given(
    by=st.sampled_from(BY_KEYS),
    rows=st.dictionaries(keys, consistent_counts(), max_size=4),
)
def test_groups_add_up_to_the_total_and_every_rate_is_a_fraction(
    by: str, rows: dict[str | None, dict[str, int]]
) -> None:
    if by == "week":
        rows = {key: counts for key, counts in rows.items() if key != "x"}
    found = evaluation(*NOV, by, AS_OF, rows, SCORE)
    assert from_groups(found.groups) == dict(found.total.counts)
    for key in COUNT_KEYS:
        assert found.total.counts[key] == sum(counts[key] for counts in rows.values())
    for figures in [found.total, *(group.figures for group in found.groups)]:
        assert set(figures.rates) == set(rate_keys(by))
        for rate in figures.rates.values():
            assert rate is None or 0.0 <= rate <= 1.0
        if figures.score is not None:
            assert 0.0 <= figures.score <= 100.0
            assert figures.grade == grade_of(figures.score, SCORE.grades)
    assert len({group.key for group in found.groups}) == len(found.groups)


def test_as_of_is_kept_as_given() -> None:
    later = AS_OF + timedelta(hours=5)
    assert evaluation(*NOV, "day", later, {}, SCORE).as_json()["as_of"] == later.isoformat()
