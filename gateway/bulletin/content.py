"""What the monthly bulletin (数字城管通报) says, gathered into one typed `Bulletin`.

`gather` makes the registry calls (the month's evaluations by each grouping, the
previous month's total and units, the overdue cases); `assemble` is pure and turns
them into the headline with its month-over-month changes, the rankings and the
sentences naming the best and the worst, so the rules are tested without a registry.
The figures themselves are `gateway.cases.evaluation`'s; nothing is recounted here.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from gateway.cases.evaluation import Evaluation, Figures, Group
from gateway.cases.settings import ScoreSettings
from gateway.sinks.case_ledger import Overdue
from gateway.sinks.case_stats import Readable, evaluate

# The groupings the bulletin shows for its month.
GROUPINGS: Final = ("unit", "district", "street", "class", "inspector", "day")
TOP_CLASSES: Final = 10
OVERDUE_LIMIT: Final = 500  # cases listed; a month with more has bigger problems

# Chinese labels for the groups the registry has no key for (evaluation's are bilingual).
NO_KEY: Final[Mapping[str, str]] = {
    "unit": "未派遣",
    "district": "区外/未定位",
    "street": "未定位",
    "class": "未分类",
    "inspector": "未知",
}


@dataclass(frozen=True, slots=True)
class Measure:
    """A headline figure: what it is called, how it reads, and which way is better."""

    key: str
    label: str
    is_rate: bool
    higher_is_better: bool | None  # None: neither (more reports is not better or worse)


HEADLINE: Final = (
    Measure("reported", "上报", False, None),
    Measure("filed", "立案", False, None),
    Measure("closed", "结案", False, True),
    Measure("closing_rate", "结案率", True, True),
    Measure("on_time_closing_rate", "按期结案率", True, True),
    Measure("rework_rate", "返工率", True, False),
    Measure("overdue", "超期", False, False),
)


@dataclass(frozen=True, slots=True)
class Change:
    """A headline figure this month and last, and what the change means."""

    measure: Measure
    value: float | None
    previous: float | None

    @property
    def delta(self) -> float | None:
        """The change: counts in cases, rates in fractions (percentage points × 100)."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def relative(self) -> float | None:
        """A count's change as a fraction of last month's (None for rates, or from 0)."""
        delta = self.delta
        if self.measure.is_rate or delta is None or not self.previous:
            return None
        return delta / self.previous

    @property
    def verdict(self) -> str | None:
        """better | worse | same, or None when the measure has no better direction."""
        delta = self.delta
        if delta is None or self.measure.higher_is_better is None:
            return None
        if abs(delta) < 1e-9:
            return "same"
        return "better" if (delta > 0) == self.measure.higher_is_better else "worse"


@dataclass(frozen=True, slots=True)
class Ranked:
    """A group in a ranking: ties share a rank (1, 2, 2, 4); unranked (no value) is 0."""

    rank: int
    group: Group
    value: float | None
    previous_rank: int = 0  # last month's, 0 when it was not ranked then

    @property
    def label(self) -> str:
        return self.group.label

    @property
    def figures(self) -> Figures:
        return self.group.figures


@dataclass(frozen=True, slots=True)
class ClassShare:
    rank: int
    key: str | None
    label: str
    kind: str  # 部件 | 事件 | ""
    reported: int
    share: float  # of all reported cases, 0–1


@dataclass(frozen=True, slots=True)
class OverdueUnit:
    unit: str
    month: int  # the month's cases overdue (evaluation's count)
    open: int  # handling past the deadline now (at as_of)
    longest_days: float  # the longest overdue of those, in days
    cases: tuple[str, ...]  # their numbers, the longest overdue first


@dataclass(frozen=True, slots=True)
class OverdueCase:
    case_no: str
    class_label: str
    units: tuple[str, ...]
    deadline_at: datetime
    days: float  # overdue by, at as_of


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    reported: int
    closed: int


@dataclass(frozen=True, slots=True)
class Bulletin:
    city: str
    issuer: str
    month: date  # its first day
    as_of: datetime  # local time
    title: str
    subtitle: str
    headline: tuple[Change, ...]
    summary: str
    current: Figures
    previous: Figures
    days: tuple[Day, ...]
    units: tuple[Ranked, ...]
    units_sentence: str
    districts: tuple[Ranked, ...]
    districts_sentence: str
    streets: tuple[Ranked, ...]
    streets_sentence: str
    classes: tuple[ClassShare, ...]
    classes_sentence: str
    overdue_units: tuple[OverdueUnit, ...]
    overdue_cases: tuple[OverdueCase, ...]
    overdue_sentence: str
    inspectors: tuple[Group, ...]
    inspectors_sentence: str


# ---- formatting shared by the sentences and the template ---------------------------------


def percent(rate: float | None, digits: int = 1) -> str:
    return "—" if rate is None else f"{rate * 100:.{digits}f}%"


def points(delta: float | None) -> str:
    """A rate's change in percentage points: "↑2.3个百分点"."""
    if delta is None:
        return "—"
    if abs(delta) < 5e-4:
        return "持平"
    return f"{'↑' if delta > 0 else '↓'}{abs(delta) * 100:.1f}个百分点"


def count_change(change: Change) -> str:
    """A count's change: "↑12件（+8.5%）"."""
    delta = change.delta
    if delta is None:
        return "—"
    if delta == 0:
        return "持平"
    relative = change.relative
    share = "" if relative is None else f"（{relative * 100:+.1f}%）"
    return f"{'↑' if delta > 0 else '↓'}{abs(int(delta))}件{share}"


def change_text(change: Change) -> str:
    return points(change.delta) if change.measure.is_rate else count_change(change)


def value_text(change: Change) -> str:
    if change.measure.is_rate:
        return percent(change.value)
    return "—" if change.value is None else f"{int(change.value)}件"


def month_zh(month: date) -> str:
    return f"{month.year}年{month.month}月"


def date_zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# ---- the rules ----------------------------------------------------------------------------


def figure(figures: Figures, key: str) -> float | None:
    if key in figures.rates:
        return figures.rates[key]
    if key in figures.counts:
        return float(figures.counts[key])
    return None


def changes(current: Figures, previous: Figures) -> tuple[Change, ...]:
    return tuple(Change(m, figure(current, m.key), figure(previous, m.key)) for m in HEADLINE)


def rank(
    groups: Sequence[Group],
    value: Callable[[Group], float | None],
    previous: Mapping[str | None, int] | None = None,
) -> tuple[Ranked, ...]:
    """Highest value first; equal values share a rank (competition ranking), listed by
    label; groups without a value (nothing due yet) last, unranked."""
    valued = sorted(
        ((g, v) for g in groups if (v := value(g)) is not None),
        key=lambda gv: (-gv[1], gv[0].label),
    )
    ranked: list[Ranked] = []
    for place, (group, measure) in enumerate(valued, start=1):
        tied = ranked and abs((ranked[-1].value or 0.0) - measure) < 1e-9
        ranked.append(
            Ranked(
                ranked[-1].rank if tied else place,
                group,
                measure,
                (previous or {}).get(group.key, 0),
            )
        )
    rest = sorted((g for g in groups if value(g) is None), key=lambda g: g.label)
    ranked += [Ranked(0, g, None, (previous or {}).get(g.key, 0)) for g in rest]
    return tuple(ranked)


def _names(items: Sequence[Ranked]) -> str:
    return "、".join(item.label for item in items)


def best_and_worst(ranked: Sequence[Ranked], noun: str, measure: str, shown: str) -> str:
    """One sentence naming the first and the last of a ranking (ties named together).

    `noun` is what is ranked (责任单位), `measure` what on (综合得分), `shown` how a
    value reads ("{:.1f}分" or "percent").
    """
    placed = [item for item in ranked if item.rank > 0]

    def read(item: Ranked) -> str:
        value = item.value or 0.0
        text = percent(value) if shown == "percent" else shown.format(value)
        grade = item.figures.grade
        return f"{text}，{grade}级" if grade else text

    if not placed:
        return f"本月暂无可排名的{noun}（尚无应结案件）。"
    best = [item for item in placed if item.rank == placed[0].rank]
    if len(best) == len(placed):
        together = "均" if len(placed) > 1 else ""
        return f"本月参与排名的{noun}{together}为{_names(best)}，{measure}{read(best[0])}。"
    last_rank = placed[-1].rank
    worst = [item for item in placed if item.rank == last_rank]
    tie_best = "（并列）" if len(best) > 1 else ""
    tie_worst = "（并列）" if len(worst) > 1 else ""
    return (
        f"本月{measure}最高的{noun}是{_names(best)}{tie_best}（{read(best[0])}），"
        f"最低的是{_names(worst)}{tie_worst}（{read(worst[0])}）。"
    )


def _labelled(evaluation: Evaluation) -> tuple[Group, ...]:
    """The groups with Chinese labels for the registry's NULL key."""
    return tuple(
        Group(g.key, NO_KEY.get(evaluation.by, g.label), g.figures) if g.key is None else g
        for g in evaluation.groups
    )


def _score(group: Group) -> float | None:
    return None if group.key is None else group.figures.score


def _closing(group: Group) -> float | None:
    return group.figures.rates.get("closing_rate")


def top_classes(evaluation: Evaluation, limit: int = TOP_CLASSES) -> tuple[ClassShare, ...]:
    total = evaluation.total.counts["reported"]
    found = sorted(_labelled(evaluation), key=lambda g: (-g.figures.counts["reported"], g.label))
    shares = []
    for place, group in enumerate(found[:limit], start=1):
        reported = group.figures.counts["reported"]
        kind = (group.key or "").partition(":")[0]
        shares.append(
            ClassShare(
                place,
                group.key,
                group.label,
                {"component": "部件", "event": "事件"}.get(kind, ""),
                reported,
                reported / total if total else 0.0,
            )
        )
    return tuple(shares)


def overdue_lists(
    overdue: Sequence[Overdue],
    units: Evaluation,
    as_of: datetime,
    class_labels: Mapping[str, str],
) -> tuple[tuple[OverdueUnit, ...], tuple[OverdueCase, ...]]:
    """Overdue cases by their lead unit (the unit statistics count a case under), and
    each case; units with none open but some in the month are listed too."""
    cases = tuple(
        OverdueCase(
            item.case_no,
            # The case number's first letter says component (C) or event (E).
            class_labels.get(
                f"{'component' if item.case_no.startswith('C') else 'event'}:{item.class_code}",
                item.class_code,
            ),
            item.units,
            item.deadline_at,
            (as_of - item.deadline_at).total_seconds() / 86400,
        )
        for item in overdue
    )
    by_unit: dict[str, list[OverdueCase]] = {}
    for case in cases:
        by_unit.setdefault(case.units[0] if case.units else "未派遣", []).append(case)
    month = {g.label: g.figures.counts["overdue"] for g in _labelled(units) if g.key is not None}
    rows = [
        OverdueUnit(
            unit,
            month.get(unit, 0),
            len(open_cases := by_unit.get(unit, [])),
            max((c.days for c in open_cases), default=0.0),
            tuple(c.case_no for c in sorted(open_cases, key=lambda c: -c.days)),
        )
        for unit in set(by_unit) | {unit for unit, count in month.items() if count}
    ]
    rows.sort(key=lambda row: (-row.open, -row.month, row.unit))
    return tuple(rows), cases


def _summary(month: date, headline: Sequence[Change]) -> str:
    """The opening paragraph: the month's totals and how they moved."""
    by_key = {change.measure.key: change for change in headline}

    def part(key: str) -> str:
        change = by_key[key]
        said = f"{change.measure.label}{value_text(change)}"
        moved = change_text(change)
        if change.delta is None:
            return said
        return f"{said}，与上月持平" if moved == "持平" else f"{said}，较上月{moved}"

    return (
        f"{month_zh(month)}，全市数字化城市管理信息系统共{part('reported')}；{part('filed')}；"
        f"{part('closed')}；{part('closing_rate')}；{part('on_time_closing_rate')}；"
        f"{part('rework_rate')}。"
    )


def assemble(
    month: date,
    current: Mapping[str, Evaluation],
    previous: Mapping[str, Evaluation],
    overdue: Sequence[Overdue],
    as_of: datetime,
    *,
    city: str,
    issuer: str,
) -> Bulletin:
    """The bulletin from the month's evaluations (`GROUPINGS`), the previous month's
    (`unit`, `district`; any grouping's total serves) and the open overdue cases."""
    now = current["unit"].total
    before = previous["unit"].total
    headline = changes(now, before)
    last_units = {r.group.key: r.rank for r in rank(_labelled(previous["unit"]), _score)}
    units = rank(_labelled(current["unit"]), _score, last_units)
    units = tuple(r for r in units if r.group.key is not None)  # 未派遣 is no unit to rank
    last_districts = {r.group.key: r.rank for r in rank(_labelled(previous["district"]), _closing)}
    districts = rank(_labelled(current["district"]), _closing, last_districts)
    streets = rank(_labelled(current["street"]), _closing)
    classes = top_classes(current["class"])
    class_labels = {g.key: g.label for g in current["class"].groups if g.key}
    overdue_units, overdue_cases = overdue_lists(overdue, current["unit"], as_of, class_labels)
    inspectors = tuple(
        sorted(
            _labelled(current["inspector"]),
            key=lambda g: (-g.figures.counts["reported"], g.label),
        )
    )
    days_by_key = {g.key: g.figures for g in current["day"].groups}
    length = calendar.monthrange(month.year, month.month)[1]
    days = []
    for offset in range(length):
        day = month + timedelta(days=offset)
        figures = days_by_key.get(day.isoformat())
        counts = figures.counts if figures else {}
        days.append(Day(day, counts.get("reported", 0), counts.get("closed", 0)))
    return Bulletin(
        city=city,
        issuer=issuer,
        month=month,
        as_of=as_of,
        title=f"{city}数字化城市管理通报",
        subtitle=f"{month_zh(month)}",
        headline=headline,
        summary=_summary(month, headline),
        current=now,
        previous=before,
        days=tuple(days),
        units=units,
        units_sentence=best_and_worst(units, "责任单位", "综合得分", "{:.1f}分"),
        districts=districts,
        districts_sentence=best_and_worst(districts, "区", "结案率", "percent"),
        streets=streets,
        streets_sentence=best_and_worst(streets, "街道", "结案率", "percent"),
        classes=classes,
        classes_sentence=_classes_sentence(classes),
        overdue_units=overdue_units,
        overdue_cases=overdue_cases,
        overdue_sentence=_overdue_sentence(overdue_units, as_of),
        inspectors=inspectors,
        inspectors_sentence=_inspectors_sentence(inspectors),
    )


def _classes_sentence(classes: Sequence[ClassShare]) -> str:
    if not classes:
        return "本月无上报问题。"
    top = classes[:3]
    share = sum(c.share for c in top)
    named = "、".join(f"{c.label}（{c.reported}件）" for c in top)
    return f"本月上报数量居前的问题依次为{named}，合计占上报总量的{share * 100:.1f}%。"


def _overdue_sentence(rows: Sequence[OverdueUnit], as_of: datetime) -> str:
    open_total = sum(row.open for row in rows)
    month_total = sum(row.month for row in rows)
    if not open_total and not month_total:
        return "本月无超期案件。"
    worst = [row for row in rows if row.open and row.open == rows[0].open]
    tail = (
        f"其中{'、'.join(row.unit for row in worst)}超期未结最多（{worst[0].open}件），请抓紧处置。"
        if worst
        else ""
    )
    return (
        f"本月案件中超期{month_total}件；截至{date_zh(as_of.date())}，"
        f"仍在处置中且已超期的案件{open_total}件。{tail}"
    )


def _inspectors_sentence(inspectors: Sequence[Group]) -> str:
    named = [g for g in inspectors if g.key is not None]
    if not named:
        return "本月无监督员上报。"
    total = sum(g.figures.counts["reported"] for g in named)
    first = named[0]
    return (
        f"本月{len(named)}名监督员共上报{total}件，人均{total / len(named):.1f}件；"
        f"上报最多的是{first.label}（{first.figures.counts['reported']}件，"
        f"有效上报率{percent(first.figures.rates.get('valid_report_rate'))}）。"
    )


# ---- the registry calls -------------------------------------------------------------------


class Registry(Readable, Protocol):
    """What the bulletin reads of a registry (both have it)."""

    def overdue(self, now: datetime, limit: int) -> Sequence[Overdue]: ...

    def close(self) -> None: ...


def month_bounds(month: date) -> tuple[date, date]:
    """The first and last day of the month (inclusive, as `evaluate` takes them)."""
    first = month.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def default_as_of(month: date, now: datetime, tz: ZoneInfo) -> datetime:
    """The end of the month (local midnight after its last day), or now while it runs."""
    _, last = month_bounds(month)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    return min(end, now.astimezone(tz))


def gather(
    registry: Registry,
    month: date,
    as_of: datetime,
    score: ScoreSettings,
    *,
    city: str,
    issuer: str,
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> Bulletin:
    """The month's bulletin from the registry, figures as they stood at `as_of`;
    `labels` names keys per grouping (e.g. class "event:0102" → "暴露垃圾")."""
    start, end = month_bounds(month)
    named = labels or {}
    current = {
        by: evaluate(registry, start, end, by, as_of, score, named.get(by)) for by in GROUPINGS
    }
    before_start, before_end = month_bounds(previous_month(month))
    # Last month's overdue measured at its end, as its own bulletin measured it (the
    # other counts are the registry's as it stands: a case closed since counts closed).
    before_as_of = min(as_of, datetime.combine(start, datetime.min.time(), as_of.tzinfo))
    previous = {
        by: evaluate(registry, before_start, before_end, by, before_as_of, score, named.get(by))
        for by in ("unit", "district")
    }
    overdue = registry.overdue(as_of, OVERDUE_LIMIT)
    return assemble(month, current, previous, overdue, as_of, city=city, issuer=issuer)
