"""Tests for :class:`BusinessCalendar` and :class:`DeliveryPromise`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderkit.domain.calendar import BusinessCalendar, DeliveryPromise
from orderkit.errors import InvalidSettings

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

MONDAY = date(2026, 3, 2)
TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)
THURSDAY = MONDAY + timedelta(days=3)
FRIDAY = MONDAY + timedelta(days=4)
SATURDAY = MONDAY + timedelta(days=5)
SUNDAY = MONDAY + timedelta(days=6)
NEXT_MONDAY = MONDAY + timedelta(days=7)


def at(day: date, hour: int, minute: int = 0, tz: timezone | ZoneInfo = UTC) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def test_reference_dates_are_what_the_tests_assume():
    assert [d.weekday() for d in (MONDAY, FRIDAY, SATURDAY, SUNDAY, NEXT_MONDAY)] == [
        0,
        4,
        5,
        6,
        0,
    ]


# --- BusinessCalendar ------------------------------------------------------------------------


def test_default_calendar_has_a_saturday_sunday_weekend_and_no_holidays():
    calendar = BusinessCalendar()
    assert calendar.weekend == frozenset({5, 6})
    assert calendar.holidays == frozenset()
    assert [calendar.is_business_day(MONDAY + timedelta(days=i)) for i in range(7)] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]


def test_next_business_day_is_strictly_after_and_skips_weekends():
    calendar = BusinessCalendar()
    assert calendar.next_business_day(MONDAY) == TUESDAY
    assert calendar.next_business_day(FRIDAY) == NEXT_MONDAY
    assert calendar.next_business_day(SATURDAY) == NEXT_MONDAY
    assert calendar.next_business_day(SUNDAY) == NEXT_MONDAY


def test_add_business_days():
    calendar = BusinessCalendar()
    assert calendar.add_business_days(MONDAY, 0) == MONDAY
    assert calendar.add_business_days(MONDAY, 4) == FRIDAY
    assert calendar.add_business_days(MONDAY, 5) == NEXT_MONDAY
    assert calendar.add_business_days(THURSDAY, 2) == NEXT_MONDAY
    assert calendar.add_business_days(SATURDAY, 1) == NEXT_MONDAY


def test_holidays_are_skipped():
    calendar = BusinessCalendar(holidays=[TUESDAY, NEXT_MONDAY])
    assert not calendar.is_business_day(TUESDAY)
    assert calendar.next_business_day(MONDAY) == WEDNESDAY
    assert calendar.next_business_day(FRIDAY) == NEXT_MONDAY + timedelta(days=1)
    assert calendar.add_business_days(MONDAY, 3) == FRIDAY


def test_with_holidays_returns_a_new_calendar():
    calendar = BusinessCalendar()
    closed = calendar.with_holidays([WEDNESDAY])
    assert not closed.is_business_day(WEDNESDAY)
    assert calendar.is_business_day(WEDNESDAY)
    assert closed.weekend == calendar.weekend
    both = closed.with_holidays([THURSDAY])
    assert both.holidays == frozenset({WEDNESDAY, THURSDAY})


def test_custom_weekend():
    calendar = BusinessCalendar(weekend=[4, 5])  # Friday and Saturday
    assert calendar.is_business_day(SUNDAY)
    assert not calendar.is_business_day(FRIDAY)
    assert calendar.next_business_day(THURSDAY) == SUNDAY
    assert BusinessCalendar(weekend=[]).is_business_day(SATURDAY)


def test_calendar_is_frozen():
    calendar = BusinessCalendar()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        calendar.weekend = frozenset()  # type: ignore[misc]
    assert calendar.weekend == frozenset({5, 6})


@pytest.mark.parametrize("weekend", [range(7), [0, 1, 2, 3, 4, 5, 6], [7], [-1], ["Sat"]])
def test_invalid_weekend(weekend):
    with pytest.raises(InvalidSettings) as excinfo:
        BusinessCalendar(weekend=weekend)
    assert excinfo.value.field == "weekend"


def test_for_country_germany_2026():
    calendar = BusinessCalendar.for_country("DE", years=[2026])
    christmas, boxing_day = date(2026, 12, 25), date(2026, 12, 26)
    assert christmas in calendar.holidays
    assert boxing_day in calendar.holidays
    assert date(2026, 1, 1) in calendar.holidays
    assert date(2026, 10, 3) in calendar.holidays  # German Unity Day
    assert not calendar.is_business_day(christmas)  # a Friday
    assert christmas.weekday() == 4
    assert calendar.is_business_day(date(2026, 12, 24))
    assert calendar.next_business_day(date(2026, 12, 24)) == date(2026, 12, 28)
    assert calendar.weekend == frozenset({5, 6})


def test_for_country_unknown_country():
    with pytest.raises(InvalidSettings) as excinfo:
        BusinessCalendar.for_country("XX", years=[2026])
    assert excinfo.value.field == "country"


# --- DeliveryPromise ---------------------------------------------------------------------------


def test_defaults():
    promise = DeliveryPromise()
    assert promise.handling_days == 1
    assert promise.transit_days == 3
    assert promise.cutoff == time(14, 0)
    assert promise.timezone == "UTC"


def test_before_and_at_the_cutoff():
    promise = DeliveryPromise(handling_days=1, transit_days=3, cutoff=time(14, 0))
    # 13:59 counts as Monday: ship Tuesday, deliver Friday
    assert promise.ship_date(at(MONDAY, 13, 59)) == TUESDAY
    assert promise.promise(at(MONDAY, 13, 59)) == FRIDAY
    # 14:00 counts as Tuesday: ship Wednesday, deliver (Thu, Fri,) Monday
    assert promise.ship_date(at(MONDAY, 14, 0)) == WEDNESDAY
    assert promise.promise(at(MONDAY, 14, 0)) == NEXT_MONDAY


def test_weekends_are_skipped_in_handling_and_transit():
    promise = DeliveryPromise(handling_days=1, transit_days=3)
    assert promise.ship_date(at(FRIDAY, 10)) == NEXT_MONDAY
    assert promise.promise(at(FRIDAY, 10)) == NEXT_MONDAY + timedelta(days=3)
    assert promise.promise(at(WEDNESDAY, 10)) == NEXT_MONDAY + timedelta(days=1)


def test_placed_on_a_saturday():
    promise = DeliveryPromise(handling_days=1, transit_days=3)
    # counts as placed Monday: ship Tuesday, deliver Friday
    assert promise.ship_date(at(SATURDAY, 10)) == NEXT_MONDAY + timedelta(days=1)
    assert promise.promise(at(SATURDAY, 10)) == NEXT_MONDAY + timedelta(days=4)
    # after the cut-off on a Saturday is still Monday, not Tuesday
    assert promise.promise(at(SATURDAY, 20)) == NEXT_MONDAY + timedelta(days=4)
    assert promise.promise(at(SUNDAY, 20)) == NEXT_MONDAY + timedelta(days=4)
    same_day = DeliveryPromise(handling_days=0, transit_days=0)
    assert same_day.ship_date(at(SATURDAY, 10)) == NEXT_MONDAY


def test_handling_days_zero_ships_the_same_day_before_the_cutoff():
    promise = DeliveryPromise(handling_days=0, transit_days=0)
    assert promise.ship_date(at(MONDAY, 9)) == MONDAY
    assert promise.promise(at(MONDAY, 9)) == MONDAY
    assert promise.ship_date(at(MONDAY, 15)) == TUESDAY
    assert DeliveryPromise(handling_days=0, transit_days=2).promise(at(MONDAY, 9)) == WEDNESDAY
    assert DeliveryPromise(handling_days=0, transit_days=1).promise(at(FRIDAY, 9)) == NEXT_MONDAY


def test_holidays_are_skipped_in_the_promise():
    calendar = BusinessCalendar(holidays=[TUESDAY, THURSDAY])
    promise = DeliveryPromise(handling_days=1, transit_days=1, calendar=calendar)
    assert promise.ship_date(at(MONDAY, 10)) == WEDNESDAY
    assert promise.promise(at(MONDAY, 10)) == FRIDAY
    # placed on a holiday: counts as the next business day
    assert promise.ship_date(at(TUESDAY, 10)) == FRIDAY


def test_order_at_2330_utc_is_the_next_day_in_berlin():
    placed = at(MONDAY, 23, 30)  # 00:30 on Tuesday in Berlin (CET, UTC+1)
    assert placed.astimezone(BERLIN).date() == TUESDAY
    late_cutoff = time(23, 59)
    in_utc = DeliveryPromise(handling_days=0, transit_days=0, cutoff=late_cutoff)
    in_berlin = DeliveryPromise(
        handling_days=0, transit_days=0, cutoff=late_cutoff, timezone="Europe/Berlin"
    )
    assert in_utc.ship_date(placed) == MONDAY
    assert in_berlin.ship_date(placed) == TUESDAY
    assert in_berlin.promise(placed) == TUESDAY
    # with the default cut-off, 00:30 Berlin is before 14:00: still Tuesday, not Wednesday
    default_berlin = DeliveryPromise(handling_days=1, transit_days=0, timezone="Europe/Berlin")
    assert default_berlin.promise(placed) == WEDNESDAY
    # Friday 23:30 UTC is Saturday in Berlin: counts as Monday
    assert in_berlin.ship_date(at(FRIDAY, 23, 30)) == NEXT_MONDAY
    assert in_utc.ship_date(at(FRIDAY, 23, 30)) == FRIDAY


def test_the_cutoff_is_read_in_the_shop_time_zone():
    berlin = DeliveryPromise(handling_days=0, transit_days=0, timezone="Europe/Berlin")
    # 13:30 UTC is 14:30 in Berlin: past the cut-off there
    assert berlin.ship_date(at(MONDAY, 13, 30)) == TUESDAY
    assert berlin.ship_date(at(MONDAY, 12, 59)) == MONDAY
    # the same instant given in another zone gives the same answer
    assert berlin.ship_date(at(MONDAY, 13, 30).astimezone(NEW_YORK)) == TUESDAY


def test_a_zone_behind_utc():
    placed = at(TUESDAY, 3)  # Monday 22:00 in New York (EST, UTC-5)
    new_york = DeliveryPromise(
        handling_days=0, transit_days=0, cutoff=time(23, 0), timezone="America/New_York"
    )
    assert new_york.ship_date(placed) == MONDAY
    # in UTC the same instant is Tuesday 03:00, before the cut-off
    assert DeliveryPromise(handling_days=0, transit_days=0).ship_date(placed) == TUESDAY


def test_promise_skips_german_christmas():
    calendar = BusinessCalendar.for_country("DE", years=[2026])
    promise = DeliveryPromise(
        handling_days=1, transit_days=3, timezone="Europe/Berlin", calendar=calendar
    )
    # Wednesday 23 Dec: ship Thu 24; transit skips Fri 25 (holiday), Sat 26, Sun 27
    assert promise.ship_date(at(date(2026, 12, 23), 10, tz=BERLIN)) == date(2026, 12, 24)
    assert promise.promise(at(date(2026, 12, 23), 10, tz=BERLIN)) == date(2026, 12, 30)
    # Thursday 24 Dec: handling skips 25, 26, 27 and ships Monday 28
    assert promise.ship_date(at(date(2026, 12, 24), 10, tz=BERLIN)) == date(2026, 12, 28)
    assert promise.promise(at(date(2026, 12, 24), 10, tz=BERLIN)) == date(2026, 12, 31)
    # placed on Christmas Day itself: counts as Monday 28, ships Tuesday 29
    assert promise.ship_date(at(date(2026, 12, 25), 10, tz=BERLIN)) == date(2026, 12, 29)
    # without the holidays the same order would ship on Friday 25
    plain = attrs.evolve(promise, calendar=BusinessCalendar())
    assert plain.ship_date(at(date(2026, 12, 24), 10, tz=BERLIN)) == date(2026, 12, 25)


@pytest.mark.parametrize("zone", ["Nope/Zone", "", "Europe/Berlinn", "../etc/passwd", None, 1])
def test_invalid_timezone(zone):
    with pytest.raises(InvalidSettings) as excinfo:
        DeliveryPromise(timezone=zone)
    assert excinfo.value.field == "timezone"


@pytest.mark.parametrize("name", ["handling_days", "transit_days"])
@pytest.mark.parametrize("value", [-1, 366, 1.5, True, "2", None])
def test_invalid_day_counts(name, value):
    with pytest.raises(InvalidSettings) as excinfo:
        DeliveryPromise(**{name: value})
    assert excinfo.value.field == name


@pytest.mark.parametrize("name", ["handling_days", "transit_days"])
@pytest.mark.parametrize("value", [0, 365])
def test_day_count_bounds_are_accepted(name, value):
    assert getattr(DeliveryPromise(**{name: value}), name) == value


def test_naive_datetime_is_refused():
    promise = DeliveryPromise()
    naive = datetime(2026, 3, 2, 10, 0)
    with pytest.raises(InvalidSettings) as excinfo:
        promise.promise(naive)
    assert excinfo.value.field == "placed_at"
    with pytest.raises(InvalidSettings):
        promise.ship_date(naive)


# --- property ----------------------------------------------------------------------------------

_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati"]
_HOLIDAY_POOL = [date(2026, 1, 1) + timedelta(days=i) for i in range(0, 400, 3)]


@st.composite
def promises(draw: st.DrawFn) -> DeliveryPromise:
    weekend = draw(st.frozensets(st.integers(min_value=0, max_value=6), max_size=3))
    holidays = draw(st.frozensets(st.sampled_from(_HOLIDAY_POOL), max_size=40))
    return DeliveryPromise(
        handling_days=draw(st.integers(min_value=0, max_value=5)),
        transit_days=draw(st.integers(min_value=0, max_value=10)),
        cutoff=draw(st.times()),
        timezone=draw(st.sampled_from(_ZONES)),
        calendar=BusinessCalendar(weekend=weekend, holidays=holidays),
    )


def _business_days_between(calendar: BusinessCalendar, start: date, end: date) -> int:
    """Business days in the half-open interval (start, end]."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += calendar.is_business_day(day)
    return count


@settings(max_examples=150, deadline=None)
@given(
    promise=promises(),
    placed_at=st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2026, 12, 31),
        timezones=st.sampled_from([UTC, BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata")]),
    ),
)
def test_promise_is_a_business_day_far_enough_ahead(promise, placed_at):
    calendar = promise.calendar
    local = placed_at.astimezone(ZoneInfo(promise.timezone))
    promised = promise.promise(placed_at)
    shipped = promise.ship_date(placed_at)
    assert calendar.is_business_day(promised)
    assert calendar.is_business_day(shipped)
    assert local.date() <= shipped <= promised
    needed = promise.handling_days + promise.transit_days
    counted = _business_days_between(calendar, local.date(), promised)
    assert counted >= needed
    # exactly one extra business day when the order counts as placed the next business day
    starts_today = calendar.is_business_day(local.date()) and local.time() < promise.cutoff
    assert counted == needed + (0 if starts_today else 1)
    assert _business_days_between(calendar, shipped, promised) == promise.transit_days
