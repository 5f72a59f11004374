"""Unit tests for engine.calendar: NRW holidays, closing days and deadline counting.

All expected dates are worked out by hand (weekday noted where it matters);
none of them is computed with the code under test.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import Calendar
from engine.durations import Duration, DurationUnit, parse_duration

BERLIN = ZoneInfo("Europe/Berlin")
NW = Calendar("NW")
# A typical municipality: closed on 24 and 31 December every year.
NW_CLOSED = Calendar("NW", closing_days=["12-24", "12-31"])


def d(text: str) -> date:
    return date.fromisoformat(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


# -- public holidays -----------------------------------------------------------

EASTER_SUNDAY = {2025: d("2025-04-20"), 2026: d("2026-04-05"), 2027: d("2027-03-28")}

# Moving holidays, pinned literally: Karfreitag, Ostermontag, Christi Himmelfahrt,
# Pfingstmontag, Fronleichnam.
MOVING_HOLIDAYS = {
    2025: ("2025-04-18", "2025-04-21", "2025-05-29", "2025-06-09", "2025-06-19"),
    2026: ("2026-04-03", "2026-04-06", "2026-05-14", "2026-05-25", "2026-06-04"),
    2027: ("2027-03-26", "2027-03-29", "2027-05-06", "2027-05-17", "2027-05-27"),
}
# Neujahr, 1. Mai, Tag der Deutschen Einheit, Allerheiligen, 1. and 2. Weihnachtstag.
FIXED_HOLIDAYS = ("01-01", "05-01", "10-03", "11-01", "12-25", "12-26")


def nrw_holidays(year: int) -> set[date]:
    return {d(text) for text in MOVING_HOLIDAYS[year]} | {d(f"{year}-{md}") for md in FIXED_HOLIDAYS}


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_pinned_moving_holidays_agree_with_the_easter_table(year: int) -> None:
    """Guards the literal table against typos: Easter -2, +1, +39, +50, +60 days."""
    easter = EASTER_SUNDAY[year]
    offsets = (-2, 1, 39, 50, 60)
    assert tuple(str(easter + timedelta(days=offset)) for offset in offsets) == MOVING_HOLIDAYS[year]


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_nrw_has_exactly_the_eleven_statutory_holidays(year: int) -> None:
    holidays = NW.public_holidays(year)
    assert len(holidays) == 11
    assert set(holidays) == nrw_holidays(year)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        ("2026-01-01", "Neujahr"),
        ("2026-04-03", "Karfreitag"),
        ("2026-04-06", "Ostermontag"),
        ("2026-05-14", "Christi Himmelfahrt"),
        ("2026-05-25", "Pfingstmontag"),
        ("2026-06-04", "Fronleichnam"),
        ("2026-10-03", "Tag der Deutschen Einheit"),
        ("2026-11-01", "Allerheiligen"),
    ],
)
def test_holiday_names_are_german(day: str, name: str) -> None:
    assert NW.public_holidays(2026)[d(day)] == name


@pytest.mark.parametrize(
    "day",
    [
        "2025-01-06", "2026-01-06", "2027-01-06",  # Heilige Drei Könige
        "2025-10-31", "2026-10-31", "2027-10-31",  # Reformationstag
        "2025-11-19", "2026-11-18", "2027-11-17",  # Buß- und Bettag
        "2026-02-16",  # Rosenmontag: a closing day at most, never a holiday
        "2026-12-24", "2026-12-31",
    ],
)  # fmt: skip
def test_days_that_are_not_holidays_in_nrw(day: str) -> None:
    assert not NW.is_public_holiday(d(day))


@pytest.mark.parametrize("day", ["2025-10-31", "2026-10-31", "2027-10-31", "2026-11-18"])
def test_reformationstag_and_buss_und_bettag_are_holidays_in_saxony(day: str) -> None:
    assert Calendar("SN").is_public_holiday(d(day))


def test_calendar_configuration_is_read_only() -> None:
    calendar = Calendar("SN", timezone="Europe/Berlin")
    assert (calendar.state, calendar.timezone) == ("SN", "Europe/Berlin")
    with pytest.raises(AttributeError):
        calendar.state = "NW"  # type: ignore[misc]


def test_public_holidays_returns_a_copy_that_callers_may_modify() -> None:
    calendar = Calendar()
    calendar.public_holidays(2026).clear()
    assert len(calendar.public_holidays(2026)) == 11
    assert calendar.is_public_holiday(d("2026-06-04"))


# -- day classification --------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "day", "is_office_day", "is_working_day"),
    [
        (NW, "2026-03-06", True, True),  # Friday
        (NW, "2026-03-07", False, True),  # Saturday: a Werktag
        (NW, "2026-03-08", False, False),  # Sunday
        (NW, "2026-06-04", False, False),  # Fronleichnam (Thursday)
        (NW, "2026-10-03", False, False),  # Saturday and holiday
        (NW, "2026-01-06", True, True),  # Heilige Drei Könige is not an NRW holiday
        (NW, "2026-12-24", True, True),  # Thursday; no closing days configured
        (NW_CLOSED, "2026-12-24", False, True),  # closing day: no office day, still a Werktag
        (NW_CLOSED, "2027-12-31", False, True),  # recurring closing day, next year (Friday)
        (NW_CLOSED, "2026-12-23", True, True),
    ],
)
def test_classifies_office_days_and_working_days(
    calendar: Calendar, day: str, is_office_day: bool, is_working_day: bool
) -> None:
    assert calendar.is_office_day(d(day)) is is_office_day
    assert calendar.is_working_day(d(day)) is is_working_day


@pytest.mark.parametrize("rosenmontag", ["2027-02-08", date(2027, 2, 8)])
def test_one_off_closing_day_applies_only_to_its_year(rosenmontag: str | date) -> None:
    calendar = Calendar(closing_days=[rosenmontag])
    assert not calendar.is_office_day(d("2027-02-08"))
    assert calendar.is_office_day(d("2028-02-08"))  # Tuesday


def test_recurring_leap_day_closing_applies_only_in_leap_years() -> None:
    calendar = Calendar(closing_days=["02-29"])
    assert not calendar.is_office_day(d("2028-02-29"))  # Tuesday
    assert calendar.is_office_day(d("2027-02-26"))  # no error building a non-leap year


@pytest.mark.parametrize(
    "closing_day",
    ["13-01", "00-10", "02-30", "2026-02-30", "2026-13-01", "24.12.", "12-24-2026", "", "1-5", "2026-12-24T00"],
)
def test_rejects_malformed_closing_days(closing_day: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"not a closing day: '{closing_day}'")):
        Calendar(closing_days=[closing_day])


@pytest.mark.parametrize("closing_days", ["12-24", [1224], [datetime(2026, 12, 24, tzinfo=UTC)]])
def test_rejects_closing_days_of_the_wrong_type(closing_days: object) -> None:
    with pytest.raises(TypeError, match="closing"):
        Calendar(closing_days=closing_days)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["XX", "nw", "NRW", ""])
def test_rejects_unknown_states(state: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"unknown German state '{state}'")):
        Calendar(state)


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "Europe/", "../etc/passwd"])
def test_rejects_unknown_time_zones(timezone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Calendar(timezone=timezone)


# -- due_date ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "start", "duration", "due"),
    [
        (NW, "2026-03-03", "1 Arbeitstag", "2026-03-04"),  # Tue -> Wed
        (NW, "2026-03-06", "1 Arbeitstag", "2026-03-09"),  # Fri -> Mon
        (NW, "2026-03-07", "1 Arbeitstag", "2026-03-09"),  # Sat -> Mon
        (NW, "2026-03-03", "10 Arbeitstage", "2026-03-17"),
        (NW, "2026-04-02", "1 Arbeitstag", "2026-04-07"),  # over Karfreitag, weekend, Ostermontag
        (NW, "2026-12-23", "1 Arbeitstag", "2026-12-24"),  # no closing days configured
        (NW_CLOSED, "2026-12-23", "1 Arbeitstag", "2026-12-28"),  # 24 closed, 25/26 holidays, 27 Sunday
        (NW_CLOSED, "2026-12-30", "1 Arbeitstag", "2027-01-04"),  # 31 closed, Neujahr, weekend
        (NW_CLOSED, "2026-12-23", "5 Arbeitstage", "2027-01-05"),  # 28, 29, 30, 4, 5
        (NW, "2026-03-03", "0 Arbeitstage", "2026-03-03"),  # office day itself
        (NW, "2026-03-07", "0 Arbeitstage", "2026-03-09"),  # Saturday -> next office day
        (NW_CLOSED, "2026-12-24", "0 Arbeitstage", "2026-12-28"),
    ],
)
def test_office_days_count_only_office_days_after_the_start(
    calendar: Calendar, start: str, duration: str, due: str
) -> None:
    assert calendar.due_date(d(start), parse_duration(duration)) == d(due)


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        ("2026-03-06", "1 Werktag", "2026-03-07"),  # Fri -> Sat: Saturdays are Werktage
        ("2026-03-07", "1 Werktag", "2026-03-09"),  # Sat -> Mon
        ("2026-03-03", "6 Werktage", "2026-03-10"),  # Wed, Thu, Fri, Sat, Mon, Tue
        ("2026-04-02", "1 Werktag", "2026-04-04"),  # Karfreitag skipped, Saturday counts
        ("2026-12-23", "1 Werktag", "2026-12-24"),  # closing days do not affect Werktage
        ("2026-12-24", "1 Werktag", "2026-12-28"),  # 25/26 holidays, 27 Sunday
        ("2026-03-07", "0 Werktage", "2026-03-07"),
        ("2026-03-08", "0 Werktage", "2026-03-09"),
    ],
)
def test_working_days_include_saturdays(start: str, duration: str, due: str) -> None:
    assert NW_CLOSED.due_date(d(start), parse_duration(duration)) == d(due)


@pytest.mark.parametrize(
    ("calendar", "start", "duration", "due"),
    [
        # plain arithmetic, result is an office day
        (NW, "2026-03-03", "14 Kalendertage", "2026-03-17"),
        (NW, "2026-03-03", "P2W", "2026-03-17"),
        (NW, "2026-12-15", "1 Monat", "2027-01-15"),  # across the year end (Friday)
        (NW, "2026-01-15", "P1Y6M", "2027-07-15"),  # Thursday
        # month-end clamping (BGB § 188 (3))
        (NW, "2024-01-31", "1 Monat", "2024-02-29"),  # leap year, Thursday
        (NW, "2024-02-29", "1 Jahr", "2025-02-28"),  # Friday
        (NW, "2025-03-31", "1 Monat", "2025-04-30"),  # Wednesday
        (NW, "2027-12-31", "2 Monate", "2028-02-29"),  # Tuesday
        # roll-over (BGB § 193): weekend, holiday, closing day -> next office day
        (NW, "2026-03-06", "1 Kalendertag", "2026-03-09"),  # Saturday -> Monday
        (NW, "2026-02-15", "1 Monat", "2026-03-16"),  # Sunday 15 March -> Monday
        (NW, "2026-01-31", "1 Monat", "2026-03-02"),  # clamped to Sat 28 Feb -> Monday
        (NW, "2026-08-31", "6 Monate", "2027-03-01"),  # clamped to Sun 28 Feb -> Monday
        (NW, "2026-03-03", "1 Monat", "2026-04-07"),  # Karfreitag, weekend, Ostermontag
        (NW, "2026-05-04", "1 Monat", "2026-06-05"),  # Fronleichnam (Thursday) -> Friday
        (NW, "2026-05-11", "2 Wochen", "2026-05-26"),  # Pfingstmontag -> Tuesday
        (NW, "2025-10-03", "1 Jahr", "2026-10-05"),  # Sat 3 Oct 2026 (also a holiday) -> Monday
        (NW, "2026-03-08", "0 Tage", "2026-03-09"),  # Sunday -> Monday
        (NW, "2026-12-21", "3 Kalendertage", "2026-12-24"),  # no closing days configured
        (NW_CLOSED, "2026-12-21", "3 Kalendertage", "2026-12-28"),  # closed 24th, holidays, Sunday
        (NW_CLOSED, "2025-12-31", "1 Jahr", "2027-01-04"),  # closed 31st, Neujahr, weekend
    ],
)
def test_calendar_units_roll_forward_to_the_next_office_day(
    calendar: Calendar, start: str, duration: str, due: str
) -> None:
    assert calendar.due_date(d(start), parse_duration(duration)) == d(due)


# -- due_at ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "expires"),
    [
        # winter: the day ends at 00:00 CET (+01:00) = 23:00 UTC
        (utc("2026-03-03T10:00"), "10 Arbeitstage", utc("2026-03-17T23:00")),
        (utc("2026-03-26T10:00"), "1 Arbeitstag", utc("2026-03-27T23:00")),  # Fri
        (utc("2026-03-27T10:00"), "1 Werktag", utc("2026-03-28T23:00")),  # Sat; DST starts Sunday 02:00
        (utc("2026-10-23T10:00"), "1 Arbeitstag", utc("2026-10-26T23:00")),  # Mon after DST ended
        # summer: the day ends at 00:00 CEST (+02:00) = 22:00 UTC
        (utc("2026-03-27T10:00"), "1 Arbeitstag", utc("2026-03-30T22:00")),  # Fri (CET) -> Mon (CEST)
        (utc("2026-07-01T08:00"), "1 Arbeitstag", utc("2026-07-02T22:00")),
        (utc("2026-10-22T10:00"), "1 Arbeitstag", utc("2026-10-23T22:00")),  # Fri
        (utc("2026-10-23T10:00"), "1 Werktag", utc("2026-10-24T22:00")),  # Sat; DST ends Sunday 03:00
        # the start counts on its local (Berlin) date, not its UTC date
        (utc("2026-03-03T23:30"), "1 Arbeitstag", utc("2026-03-05T23:00")),  # 00:30 on Wed 4 March
        (berlin("2026-03-04T00:30"), "1 Arbeitstag", utc("2026-03-05T23:00")),
        (utc("2026-03-03T22:59"), "1 Arbeitstag", utc("2026-03-04T23:00")),  # 23:59 on Tue 3 March
    ],
)
def test_due_at_is_the_end_of_the_local_due_day_in_utc(start: datetime, duration: str, expires: datetime) -> None:
    result = NW.due_at(start, parse_duration(duration))
    assert result == expires
    assert result.utcoffset() == timedelta(0)


def test_due_at_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        NW.due_at(datetime(2026, 3, 3, 10), Duration(1, DurationUnit.OFFICE_DAYS))


@pytest.mark.parametrize(
    ("instant", "local"),
    [
        (utc("2026-03-03T22:59:59"), "2026-03-03"),
        (utc("2026-03-03T23:00"), "2026-03-04"),
        (utc("2026-07-01T21:59:59"), "2026-07-01"),
        (utc("2026-07-01T22:00"), "2026-07-02"),
    ],
)
def test_local_date_uses_berlin_time(instant: datetime, local: str) -> None:
    assert NW.local_date(instant) == d(local)


def test_local_date_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        NW.local_date(datetime(2026, 3, 3, 10))


# -- before ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "anchor", "duration", "reminder"),
    [
        (NW, "2026-09-30", "6 Wochen", "2026-08-19"),  # Wednesday, no rolling needed
        (NW, "2026-03-31", "1 Monat", "2026-02-27"),  # Sat 28 Feb -> back to Friday
        (NW, "2024-03-31", "1 Monat", "2024-02-29"),  # clamped to the month end (Thursday)
        (NW, "2026-03-31", "3 Monate", "2025-12-31"),
        (NW_CLOSED, "2026-03-31", "3 Monate", "2025-12-30"),  # 31 Dec closed -> back
        (NW, "2025-02-28", "1 Jahr", "2024-02-28"),
        (NW, "2026-04-08", "2 Arbeitstage", "2026-04-02"),  # over Ostermontag, weekend, Karfreitag
        (NW_CLOSED, "2027-01-04", "1 Arbeitstag", "2026-12-30"),
        (NW, "2026-04-06", "0 Tage", "2026-04-02"),  # Ostermontag -> back over weekend, Karfreitag
        (NW, "2026-03-09", "1 Werktag", "2026-03-06"),  # Saturday is a Werktag, then rolled back
        (NW, "2026-03-11", "2 Werktage", "2026-03-09"),
    ],
)
def test_before_counts_back_and_never_lands_after_the_intended_day(
    calendar: Calendar, anchor: str, duration: str, reminder: str
) -> None:
    assert calendar.before(d(anchor), parse_duration(duration)) == d(reminder)


# -- add_office_days / office_days_between -----------------------------------------


@pytest.mark.parametrize(
    ("day", "n", "result"),
    [
        ("2026-03-03", 1, "2026-03-04"),
        ("2026-03-07", 0, "2026-03-09"),
        ("2026-12-23", 1, "2026-12-28"),
        ("2027-01-04", -1, "2026-12-30"),
        ("2026-03-09", -1, "2026-03-06"),
        ("2026-03-07", -1, "2026-03-06"),  # from a Saturday, the Friday before
    ],
)
def test_add_office_days_counts_forward_and_back(day: str, n: int, result: str) -> None:
    assert NW_CLOSED.add_office_days(d(day), n) == d(result)


@pytest.mark.parametrize(
    ("calendar", "start", "end", "count"),
    [
        (NW, berlin("2026-03-03T12:00"), berlin("2026-03-04T09:00"), 1),
        (NW, berlin("2026-03-03T08:00"), berlin("2026-03-03T18:00"), 0),  # same local day
        (NW, berlin("2026-03-04T12:00"), berlin("2026-03-03T12:00"), 0),  # end before start
        (NW, berlin("2026-03-06T12:00"), berlin("2026-03-08T12:00"), 0),  # only the weekend
        (NW, berlin("2026-03-06T12:00"), berlin("2026-03-09T00:00"), 1),
        (NW, berlin("2026-04-02T12:00"), berlin("2026-04-07T12:00"), 1),  # Easter
        (NW, berlin("2026-03-03T12:00"), berlin("2026-03-17T12:00"), 10),
        (NW_CLOSED, berlin("2026-12-23T12:00"), berlin("2027-01-04T12:00"), 4),  # 28, 29, 30, 4
        (NW_CLOSED, berlin("2025-12-31T12:00"), berlin("2027-01-01T12:00"), 251),  # whole year 2026
        (NW, utc("2026-03-03T23:30"), utc("2026-03-04T12:00"), 0),  # both on local Wed 4 March
        (NW, utc("2026-03-03T22:59"), utc("2026-03-03T23:00"), 1),  # local midnight passes
    ],
)
def test_office_days_between_counts_local_days_after_start_up_to_end(
    calendar: Calendar, start: datetime, end: datetime, count: int
) -> None:
    assert calendar.office_days_between(start, end) == count


def test_office_days_between_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        NW.office_days_between(datetime(2026, 3, 3), utc("2026-03-04T00:00"))


def test_2026_has_251_office_days_in_a_municipality_closed_on_24_and_31_december() -> None:
    """261 weekdays - 8 weekday holidays (3 Oct, 26 Dec: Saturdays; 1 Nov: Sunday) - 24 and 31 Dec."""
    days = [date(2026, 1, 1) + timedelta(days=offset) for offset in range(365)]
    assert sum(day.weekday() < 5 for day in days) == 261
    assert sum(NW_CLOSED.is_office_day(day) for day in days) == 251


# -- properties ------------------------------------------------------------------

days_2024_2030 = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))


@settings(deadline=None)  # the first examples build the per-year caches
@given(start=days_2024_2030, n=st.integers(min_value=1, max_value=300))
def test_office_day_deadlines_are_office_days_exactly_n_office_days_later(start: date, n: int) -> None:
    due = NW_CLOSED.due_date(start, Duration(n, DurationUnit.OFFICE_DAYS))

    assert NW_CLOSED.is_office_day(due)
    assert due > start
    noon = time(12)
    start_at = datetime.combine(start, noon, tzinfo=BERLIN)
    due_at = datetime.combine(due, noon, tzinfo=BERLIN)
    assert NW_CLOSED.office_days_between(start_at, due_at) == n
    # Independent oracle: walk day by day.
    day, remaining = start, n
    while remaining:
        day += timedelta(days=1)
        remaining -= NW_CLOSED.is_office_day(day)
    assert due == day


@settings(deadline=None)  # the first examples build the per-year caches
@given(start=days_2024_2030, n=st.integers(min_value=0, max_value=300))
def test_counting_office_days_back_from_a_deadline_returns_to_the_start(start: date, n: int) -> None:
    office_start = NW_CLOSED.add_office_days(start, 0)
    due = NW_CLOSED.due_date(office_start, Duration(n, DurationUnit.OFFICE_DAYS))
    assert NW_CLOSED.before(due, Duration(n, DurationUnit.OFFICE_DAYS)) == office_start
