"""Unit tests for engine.durations: parsing, validation and rendering."""

from __future__ import annotations

import re

import pytest

from engine.durations import DURATION_EXAMPLES, Duration, DurationUnit, parse_duration

OFFICE = DurationUnit.OFFICE_DAYS
WORKING = DurationUnit.WORKING_DAYS
CALENDAR = DurationUnit.CALENDAR_DAYS
WEEKS = DurationUnit.WEEKS
MONTHS = DurationUnit.MONTHS
YEARS = DurationUnit.YEARS


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        # German, singular and plural
        ("1 Arbeitstag", 1, OFFICE),
        ("10 Arbeitstage", 10, OFFICE),
        ("1 Werktag", 1, WORKING),
        ("3 Werktage", 3, WORKING),
        ("1 Kalendertag", 1, CALENDAR),
        ("14 Kalendertage", 14, CALENDAR),
        ("1 Tag", 1, CALENDAR),
        ("4 Tage", 4, CALENDAR),
        ("1 Woche", 1, WEEKS),
        ("6 Wochen", 6, WEEKS),
        ("1 Monat", 1, MONTHS),
        ("3 Monate", 3, MONTHS),
        ("1 Jahr", 1, YEARS),
        ("2 Jahre", 2, YEARS),
        # English; "working days" means Mon–Fri in English
        ("1 office day", 1, OFFICE),
        ("10 office days", 10, OFFICE),
        ("5 business days", 5, OFFICE),
        ("1 business day", 1, OFFICE),
        ("5 working days", 5, OFFICE),
        ("1 working day", 1, OFFICE),
        ("1 calendar day", 1, CALENDAR),
        ("14 calendar days", 14, CALENDAR),
        ("1 day", 1, CALENDAR),
        ("30 days", 30, CALENDAR),
        ("1 week", 1, WEEKS),
        ("2 weeks", 2, WEEKS),
        ("1 month", 1, MONTHS),
        ("6 months", 6, MONTHS),
        ("1 year", 1, YEARS),
        ("5 years", 5, YEARS),
        # case, whitespace, zero, leading zeros
        ("10 ARBEITSTAGE", 10, OFFICE),
        ("10 arbeitstage", 10, OFFICE),
        ("  6 Wochen\n", 6, WEEKS),
        ("10Arbeitstage", 10, OFFICE),
        ("10 Office  Days", 10, OFFICE),
        ("0 Arbeitstage", 0, OFFICE),
        ("07 Tage", 7, CALENDAR),
        # ISO 8601 date durations
        ("P10D", 10, CALENDAR),
        ("P0D", 0, CALENDAR),
        ("P2W", 2, WEEKS),
        ("P1W3D", 10, CALENDAR),
        ("P3M", 3, MONTHS),
        ("P1Y", 1, YEARS),
        ("P1Y6M", 18, MONTHS),
        ("P2Y0M", 24, MONTHS),
        ("p10d", 10, CALENDAR),
        (" P10D ", 10, CALENDAR),
    ],
)
def test_parse_duration_accepts_documented_spellings(text: str, amount: int, unit: DurationUnit) -> None:
    assert parse_duration(text) == Duration(amount, unit)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "10",
        "Arbeitstage",
        "10 Tagen",  # dative: prose, not a unit
        "1 Monaten",
        "zehn Arbeitstage",
        "-3 Tage",
        "+3 Tage",
        "1.5 Monate",
        "10 Arbeitstage 2 Tage",
        "10 Arbeitstage.",
        "10 hours",
        "10 weekdays",
        "10 Werktagen",
        "١٠ Tage",  # Arabic-Indic digits
        "P",
        "PT5H",
        "P1DT5H",
        "P1M15D",  # months mixed with days
        "P1Y2W",
        "P1.5D",
        "10D",
        "P10",
        "99999 Jahre",  # out of range
        "P40000D",
    ],
)
def test_parse_duration_rejects_anything_else_and_quotes_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration") as excinfo:
        parse_duration(text)
    message = str(excinfo.value)
    assert repr(text) in message
    assert all(repr(example) in message for example in DURATION_EXAMPLES)


def test_rejection_message_matches_the_documented_wording() -> None:
    expected = "not a duration: '10 Tagen'; write e.g. '10 Arbeitstage', '6 Wochen', '3 Monate' or ISO 8601 'P10D'"
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_duration("10 Tagen")


def test_mixing_iso_months_and_days_says_why() -> None:
    with pytest.raises(ValueError, match=re.escape("cannot be combined with weeks/days")):
        parse_duration("P1M15D")


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_duration(10)  # type: ignore[arg-type]


@pytest.mark.parametrize("example", DURATION_EXAMPLES)
def test_every_example_in_the_error_message_parses(example: str) -> None:
    assert isinstance(parse_duration(example), Duration)


@pytest.mark.parametrize(
    ("duration", "german", "english"),
    [
        (Duration(10, OFFICE), "10 Arbeitstage", "10 office days"),
        (Duration(1, OFFICE), "1 Arbeitstag", "1 office day"),
        (Duration(0, OFFICE), "0 Arbeitstage", "0 office days"),
        (Duration(3, WORKING), "3 Werktage", "3 working days (Mon–Sat)"),
        (Duration(1, WORKING), "1 Werktag", "1 working day (Mon–Sat)"),
        (Duration(14, CALENDAR), "14 Kalendertage", "14 calendar days"),
        (Duration(1, CALENDAR), "1 Kalendertag", "1 calendar day"),
        (Duration(6, WEEKS), "6 Wochen", "6 weeks"),
        (Duration(1, WEEKS), "1 Woche", "1 week"),
        (Duration(3, MONTHS), "3 Monate", "3 months"),
        (Duration(1, MONTHS), "1 Monat", "1 month"),
        (Duration(2, YEARS), "2 Jahre", "2 years"),
        (Duration(1, YEARS), "1 Jahr", "1 year"),
    ],
)
def test_renders_german_and_english_with_singulars(duration: Duration, german: str, english: str) -> None:
    assert duration.german() == german
    assert duration.english() == english


@pytest.mark.parametrize("unit", list(DurationUnit))
@pytest.mark.parametrize("amount", [0, 1, 2, 12])
def test_german_rendering_parses_back_to_the_same_duration(unit: DurationUnit, amount: int) -> None:
    duration = Duration(amount, unit)
    assert parse_duration(duration.german()) == duration


@pytest.mark.parametrize("unit", [unit for unit in DurationUnit if unit is not WORKING])
def test_english_rendering_parses_back_except_for_werktage(unit: DurationUnit) -> None:
    duration = Duration(5, unit)
    assert parse_duration(duration.english()) == duration


@pytest.mark.parametrize(
    ("unit", "expected"),
    [(OFFICE, True), (WORKING, True), (CALENDAR, False), (WEEKS, False), (MONTHS, False), (YEARS, False)],
)
def test_is_day_count_only_for_office_and_working_days(unit: DurationUnit, expected: bool) -> None:
    assert Duration(3, unit).is_day_count is expected


def test_duration_rejects_a_negative_amount() -> None:
    with pytest.raises(ValueError, match="must be >= 0, got -1"):
        Duration(-1, OFFICE)


def test_duration_rejects_an_amount_longer_than_a_century() -> None:
    with pytest.raises(ValueError, match="duration too long"):
        Duration(101, YEARS)


@pytest.mark.parametrize(
    ("amount", "unit"),
    [(True, OFFICE), (1.0, OFFICE), ("1", OFFICE), (1, "office_days")],
)
def test_duration_rejects_wrong_types(amount: object, unit: object) -> None:
    with pytest.raises(TypeError, match="Duration"):
        Duration(amount, unit)  # type: ignore[arg-type]


def test_duration_unit_values_are_the_yaml_spellings() -> None:
    assert [unit.value for unit in DurationUnit] == [
        "office_days",
        "working_days",
        "calendar_days",
        "weeks",
        "months",
        "years",
    ]
