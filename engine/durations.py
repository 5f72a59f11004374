"""Durations as process authors write them: parsing, validation and rendering.

This module owns the `Duration` value (an amount plus a `DurationUnit`), the
text forms accepted in process definitions (German, English and ISO 8601 date
durations) and their German and English rendering. It knows nothing about
calendars, holidays or time zones; turning a duration into a due date is the
job of `engine.calendar`. Standard library only.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["DURATION_EXAMPLES", "Duration", "DurationUnit", "parse_duration"]


class DurationUnit(enum.StrEnum):
    """The unit a duration is counted in.

    The three kinds of "day" follow primer §6.3 and must never be conflated:
    office days exclude the municipality's closing days, working days (the
    legal "Werktage") include Saturdays, calendar days include everything.
    """

    OFFICE_DAYS = "office_days"  # Arbeitstage: Mon–Fri, minus public holidays and closing days
    WORKING_DAYS = "working_days"  # Werktage: Mon–Sat, minus public holidays
    CALENDAR_DAYS = "calendar_days"  # Kalendertage / Tage
    WEEKS = "weeks"
    MONTHS = "months"
    YEARS = "years"


# (singular, plural) per unit. German day units name their kind explicitly
# ("Kalendertage", not "Tage") so a rendered duration is never ambiguous.
_GERMAN_WORDS: dict[DurationUnit, tuple[str, str]] = {
    DurationUnit.OFFICE_DAYS: ("Arbeitstag", "Arbeitstage"),
    DurationUnit.WORKING_DAYS: ("Werktag", "Werktage"),
    DurationUnit.CALENDAR_DAYS: ("Kalendertag", "Kalendertage"),
    DurationUnit.WEEKS: ("Woche", "Wochen"),
    DurationUnit.MONTHS: ("Monat", "Monate"),
    DurationUnit.YEARS: ("Jahr", "Jahre"),
}

# In everyday English "working days" means Mon–Fri, which is what we call
# office days, so the legal Mon–Sat unit carries an explicit qualifier.
_ENGLISH_WORDS: dict[DurationUnit, tuple[str, str]] = {
    DurationUnit.OFFICE_DAYS: ("office day", "office days"),
    DurationUnit.WORKING_DAYS: ("working day (Mon–Sat)", "working days (Mon–Sat)"),
    DurationUnit.CALENDAR_DAYS: ("calendar day", "calendar days"),
    DurationUnit.WEEKS: ("week", "weeks"),
    DurationUnit.MONTHS: ("month", "months"),
    DurationUnit.YEARS: ("year", "years"),
}

# Upper bound per unit, about a century. Larger amounts are almost certainly
# typos, and rejecting them when the definition is loaded is better than an
# OverflowError (or a scan over thousands of holiday years) on a case advance.
_MAX_AMOUNT: dict[DurationUnit, int] = {
    DurationUnit.OFFICE_DAYS: 25_000,
    DurationUnit.WORKING_DAYS: 30_000,
    DurationUnit.CALENDAR_DAYS: 36_500,
    DurationUnit.WEEKS: 5_200,
    DurationUnit.MONTHS: 1_200,
    DurationUnit.YEARS: 100,
}

_DAY_COUNT_UNITS = frozenset({DurationUnit.OFFICE_DAYS, DurationUnit.WORKING_DAYS})


@dataclass(frozen=True, slots=True)
class Duration:
    """A non-negative amount of one `DurationUnit`.

    Attributes:
        amount: How many units; 0 is allowed (e.g. "due the same office day").
        unit: What is counted.

    Raises:
        TypeError: If `amount` is not an int or `unit` is not a `DurationUnit`.
        ValueError: If `amount` is negative or longer than about a century.
    """

    amount: int
    unit: DurationUnit

    def __post_init__(self) -> None:
        # bool is an int subclass; Duration(True, ...) is a bug, not "1".
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Duration.amount must be an int, got {self.amount!r}")
        if not isinstance(self.unit, DurationUnit):
            raise TypeError(f"Duration.unit must be a DurationUnit, got {self.unit!r}")
        if self.amount < 0:
            raise ValueError(f"Duration.amount must be >= 0, got {self.amount}")
        limit = _MAX_AMOUNT[self.unit]
        if self.amount > limit:
            raise ValueError(f"duration too long: {self.amount} {self.unit} (at most {limit})")

    @property
    def is_day_count(self) -> bool:
        """Whether the duration counts qualifying days (office or working days)."""
        return self.unit in _DAY_COUNT_UNITS

    def german(self) -> str:
        """Render for German-speaking users.

        Returns:
            Text such as "10 Arbeitstage", "1 Monat" or "14 Kalendertage";
            `parse_duration` accepts it back.
        """
        singular, plural = _GERMAN_WORDS[self.unit]
        return f"{self.amount} {singular if self.amount == 1 else plural}"

    def english(self) -> str:
        """Render for English-speaking users.

        Returns:
            Text such as "10 office days", "1 month" or "2 working days (Mon–Sat)".
        """
        singular, plural = _ENGLISH_WORDS[self.unit]
        return f"{self.amount} {singular if self.amount == 1 else plural}"


DURATION_EXAMPLES: tuple[str, ...] = ("10 Arbeitstage", "6 Wochen", "3 Monate", "P10D")
"""Spellings quoted in error messages; every one of them parses."""

_HINT = (
    "write e.g. "
    + ", ".join(repr(example) for example in DURATION_EXAMPLES[:-1])
    + f" or ISO 8601 {DURATION_EXAMPLES[-1]!r}"
)

# One number, then one unit word. Each named group is a DurationUnit value, so
# `match.lastgroup` names the unit. ASCII mode keeps `[0-9]`/`\s` from
# accepting other scripts' digits or exotic spaces. Dative forms such as
# "Tagen" are deliberately absent: "innerhalb von 10 Tagen" is prose, and the
# author should say which kind of day is meant.
_TEXT_PATTERN = re.compile(
    r"(?P<amount>[0-9]+)\s*(?:"
    r"(?P<office_days>arbeitstage?|(?:office|business|working)\s+days?)"
    r"|(?P<working_days>werktage?)"
    r"|(?P<calendar_days>kalendertage?|tage?|(?:calendar\s+)?days?)"
    r"|(?P<weeks>wochen?|weeks?)"
    r"|(?P<months>monate?|months?)"
    r"|(?P<years>jahre?|years?)"
    r")",
    re.IGNORECASE | re.ASCII,
)

# ISO 8601 date part only; time parts (PT5H) are meaningless for due dates.
_ISO_PATTERN = re.compile(
    r"P(?:(?P<years>[0-9]+)Y)?(?:(?P<months>[0-9]+)M)?(?:(?P<weeks>[0-9]+)W)?(?:(?P<days>[0-9]+)D)?",
    re.IGNORECASE | re.ASCII,
)


def parse_duration(text: str) -> Duration:
    """Parse a duration as written in a process definition.

    Accepted (case-insensitive, surrounding whitespace ignored):

    * German: "10 Arbeitstage", "1 Werktag", "14 Kalendertage", "3 Tage",
      "6 Wochen", "1 Monat", "2 Jahre" (singular or plural).
    * English: "10 office days" (also "business days" and "working days",
      which in English mean Mon–Fri), "5 calendar days", "5 days", "2 weeks",
      "3 months", "1 year". The Mon–Sat unit is only reachable in German
      ("Werktage") because that is the only unambiguous spelling.
    * ISO 8601 date durations: "P10D", "P2W", "P1W3D" (10 calendar days),
      "P3M", "P1Y", "P1Y6M" (18 months). Years/months may not be combined
      with weeks/days, since "P1M15D" has no single counting rule.

    Args:
        text: The duration text.

    Returns:
        The parsed duration.

    Raises:
        TypeError: If `text` is not a string.
        ValueError: If `text` is not a duration; the message quotes the text
            and lists accepted examples.
    """
    if not isinstance(text, str):
        raise TypeError(f"duration text must be a str, got {type(text).__name__}")
    stripped = text.strip()
    if match := _TEXT_PATTERN.fullmatch(stripped):
        unit = DurationUnit(match.lastgroup)
        return _checked_duration(int(match["amount"]), unit, text)
    if match := _ISO_PATTERN.fullmatch(stripped):
        return _iso_duration(match, text)
    raise ValueError(f"not a duration: {text!r}; {_HINT}")


def _iso_duration(match: re.Match[str], text: str) -> Duration:
    """Map the groups of an ISO 8601 match onto a single unit."""
    years, months, weeks, days = (
        None if value is None else int(value) for value in match.group("years", "months", "weeks", "days")
    )
    has_month_part = years is not None or months is not None
    has_day_part = weeks is not None or days is not None
    if has_month_part and has_day_part:
        raise ValueError(
            f"not a duration: {text!r} (ISO 8601 years/months cannot be combined with weeks/days); {_HINT}"
        )
    if years is not None and months is None:
        return _checked_duration(years, DurationUnit.YEARS, text)
    if has_month_part:
        return _checked_duration(12 * (years or 0) + (months or 0), DurationUnit.MONTHS, text)
    if weeks is not None and days is None:
        return _checked_duration(weeks, DurationUnit.WEEKS, text)
    if has_day_part:
        return _checked_duration(7 * (weeks or 0) + (days or 0), DurationUnit.CALENDAR_DAYS, text)
    raise ValueError(f"not a duration: {text!r}; {_HINT}")  # bare "P"


def _checked_duration(amount: int, unit: DurationUnit, text: str) -> Duration:
    """Build a Duration, re-raising range errors with the author's text quoted."""
    try:
        return Duration(amount, unit)
    except ValueError as exc:
        raise ValueError(f"not a duration: {text!r} ({exc}); {_HINT}") from exc
