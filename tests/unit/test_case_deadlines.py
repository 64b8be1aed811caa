"""Handling deadlines (gateway/cases/deadlines.py): limits, the working calendar, the table.

Local times are Asia/Shanghai (UTC+8); work hours 08:00-12:00 and 14:00-18:00 unless said.
The 2026 calendar, from the State Council's notice (国办发明电〔2025〕7号):
元旦 Jan 1-3 off, Sun Jan 4 worked; 春节 Feb 15-23 off, Sat Feb 14 and Sat Feb 28 worked;
劳动节 May 1-5 off, Sat May 9 worked; 国庆/中秋 Oct 1-7 off, Sun Sep 20 and Sat Oct 10 worked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.cases.deadlines import LimitTable, TimeLimit, WorkCalendar
from gateway.cases.settings import CasesSettings
from gateway.errors import ConfigError
from gateway.normalize.codes import CodeProfile

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKING_HOUR = TimeLimit(1, "working_hours")
WORKING_DAY = TimeLimit(1, "working_days")
HOUR = TimeLimit(1, "hours")


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    made = WorkCalendar(SHANGHAI)
    for year in (2025, 2026, 2027, 2028):  # loaded once, so no example pays for it
        made.covers(year)
    return made


def add(calendar: WorkCalendar, start: datetime, limit: str) -> datetime:
    return calendar.add(start, TimeLimit.parse(limit))


# ---- TimeLimit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("1 working day", 1, "working_days"),
        ("15 working days", 15, "working_days"),
        ("4 working hours", 4, "working_hours"),
        ("2 hours", 2, "hours"),
        ("3 days", 3, "days"),
        ("0.5 working days", 0.5, "working_days"),
        ("  2 Hours ", 2, "hours"),
        ("1个工作日", 1, "working_days"),
        ("15工作日", 15, "working_days"),
        ("4个工作时", 4, "working_hours"),
        ("5工作小时", 5, "working_hours"),
        ("2小时", 2, "hours"),
        ("3天", 3, "days"),
    ],
)
def test_a_limit_is_parsed_in_english_or_as_published_in_chinese(
    text: str, amount: float, unit: str
) -> None:
    assert TimeLimit.parse(text) == TimeLimit(amount, unit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a time limit"),
        ("two hours", "is not a time limit"),
        ("2 weeks", "is not a time limit"),
        ("1 working", "is not a time limit"),
        ("-1 hours", "is not a time limit"),
        ("0 hours", "must be more than 0"),
        ("0个工作日", "must be more than 0"),
    ],
)
def test_a_wrong_limit_says_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeLimit.parse(text)


def test_a_limit_refuses_a_unit_or_amount_it_cannot_count() -> None:
    with pytest.raises(ValueError, match="unit must be one of"):
        TimeLimit(1, "weeks")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="above 0"):
        TimeLimit(float("inf"), "hours")


def test_a_limit_has_a_chinese_label_and_reads_back_its_english_form() -> None:
    labels = {
        "1 working day": "1个工作日",
        "15 working days": "15个工作日",
        "4 working hours": "4个工作时",
        "2 hours": "2小时",
        "3 days": "3天",
        "0.5 working days": "0.5个工作日",
    }
    for text, label in labels.items():
        limit = TimeLimit.parse(text)
        assert limit.label_zh == label
        assert str(limit) == text
        assert TimeLimit.parse(limit.label_zh) == limit
    for limit in (TimeLimit(1_000_000, "hours"), TimeLimit(1.2345678, "working_days")):
        assert TimeLimit.parse(str(limit)) == limit  # the registry keeps limits as this text
    assert TimeLimit.parse("4 working hours").working
    assert not TimeLimit.parse("4 hours").working


# ---- the calendar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 3, 6), True),  # a Friday
        (date(2026, 3, 7), False),  # a Saturday
        (date(2026, 1, 1), False),  # 元旦
        (date(2026, 1, 4), True),  # a Sunday worked (调休上班)
        (date(2026, 2, 14), True),  # a Saturday worked before 春节
        (date(2026, 2, 16), False),  # 除夕
        (date(2026, 2, 23), False),  # a Monday of the 春节 break
        (date(2026, 2, 28), True),  # a Saturday worked after 春节
        (date(2026, 9, 20), True),  # a Sunday worked before 国庆
        (date(2026, 10, 1), False),  # 国庆
        (date(2026, 10, 7), False),  # a Wednesday of the golden week
        (date(2026, 10, 10), True),  # a Saturday worked after 国庆
    ],
)
def test_working_days_follow_the_official_2026_calendar(
    calendar: WorkCalendar, day: date, working: bool
) -> None:
    assert calendar.is_workday(day) is working


def test_a_year_without_its_official_notice_is_flagged_and_still_counts() -> None:
    calendar = WorkCalendar(SHANGHAI)
    assert calendar.covers(2026)
    assert calendar.estimated_years == frozenset()
    assert not calendar.covers(2027)  # the notice for 2027 is not in the data
    assert calendar.estimated_years == {2027}
    # Statutory holidays are known all the same; no Saturday is worked.
    assert not calendar.is_workday(date(2027, 1, 1))  # 元旦, a Friday
    assert calendar.is_workday(date(2027, 1, 4))  # a Monday
    assert not calendar.is_workday(date(2027, 1, 9))  # a Saturday
    # Thu 2026-12-31 10:00 + 15 working days: 6 h that day, then 114 h = 14 days + 2 h on
    # Jan 4-8, 11-15, 18-21 (Jan 1 is 元旦): Fri 2027-01-22 10:00.
    assert add(calendar, local(2026, 12, 31, 10), "15 working days") == local(2027, 1, 22, 10)
    # Far outside the data: Monday to Friday.
    assert not calendar.covers(2300)
    assert calendar.is_workday(date(2300, 1, 2))  # a Tuesday
    assert calendar.estimated_years == {2027, 2300}


# ---- deadlines in working time ------------------------------------------------------------


def test_working_hours_skip_the_weekend(calendar: WorkCalendar) -> None:
    # Fri 2026-03-06 16:00 + 4 working hours: 16-18 (2 h), Mon 08-10 (2 h).
    assert add(calendar, local(2026, 3, 6, 16), "4 working hours") == local(2026, 3, 9, 10)


def test_working_hours_skip_the_lunch_break(calendar: WorkCalendar) -> None:
    # Mon 11:00 + 2 working hours: 11-12 (1 h), 14-15 (1 h).
    assert add(calendar, local(2026, 3, 9, 11), "2 working hours") == local(2026, 3, 9, 15)


@pytest.mark.parametrize(
    ("start", "deadline"),
    [
        (local(2026, 3, 9, 7), local(2026, 3, 9, 9)),  # before work: from 08:00
        (local(2026, 3, 9, 12, 30), local(2026, 3, 9, 15)),  # at lunch: from 14:00
        (local(2026, 3, 9, 19), local(2026, 3, 10, 9)),  # after work: from Tue 08:00
        (local(2026, 3, 7, 10), local(2026, 3, 9, 9)),  # on a Saturday: from Mon 08:00
    ],
)
def test_a_start_outside_working_hours_counts_from_the_next_working_moment(
    calendar: WorkCalendar, start: datetime, deadline: datetime
) -> None:
    assert calendar.add(start, WORKING_HOUR) == deadline


def test_a_deadline_at_the_end_of_a_span_is_that_end(calendar: WorkCalendar) -> None:
    # 08:00 + 4 working hours is 12:00, not 14:00; one working day from 08:00 ends 18:00.
    assert add(calendar, local(2026, 3, 9, 8), "4 working hours") == local(2026, 3, 9, 12)
    assert calendar.add(local(2026, 3, 9, 8), WORKING_DAY) == local(2026, 3, 9, 18)


def test_a_working_day_is_a_day_of_working_time_from_the_start(calendar: WorkCalendar) -> None:
    # Mon 10:00 + 1 working day (8 h): 10-12, 14-18 (6 h), Tue 08-10 (2 h).
    assert calendar.add(local(2026, 3, 9, 10), WORKING_DAY) == local(2026, 3, 10, 10)


def test_a_deadline_skips_national_day_golden_week(calendar: WorkCalendar) -> None:
    # Wed 2026-09-30 10:00 + 1 working day: 6 h that day; Oct 1-7 off; Thu Oct 8 08-10.
    assert calendar.add(local(2026, 9, 30, 10), WORKING_DAY) == local(2026, 10, 8, 10)
    # + 15 working days = 120 h: 6 h on Sep 30, then 14 whole days (Oct 8, 9, Sat 10, 12-16,
    # 19-23, 26) and 2 h on Tue Oct 27.
    assert add(calendar, local(2026, 9, 30, 10), "15 working days") == local(2026, 10, 27, 10)


def test_a_deadline_skips_the_spring_festival_and_counts_its_working_saturday(
    calendar: WorkCalendar,
) -> None:
    # Fri 2026-02-13 16:00 + 2 working days (16 h): Fri 16-18 (2 h), Sat Feb 14 worked (8 h),
    # Feb 15-23 off, Tue Feb 24 08-12 (4 h) and 14-16 (2 h).
    assert add(calendar, local(2026, 2, 13, 16), "2 working days") == local(2026, 2, 24, 16)


def test_an_adjusted_working_weekend_counts(calendar: WorkCalendar) -> None:
    # Fri 2026-10-09 10:00 + 1 working day ends on Saturday Oct 10, a working day.
    assert calendar.add(local(2026, 10, 9, 10), WORKING_DAY) == local(2026, 10, 10, 10)
    # From 元旦 (Thu Jan 1, off; Jan 2-3 off too) the first working hours are Sunday Jan 4's.
    assert add(calendar, local(2026, 1, 1, 12), "4 working hours") == local(2026, 1, 4, 12)


def test_natural_hours_ignore_nights_weekends_and_holidays(calendar: WorkCalendar) -> None:
    assert add(calendar, local(2026, 3, 6, 17), "2 hours") == local(2026, 3, 6, 19)
    assert add(calendar, local(2026, 10, 1, 23), "2 hours") == local(2026, 10, 2, 1)
    assert add(calendar, local(2026, 2, 16, 12, 30), "3 days") == local(2026, 2, 19, 12, 30)


def test_instants_are_utc_out_and_work_hours_are_local(calendar: WorkCalendar) -> None:
    # 00:30 UTC is 08:30 in Shanghai: one working hour later is 09:30 local, 01:30 UTC.
    deadline = calendar.add(datetime(2026, 3, 9, 0, 30, tzinfo=UTC), WORKING_HOUR)
    assert deadline == datetime(2026, 3, 9, 1, 30, tzinfo=UTC)
    assert deadline.tzinfo is UTC
    with pytest.raises(ValueError, match="no time zone"):
        calendar.add(datetime(2026, 3, 9, 8), WORKING_HOUR)


def test_a_city_sets_its_own_work_hours() -> None:
    calendar = WorkCalendar(SHANGHAI, ("09:00-17:00",))
    assert calendar.working_day_s == 8 * 3600
    assert calendar.add(local(2026, 3, 9, 9), WORKING_DAY) == local(2026, 3, 9, 17)
    # Mon 16:00 + 2 working hours: 16-17, Tue 09-10.
    assert add(calendar, local(2026, 3, 9, 16), "2 working hours") == local(2026, 3, 10, 10)


def test_work_hours_are_checked_in_the_config() -> None:
    assert CasesSettings(work_hours=("07:30-11:30", "13:30-17:30")).work_hours[0] == "07:30-11:30"
    with pytest.raises(ValidationError, match="is not HH:MM-HH:MM"):
        CasesSettings(work_hours=("8:00-12:00",))
    with pytest.raises(ValidationError, match="ends before it starts"):
        CasesSettings(work_hours=("18:00-08:00",))
    with pytest.raises(ValidationError, match="list them in order"):
        CasesSettings(work_hours=("14:00-18:00", "08:00-12:00"))
    with pytest.raises(ValidationError, match="at least one span"):
        CasesSettings(work_hours=())


# ---- elapsed, suspension, the light --------------------------------------------------------


def test_elapsed_counts_on_the_limits_own_clock(calendar: WorkCalendar) -> None:
    # Fri 10:00 → Mon 10:00: 10-12, 14-18 on Friday and 08-10 on Monday = 8 h of working time;
    # 72 h of natural time.
    start, end = local(2026, 3, 6, 10), local(2026, 3, 9, 10)
    assert calendar.elapsed(start, end, WORKING_HOUR) == 8 * 3600
    assert calendar.elapsed(start, end, HOUR) == 72 * 3600
    assert calendar.elapsed(end, start, WORKING_HOUR) == -8 * 3600
    assert calendar.elapsed(local(2026, 3, 9, 12), local(2026, 3, 9, 14), WORKING_HOUR) == 0


def test_a_suspension_pushes_the_deadline_by_the_paused_time_on_its_clock(
    calendar: WorkCalendar,
) -> None:
    deadline = local(2026, 3, 9, 10)
    # Suspended Fri 17:00, resumed Mon 09:00: 1 h on Friday, 1 h on Monday in working time.
    pushed = calendar.postpone(deadline, local(2026, 3, 6, 17), local(2026, 3, 9, 9), WORKING_DAY)
    assert pushed == local(2026, 3, 9, 12)
    # In natural time the same pause is 64 h.
    pushed = calendar.postpone(deadline, local(2026, 3, 6, 17), local(2026, 3, 9, 9), HOUR)
    assert pushed == deadline + timedelta(hours=64)
    # Paused over a weekend only: nothing moves, not even a deadline at 18:00.
    friday_evening = local(2026, 3, 6, 18)
    unmoved = calendar.postpone(friday_evening, local(2026, 3, 7), local(2026, 3, 8), WORKING_DAY)
    assert unmoved == friday_evening


@pytest.mark.parametrize(
    ("now", "light"),
    [
        (local(2026, 3, 9, 14), "green"),  # 4 of 8 working hours
        (local(2026, 3, 9, 12, 30), "green"),  # lunch: still 4 h
        (local(2026, 3, 9, 16, 23), "green"),  # 6 h 23 min: 0.798
        (local(2026, 3, 9, 16, 24), "yellow"),  # 6 h 24 min: 0.8 exactly
        (local(2026, 3, 9, 18), "yellow"),  # at the deadline
        (local(2026, 3, 9, 18, 0, 1), "red"),  # past it
    ],
)
def test_the_light_turns_at_80_percent_of_the_limits_clock_and_red_past_the_deadline(
    calendar: WorkCalendar, now: datetime, light: str
) -> None:
    # Mon 2026-03-09 08:00 + 1 working day: the deadline is 18:00.
    start = local(2026, 3, 9, 8)
    deadline = calendar.add(start, WORKING_DAY)
    assert calendar.light(start, deadline, now, WORKING_DAY, yellow_at=0.8) == light


def test_the_light_leaves_out_the_paused_time(calendar: WorkCalendar) -> None:
    # Mon 08:00 + 1 working day, suspended 4 working hours: the deadline is Tue 12:00. At Tue
    # 10:00, 10 h of working time have passed, 4 of them paused: 6 of 8 h used (green);
    # counting the pause it would be 10 of 12 (yellow).
    start, now = local(2026, 3, 9, 8), local(2026, 3, 10, 10)
    deadline = calendar.add_seconds(calendar.add(start, WORKING_DAY), 4 * 3600, WORKING_DAY)
    assert deadline == local(2026, 3, 10, 12)
    assert calendar.light(start, deadline, now, WORKING_DAY, paused_s=4 * 3600) == "green"
    assert calendar.light(start, deadline, now, WORKING_DAY) == "yellow"


instants = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 6, 30), timezones=st.just(UTC)
)
limits = st.sampled_from([WORKING_HOUR, HOUR])


@settings(deadline=None, max_examples=300)
@given(start=instants, micros=st.integers(0, 40 * 8 * 3600 * 10**6), limit=limits)
def test_elapsed_undoes_add_seconds(
    calendar: WorkCalendar, start: datetime, micros: int, limit: TimeLimit
) -> None:
    seconds = micros / 10**6
    deadline = calendar.add_seconds(start, seconds, limit)
    assert deadline >= start
    assert calendar.elapsed(start, deadline, limit) == seconds


@settings(deadline=None, max_examples=300)
@given(start=instants, end=instants, limit=limits)
def test_add_seconds_finds_the_first_instant_with_that_much_elapsed(
    calendar: WorkCalendar, start: datetime, end: datetime, limit: TimeLimit
) -> None:
    start, end = min(start, end), max(start, end)
    seconds = calendar.elapsed(start, end, limit)
    first = calendar.add_seconds(start, seconds, limit)
    assert start <= first <= end
    assert calendar.elapsed(start, first, limit) == seconds


# ---- the table ------------------------------------------------------------------------------

TABLE = """
default_condition = "一般"

[event]
default = { "一般" = "3 working days", "紧急" = "4 hours" }
"01" = { "一般" = "1 working day", "紧急" = "2 hours" }
"0102" = { "一般" = "4 working hours", "夜间" = "8 hours" }

[component]
default = "5 working days"
"""


@pytest.mark.parametrize(
    ("kind", "code", "condition", "limit"),
    [
        ("event", "0102", "夜间", "8 hours"),  # the class under its condition
        ("event", "0102", "紧急", "4 working hours"),  # the class's default condition first
        ("event", "0102", None, "4 working hours"),
        ("event", "0103", "紧急", "2 hours"),  # the major class under the condition
        ("event", "0103", "夜间", "1 working day"),  # the major class's default
        ("event", "01031", None, "1 working day"),  # a 5-digit code's major class
        ("event", "0201", "紧急", "4 hours"),  # the kind's default under the condition
        ("event", "0201", None, "3 working days"),
        ("component", "0101", "紧急", "5 working days"),
    ],
)
def test_the_table_is_looked_up_class_then_major_class_then_default(
    kind: str, code: str, condition: str | None, limit: str
) -> None:
    table = LimitTable.from_toml(TABLE)
    assert table.limit_for(kind, code, condition) == TimeLimit.parse(limit)


def test_the_table_offers_the_conditions_of_the_entry_that_answers() -> None:
    table = LimitTable.from_toml(TABLE)
    assert table.conditions("event", "0102") == ["一般", "夜间"]
    assert table.conditions("event", "0103") == ["一般", "紧急"]
    assert table.conditions("component", "0101") == ["一般"]
    with pytest.raises(ValueError, match="kind must be"):
        table.limit_for("matter", "0102")
    with pytest.raises(ValueError, match="4 or 5 digits"):
        table.limit_for("event", "01")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (TABLE.replace("8 hours", "8 hourz"), "event.0102.夜间: '8 hourz' is not a time limit"),
        (TABLE + '"01x" = "1 day"\n', "component.01x: not a class code"),
        (TABLE + '"0301" = { "紧急" = "2 hours" }\n', "no limit for the default condition '一般'"),
        (TABLE + '"0301" = 4\n', "must be a limit"),
        (TABLE + '"0301" = { "一般" = 4 }\n', "component.0301.一般: must be text"),
        (TABLE.replace('default = "5 working days"', ""), "[component] has no default entry"),
        (TABLE.replace("[component]", "[components]"), "no [component] table"),
        (TABLE + "[bus]\n", "unknown key 'bus'"),
        (TABLE.replace('"一般"\n', "\n", 1), "not valid TOML"),
    ],
)
def test_a_wrong_table_names_the_file_and_the_entry(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "limits.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        LimitTable.load(path)
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)


def test_every_wrong_entry_is_reported_at_once(tmp_path: Path) -> None:
    text = TABLE.replace("2 hours", "2 weeks").replace("8 hours", "0 hours")
    with pytest.raises(ConfigError) as raised:
        LimitTable.from_toml(text, "city.toml")
    assert len(raised.value.problems) == 2
    with pytest.raises(ConfigError, match="cannot read"):
        LimitTable.load(tmp_path / "missing.toml")


def test_the_shipped_table_covers_every_major_class_of_the_profile(profile: CodeProfile) -> None:
    table = LimitTable.from_settings(CasesSettings())
    for kind, entries in table.entries.items():
        majors = {code[:2] for code in profile.codes(kind)}
        assert majors <= set(entries), kind
        for key in entries:
            assert key in {"default", *majors} or profile.lookup(kind, key), (kind, key)
    # Published limits (config/time_limits.toml names the sources).
    assert table.limit_for("event", "0102") == TimeLimit(1, "working_days")  # 暴露垃圾
    assert table.limit_for("event", "0101") == TimeLimit(15, "working_days")  # 私搭乱建
    assert table.limit_for("component", "0101", "紧急") == TimeLimit(2, "hours")  # 井盖缺失
    assert table.conditions("component", "0102") == ["一般", "紧急"]


def test_natural_time_is_elapsed_time_across_a_dst_change() -> None:
    # A zone with summer time (the calendar's zone is configurable): Berlin went from 02:00
    # to 03:00 on 2026-03-29, so 01:30 + 2 hours is 04:30 on the wall.
    berlin = ZoneInfo("Europe/Berlin")
    calendar = WorkCalendar(berlin)
    start = datetime(2026, 3, 29, 1, 30, tzinfo=berlin)
    assert calendar.add(start, TimeLimit(2, "hours")) == datetime(2026, 3, 29, 4, 30, tzinfo=berlin)
    assert calendar.elapsed(start, datetime(2026, 3, 29, 4, 30, tzinfo=berlin), HOUR) == 7200
