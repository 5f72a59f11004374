"""The office calendar: public holidays, closing days and deadline arithmetic.

This module owns the answer to "when is this due?": which days are office
days (Arbeitstage) and working days (Werktage) for one German state and one
municipality, and how a `Duration` is counted from a start day following the
BGB §§ 187–193 conventions of primer §6.3. It is the only engine module that
imports `holidays`; besides that it uses the standard library only.

Every query goes through a per-year cache (holiday set, closing-day set and
the sorted ordinals of that year's office and working days), so counting N
days is a binary search instead of a day-by-day loop.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from engine.durations import Duration, DurationUnit

__all__ = ["Calendar"]

_ONE_DAY = timedelta(days=1)
# Indexed by month number; February without the leap day.
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_SATURDAY = 5  # date.weekday(): Monday is 0, so "< _SATURDAY" means Mon–Fri
_SUNDAY = 6
_MIDNIGHT = time(0)
_RECURRING_CLOSING_DAY = re.compile(r"(?P<month>[0-9]{2})-(?P<day>[0-9]{2})", re.ASCII)
_ONE_OFF_CLOSING_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


@dataclass(frozen=True, slots=True)
class _Year:
    """Everything the calendar needs to know about one year, computed once."""

    holiday_names: dict[date, str]
    holidays: frozenset[date]
    closed: frozenset[date]  # public holidays plus closing days: no office day
    office_days: tuple[int, ...]  # sorted date ordinals
    working_days: tuple[int, ...]  # sorted date ordinals


class Calendar:
    """Office calendar of one municipality in one German state.

    Instances are immutable from the outside and safe to share (years are
    built lazily, on first use, and cached for the instance's lifetime); the
    cache only ever adds identical entries, so concurrent readers at worst
    compute a year twice. Share one instance per configuration: a fresh
    instance pays about 1 ms per year on its first query.

    Args:
        state: German state code as used by the `holidays` package ("NW" for
            North Rhine-Westphalia, "SN" for Saxony, ...).
        closing_days: Days the municipality's offices are closed although they
            are not public holidays: "MM-DD" for every year (e.g. "12-24"),
            "YYYY-MM-DD" or a `date` for a single day (e.g. a Rosenmontag).
            A recurring "02-29" applies in leap years only.
        timezone: IANA zone in which the office's days begin and end.

    Raises:
        ValueError: If the state, a closing day or the time zone is not valid.
        TypeError: If a closing day is neither a str nor a date.
    """

    __slots__ = ("_day_ends", "_one_off", "_recurring", "_state", "_timezone", "_tz", "_years")

    def __init__(
        self,
        state: str = "NW",
        closing_days: Iterable[str | date] = (),
        timezone: str = "Europe/Berlin",
    ) -> None:
        if not isinstance(state, str):
            raise TypeError(f"state must be a str, got {type(state).__name__}")
        unknown_state = f"unknown German state {state!r}; use a code such as 'NW'"
        # An empty subdiv silently means "federal holidays only", which would
        # drop Fronleichnam and Allerheiligen; insist on a state.
        if not state:
            raise ValueError(unknown_state)
        try:
            # Without `years` the holidays object is lazy, so this only validates.
            holidays.country_holidays("DE", subdiv=state)
        except NotImplementedError as exc:
            raise ValueError(unknown_state) from exc
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}; use an IANA name like 'Europe/Berlin'") from exc
        self._state = state
        self._timezone = timezone
        self._recurring, self._one_off = _parse_closing_days(closing_days)
        self._years: dict[int, _Year] = {}
        # Local midnight -> UTC costs two zoneinfo look-ups; due dates repeat
        # a lot (every case advanced today shares a few), so memoise per day.
        self._day_ends: dict[date, datetime] = {}

    def __repr__(self) -> str:
        return f"Calendar(state={self._state!r}, timezone={self._timezone!r})"

    # Read-only: changing either after a year is cached would silently mix calendars.
    @property
    def state(self) -> str:
        """German state code whose public holidays apply, e.g. "NW"."""
        return self._state

    @property
    def timezone(self) -> str:
        """IANA time zone in which the office's days begin and end."""
        return self._timezone

    # -- day classification --------------------------------------------------

    def public_holidays(self, year: int) -> dict[date, str]:
        """Public holidays of the state in one year, with their German names.

        Args:
            year: Calendar year.

        Returns:
            A fresh dict (safe to modify) mapping each holiday to its name,
            e.g. {date(2026, 6, 4): "Fronleichnam", ...}.
        """
        return dict(self._year(year).holiday_names)

    def is_public_holiday(self, day: date) -> bool:
        """Whether `day` is a statutory public holiday in the state."""
        return day in self._year(day.year).holidays

    def is_office_day(self, day: date) -> bool:
        """Whether `day` is an office day: Mon–Fri, no public holiday, no closing day."""
        return day.weekday() < _SATURDAY and day not in self._year(day.year).closed

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a Werktag: Mon–Sat and no public holiday.

        Closing days do not matter here; a Werktag is a legal notion, not an
        opening hour.
        """
        return day.weekday() < _SUNDAY and day not in self._year(day.year).holidays

    # -- time zone -------------------------------------------------------------

    def local_date(self, instant: datetime) -> date:
        """The office's local date at `instant`.

        Args:
            instant: A time-zone-aware datetime (usually UTC).

        Returns:
            The date in the calendar's time zone.

        Raises:
            ValueError: If `instant` is naive.
        """
        # Checked here because astimezone() would silently read a naive value
        # as the server's local time.
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"expected a time-zone-aware datetime, got naive {instant.isoformat()}")
        return instant.astimezone(self._tz).date()

    # -- deadlines -------------------------------------------------------------

    def due_date(self, start: date, duration: Duration) -> date:
        """Last day of a period that begins with the event on `start`.

        The start day itself is not counted (BGB § 187 (1)).

        * Office/working days: the N-th such day after `start`; with N = 0,
          `start` itself if it qualifies, else the next qualifying day.
        * Calendar days/weeks: `start` + N days / 7N days.
        * Months/years: the same day number N months/years later, or the last
          day of that month if it is shorter (BGB § 188 (3)).

        For calendar-type units a result that is not an office day rolls
        forward to the next office day (BGB § 193, extended to the
        municipality's closing days because nobody is there to act).

        Args:
            start: Day of the triggering event.
            duration: Length of the period.

        Returns:
            The last day of the period.
        """
        unit = duration.unit
        if unit is DurationUnit.OFFICE_DAYS:
            return self._count_forward(self._office_ordinals, start, duration.amount)
        if unit is DurationUnit.WORKING_DAYS:
            return self._count_forward(self._working_ordinals, start, duration.amount)
        end = _shift(start, duration, sign=1)
        return self._count_forward(self._office_ordinals, end, 0)

    def due_at(self, start: datetime, duration: Duration) -> datetime:
        """Instant at which a period that begins at `start` expires.

        A deadline runs until the end of its last day, so this is 00:00 local
        time on the day after `due_date(local_date(start), duration)`.

        Args:
            start: Time-zone-aware instant of the triggering event.
            duration: Length of the period.

        Returns:
            The expiry as a UTC datetime.

        Raises:
            ValueError: If `start` is naive.
        """
        return self.end_of_day(self.due_date(self.local_date(start), duration))

    def end_of_day(self, day: date) -> datetime:
        """The instant (UTC) at which local ``day`` ends: 00:00 local time of the following day."""
        end = self._day_ends.get(day)
        if end is None:
            # Local midnight, not "+24 h": across a DST change a day has 23 or 25 hours.
            end = datetime.combine(day + _ONE_DAY, _MIDNIGHT, tzinfo=self._tz).astimezone(UTC)
            self._day_ends[day] = end
        return end

    def extend_deadline(self, deadline: datetime, stopped_from: datetime, stopped_until: datetime) -> datetime:
        """Move a deadline later by the office days during which its clock stood still.

        Deadlines are counted in whole days, so the clock standing still from ``stopped_from``
        to ``stopped_until`` costs the office days d with local_date(from) < d <= local_date(until);
        a pause within one day moves nothing. The deadline then ends that many office days later.
        """
        lost = self.office_days_between(stopped_from, stopped_until)
        if lost <= 0:
            return deadline
        last_day = self.local_date(deadline - timedelta(microseconds=1))
        return self.end_of_day(self.add_office_days(last_day, lost))

    def before(self, anchor: date, duration: Duration) -> date:
        """Day that lies `duration` before `anchor`, e.g. for "6 Wochen vor Ablauf".

        Calendar-type units subtract days, weeks, months (same day number or
        month end) or years; office/working days count back such days.

        The result always is an office day. Unlike `due_date` it rolls BACK
        when needed: a reminder that is due "6 weeks before" must not appear
        later than that, so a Saturday becomes the Friday before.

        Args:
            anchor: The day counted back from (e.g. the permit's expiry).
            duration: How far to count back.

        Returns:
            The office day on or before the computed day.
        """
        unit = duration.unit
        if unit is DurationUnit.OFFICE_DAYS:
            return self._count_backward(self._office_ordinals, anchor, duration.amount)
        if unit is DurationUnit.WORKING_DAYS:
            day = self._count_backward(self._working_ordinals, anchor, duration.amount)
        else:
            day = _shift(anchor, duration, sign=-1)
        return self._count_backward(self._office_ordinals, day, 0)

    def office_days_between(self, start: datetime, end: datetime) -> int:
        """Number of office days d with local_date(start) < d <= local_date(end).

        Args:
            start: Time-zone-aware instant; its local day is not counted.
            end: Time-zone-aware instant; its local day is counted.

        Returns:
            The count; 0 if `end` is not after `start`.

        Raises:
            ValueError: If either instant is naive.
        """
        first = self.local_date(start)
        last = self.local_date(end)
        if last <= first:
            return 0
        first_ordinal, last_ordinal = first.toordinal(), last.toordinal()
        total = 0
        for year in range(first.year, last.year + 1):
            ordinals = self._office_ordinals(year)
            low = bisect_right(ordinals, first_ordinal) if year == first.year else 0
            high = bisect_right(ordinals, last_ordinal) if year == last.year else len(ordinals)
            total += high - low
        return total

    def add_office_days(self, day: date, n: int) -> date:
        """The n-th office day after `day`.

        Args:
            day: Day to count from; it is not counted itself.
            n: Number of office days. 0 gives `day` if it is an office day,
                else the next one; a negative n counts back instead.

        Returns:
            The office day reached.
        """
        if n < 0:
            return self._count_backward(self._office_ordinals, day, -n)
        return self._count_forward(self._office_ordinals, day, n)

    # -- internals -------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is None:
            cached = self._years[year] = self._build_year(year)
        return cached

    def _office_ordinals(self, year: int) -> tuple[int, ...]:
        return self._year(year).office_days

    def _working_ordinals(self, year: int) -> tuple[int, ...]:
        return self._year(year).working_days

    def _build_year(self, year: int) -> _Year:
        names = {
            day: str(name)
            for day, name in holidays.country_holidays("DE", subdiv=self._state, years=year, language="de").items()
        }
        holiday_set = frozenset(names)
        closing = {date(year, m, dom) for m, dom in self._recurring if _is_valid_day(year, m, dom)}
        closing.update(day for day in self._one_off if day.year == year)
        closed = holiday_set | closing
        first, after = date(year, 1, 1).toordinal(), date(year + 1, 1, 1).toordinal()
        office: list[int] = []
        working: list[int] = []
        for ordinal in range(first, after):
            day = date.fromordinal(ordinal)
            weekday = day.weekday()
            if weekday < _SUNDAY and day not in holiday_set:
                working.append(ordinal)
                if weekday < _SATURDAY and day not in closed:
                    office.append(ordinal)
        return _Year(names, holiday_set, closed, tuple(office), tuple(working))

    @staticmethod
    def _count_forward(ordinals_of: Callable[[int], tuple[int, ...]], day: date, n: int) -> date:
        """The n-th qualifying day after `day`; for n == 0, `day` or the next one."""
        year = day.year
        ordinals = ordinals_of(year)
        ordinal = day.toordinal()
        index = bisect_left(ordinals, ordinal) if n == 0 else bisect_right(ordinals, ordinal) + n - 1
        while index >= len(ordinals):  # spill into the following years
            index -= len(ordinals)
            year += 1
            ordinals = ordinals_of(year)
        return date.fromordinal(ordinals[index])

    @staticmethod
    def _count_backward(ordinals_of: Callable[[int], tuple[int, ...]], day: date, n: int) -> date:
        """The n-th qualifying day before `day`; for n == 0, `day` or the previous one."""
        year = day.year
        ordinals = ordinals_of(year)
        ordinal = day.toordinal()
        index = bisect_right(ordinals, ordinal) - 1 if n == 0 else bisect_left(ordinals, ordinal) - n
        while index < 0:  # spill into the preceding years
            year -= 1
            ordinals = ordinals_of(year)
            index += len(ordinals)
        return date.fromordinal(ordinals[index])


def _shift(day: date, duration: Duration, *, sign: int) -> date:
    """Move `day` by a calendar-type duration, clamping months to their last day."""
    amount = sign * duration.amount
    unit = duration.unit
    # Ordinal arithmetic: building a timedelta costs more than the whole rest of the shift.
    if unit is DurationUnit.CALENDAR_DAYS:
        return date.fromordinal(day.toordinal() + amount)
    if unit is DurationUnit.WEEKS:
        return date.fromordinal(day.toordinal() + 7 * amount)
    if unit is DurationUnit.MONTHS:
        months = amount
    elif unit is DurationUnit.YEARS:
        months = 12 * amount
    else:  # day counts are handled by the caller
        raise AssertionError(f"not a calendar-type unit: {unit}")  # pragma: no cover
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    month = month_index + 1
    return date(year, month, min(day.day, _days_in_month(year, month)))


def _days_in_month(year: int, month: int) -> int:
    # Not stdlib `calendar.monthrange`: this module is itself called
    # `calendar`, and running code from inside engine/ would make that import
    # resolve to this file. A table is also faster on the due_at hot path.
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def _is_valid_day(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)


def _parse_closing_days(
    closing_days: Iterable[str | date],
) -> tuple[frozenset[tuple[int, int]], frozenset[date]]:
    """Split closing days into recurring (month, day) pairs and one-off dates."""
    if isinstance(closing_days, str):
        # A lone "12-24" would otherwise be iterated character by character.
        raise TypeError("closing_days must be an iterable of days, not a single str")
    recurring: set[tuple[int, int]] = set()
    one_off: set[date] = set()
    for entry in closing_days:
        if isinstance(entry, datetime):
            # A datetime is a date subclass, but its day depends on a time zone.
            raise TypeError(f"closing day must be a date, not a datetime: {entry!r}")
        if isinstance(entry, date):
            one_off.add(entry)
        elif not isinstance(entry, str):
            raise TypeError(f"closing day must be a str or date, got {type(entry).__name__}")
        elif match := _RECURRING_CLOSING_DAY.fullmatch(entry):
            month, day = int(match["month"]), int(match["day"])
            # 2000 is a leap year, so "02-29" is accepted as a recurring day.
            if not _is_valid_day(2000, month, day):
                raise ValueError(_closing_day_error(entry))
            recurring.add((month, day))
        elif _ONE_OFF_CLOSING_DAY.fullmatch(entry):
            try:
                one_off.add(date.fromisoformat(entry))
            except ValueError as exc:
                raise ValueError(_closing_day_error(entry)) from exc
        else:
            raise ValueError(_closing_day_error(entry))
    return frozenset(recurring), frozenset(one_off)


def _closing_day_error(entry: str) -> str:
    return f"not a closing day: {entry!r}; write 'MM-DD' (e.g. '12-24') or 'YYYY-MM-DD'"
