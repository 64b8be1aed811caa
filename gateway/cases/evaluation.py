"""Evaluation statistics (评价, step 7 of the workflow): counts, rates and the units' score,
computed from counts alone (pure: no SQL, no clock, no I/O).

The registry side (`gateway/sinks/case_stats.py`) counts a cohort of cases per group with
one grouped scan; everything here derives from those counts, so a rate is the same
whichever engine counted, and merging groups (days into ISO weeks) is adding counts.
`docs/evaluation.md` defines every figure and says where each definition comes from.

Every count a rate needs is itself a count (`SUPPORT_KEYS`), so each rate's numerator is
a subset of its denominator and every rate is a fraction in [0, 1], or None when its
denominator is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from gateway.cases.settings import ScoreSettings
from gateway.normalize.codes import CodeProfile

# What `gateway stats --by` groups on.
BY_KEYS: Final = (
    "unit",
    "district",
    "street",
    "grid",
    "class",
    "inspector",
    "day",
    "week",
    "month",
)

# The counts every group shows (docs/evaluation.md, "Counts").
COUNT_KEYS: Final = (
    "reported",  # 上报: every case of the cohort
    "accepted",  # 受理
    "filed",  # 立案
    "dispatched",  # 派遣
    "handled",  # 处置 (reported done; a failed verification undoes it)
    "closed",  # 结案
    "reworked",  # 返工 at least once
    "extended",  # 延期 at least once
    "returned",  # 回退 at least once
    "suspended",  # 挂账 at least once
    "cancelled",  # 作废
    "self_handled",  # 自处置
    "overdue",  # 超期: handled late, or handling past its deadline
)

# The further counts the rates are made of; shown in the JSON too.
SUPPORT_KEYS: Final = (
    "due",  # 应结案 (= 应处置): handled, or handling past its deadline
    "closed_on_time",  # 按期结案
    "handled_on_time",  # 按期处置
    "reworked_due",  # due cases reworked at least once (返工率's numerator)
    "extended_due",  # due cases extended at least once (延期率's numerator)
    "verification_tasks",  # 应核查: verify tasks answered or past their deadline
    "verified_on_time",  # 按时核查: answered by their deadline
)

ALL_COUNT_KEYS: Final = COUNT_KEYS + SUPPORT_KEYS

# The counts a table of figures shows (`gateway stats`, the console), before the rates.
TABLE_COUNTS: Final = ("reported", "filed", "dispatched", "handled", "closed", "due", "overdue")

# The rates of every grouping, and those only units or inspectors get.
RATE_KEYS: Final = (
    "filing_rate",  # 立案率
    "closing_rate",  # 结案率
    "on_time_closing_rate",  # 按期结案率
    "rework_rate",  # 返工率
    "extension_rate",  # 延期率
)
UNIT_RATE_KEYS: Final = ("on_time_handling_rate",)  # 按期处置率
INSPECTOR_RATE_KEYS: Final = (
    "valid_report_rate",
    "on_time_verification_rate",
)  # 有效上报率, 按时核查率

# rate → (numerator, denominator), both counts.
RATE_PARTS: Final[Mapping[str, tuple[str, str]]] = {
    "filing_rate": ("filed", "accepted"),
    "closing_rate": ("closed", "due"),
    "on_time_closing_rate": ("closed_on_time", "due"),
    "rework_rate": ("reworked_due", "due"),
    "extension_rate": ("extended_due", "due"),
    "on_time_handling_rate": ("handled_on_time", "due"),
    "valid_report_rate": ("filed", "reported"),
    "on_time_verification_rate": ("verified_on_time", "verification_tasks"),
}

# Headers of the readable table: Chinese with English.
HEADERS: Final[Mapping[str, str]] = {
    "reported": "上报 reported",
    "accepted": "受理 accepted",
    "filed": "立案 filed",
    "dispatched": "派遣 dispatched",
    "handled": "处置 handled",
    "closed": "结案 closed",
    "reworked": "返工 reworked",
    "extended": "延期 extended",
    "returned": "回退 returned",
    "suspended": "挂账 suspended",
    "cancelled": "作废 cancelled",
    "self_handled": "自处置 self",
    "overdue": "超期 overdue",
    "due": "应结案 due",
    "closed_on_time": "按期结案 on time",
    "handled_on_time": "按期处置 on time",
    "reworked_due": "应结案中返工",
    "extended_due": "应结案中延期",
    "verification_tasks": "应核查 to verify",
    "verified_on_time": "按时核查 verified",
    "filing_rate": "立案率 filing",
    "closing_rate": "结案率 closing",
    "on_time_closing_rate": "按期结案率 on-time closing",
    "rework_rate": "返工率 rework",
    "extension_rate": "延期率 extension",
    "on_time_handling_rate": "按期处置率 on-time handling",
    "valid_report_rate": "有效上报率 valid reports",
    "on_time_verification_rate": "按时核查率 on-time verification",
    "score": "综合得分 score",
    "grade": "等级 grade",
}

BY_HEADERS: Final[Mapping[str, str]] = {
    "unit": "责任单位 unit",
    "district": "区 district",
    "street": "街道 street",
    "grid": "单元网格 grid",
    "class": "类别 class",
    "inspector": "监督员 inspector",
    "day": "日 day",
    "week": "周 week",
    "month": "月 month",
}

# The label of a group whose key is NULL in the registry.
NO_KEY_LABELS: Final[Mapping[str, str]] = {
    "unit": "未派遣 not dispatched",
    "district": "区外/未定位 outside or unplaced",
    "street": "未知 unknown",
    "grid": "未知 unknown",
    "class": "未知 unknown",
    "inspector": "未知 unknown",
    "day": "未知 unknown",
    "week": "未知 unknown",
    "month": "未知 unknown",
}

GRADES: Final = ("A", "B", "C", "D", "E")

Counts = Mapping[str, int]


def rate_keys(by: str) -> tuple[str, ...]:
    """The rates a grouping shows (its total shows the same)."""
    if by == "unit":
        return RATE_KEYS + UNIT_RATE_KEYS
    if by == "inspector":
        return RATE_KEYS + INSPECTOR_RATE_KEYS
    return RATE_KEYS


def ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def rates_of(counts: Counts, by: str) -> dict[str, float | None]:
    return {
        key: ratio(counts.get(RATE_PARTS[key][0], 0), counts.get(RATE_PARTS[key][1], 0))
        for key in rate_keys(by)
    }


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(ALL_COUNT_KEYS, 0)


def add_counts(into: dict[str, int], more: Counts) -> dict[str, int]:
    for key in ALL_COUNT_KEYS:
        into[key] += int(more.get(key, 0))
    return into


def grade_of(score: float | None, grades: tuple[float, float, float, float]) -> str | None:
    """A at or above grades[0], … D at or above grades[3], else E."""
    if score is None:
        return None
    for letter, lowest in zip(GRADES, grades, strict=False):
        if score >= lowest:
            return letter
    return GRADES[-1]


def unit_score(
    counts: Counts, rates: Mapping[str, float | None], most_filed: int, settings: ScoreSettings
) -> float | None:
    """综合得分 0–100, rounded to 2 decimals (and graded from the rounded value). A unit with
    nothing due (应结案 0: its three rates have nothing to divide) has no score rather
    than 0 for them; a missing part otherwise has its weight shared out among the others
    (the weights renormalised to 1)."""
    no_rework = rates.get("rework_rate")
    parts = (
        (settings.filed, ratio(counts.get("filed", 0), most_filed)),
        (settings.closing_rate, rates.get("closing_rate")),
        (settings.on_time_handling_rate, rates.get("on_time_handling_rate")),
        (settings.no_rework, None if no_rework is None else 1.0 - no_rework),
    )
    if all(value is None for _, value in parts[1:]):
        return None
    present = [(weight, value) for weight, value in parts if value is not None and weight > 0]
    weight = sum(w for w, _ in present)
    if weight <= 0:
        return None
    return round(100.0 * sum(w * v for w, v in present) / weight, 2)


@dataclass(frozen=True, slots=True)
class Figures:
    """One group's (or the total's) counts and rates; a unit's score and grade."""

    counts: Mapping[str, int]
    rates: Mapping[str, float | None]
    score: float | None = None
    grade: str | None = None

    @classmethod
    def of(cls, counts: Counts, by: str) -> Figures:
        full = add_counts(zero_counts(), counts)
        return cls(full, rates_of(full, by))

    def as_json(self) -> dict[str, Any]:
        # score and grade are null but for units: one shape for every grouping
        return {**self.counts, **self.rates, "score": self.score, "grade": self.grade}


@dataclass(frozen=True, slots=True)
class Group:
    key: str | None  # None: the registry's NULL (e.g. a case not dispatched, by unit)
    label: str
    figures: Figures

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, **self.figures.as_json()}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The figures of the cases received from `start` to `end` (local dates, inclusive), as
    the registry stood at `as_of`, in total and per group."""

    start: date
    end: date
    by: str
    as_of: datetime
    total: Figures
    groups: tuple[Group, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "by": self.by,
            "as_of": self.as_of.isoformat(),
            "total": self.total.as_json(),
            "groups": [group.as_json() for group in self.groups],
        }


def iso_week(day: str) -> str:
    """ "2026-11-05" → "2026-W45" (ISO 8601 week; its year may differ from the date's)."""
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def regroup(
    rows: Mapping[str | None, Counts], key: Callable[[str], str]
) -> dict[str | None, dict[str, int]]:
    """Groups merged under a coarser key (days into weeks): their counts added."""
    merged: dict[str | None, dict[str, int]] = {}
    for old, counts in rows.items():
        new = None if old is None else key(old)
        add_counts(merged.setdefault(new, zero_counts()), counts)
    return merged


def merge_weeks(rows: Mapping[str | None, Counts]) -> dict[str | None, dict[str, int]]:
    return regroup(rows, iso_week)


def label_of(by: str, key: str | None, labels: Mapping[str, str] | None = None) -> str:
    if key is None:
        return NO_KEY_LABELS[by]
    return (labels or {}).get(key, key)


def _order(item: tuple[str | None, Any]) -> tuple[bool, str]:
    return (item[0] is None, item[0] or "")  # by key, the NULL group last


def evaluation(
    start: date,
    end: date,
    by: str,
    as_of: datetime,
    rows: Mapping[str | None, Counts],
    score: ScoreSettings,
    labels: Mapping[str, str] | None = None,
) -> Evaluation:
    """The evaluation from each group's counts (for --by week, pass the days' counts:
    they are merged here). Units (not the 未派遣 group) get a score and a grade."""
    if by not in BY_KEYS:
        raise ValueError(f"by: one of {', '.join(BY_KEYS)}, not {by!r}")
    grouped = merge_weeks(rows) if by == "week" else {k: dict(v) for k, v in rows.items()}
    figures = {key: Figures.of(counts, by) for key, counts in grouped.items()}
    if by == "unit":
        most = max((f.counts["filed"] for k, f in figures.items() if k is not None), default=0)
        for key, plain in figures.items():
            if key is not None:
                points = unit_score(plain.counts, plain.rates, most, score)
                figures[key] = Figures(
                    plain.counts, plain.rates, points, grade_of(points, score.grades)
                )
    total = zero_counts()
    for plain in figures.values():
        add_counts(total, plain.counts)
    groups = tuple(
        Group(key, label_of(by, key, labels), found)
        for key, found in sorted(figures.items(), key=_order)
    )
    return Evaluation(start, end, by, as_of, Figures.of(total, by), groups)


def from_groups(groups: Iterable[Group]) -> dict[str, int]:
    """The counts of groups added up (what `Evaluation.total` holds)."""
    total = zero_counts()
    for group in groups:
        add_counts(total, group.figures.counts)
    return total


KIND_ZH: Final[Mapping[str, str]] = {"component": "部件", "event": "事件"}


def class_labels(profile: CodeProfile, *, short: bool = False) -> dict[str, str]:
    """--by class labels from the code profile: "event:0102" → "事件 0102 暴露垃圾", or
    with `short` the minor class's name alone ("暴露垃圾", where a table shows the kind)."""
    return {
        f"{kind}:{code}": entry.minor_name if short
        else f"{KIND_ZH.get(kind, kind)} {code} {entry.minor_name}"
        for (kind, code), entry in profile.entries.items()
    }  # fmt: skip
