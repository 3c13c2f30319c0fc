"""Business days and the promised delivery date.

The promise is: the order time, moved to the next business day when it falls
on or after the daily cut-off (or on a weekend or holiday), plus the handling
days, plus the carrier's transit days, all counted in business days of the
shop's calendar, in the shop's time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import Attribute, field, frozen

from orderkit.errors import InvalidSettings, MissingExtra

__all__ = ["BusinessCalendar", "DeliveryPromise"]

_MAX_SEARCH_DAYS = 3660  # ten years: a calendar with no business day ahead is a mistake


def _weekdays(_instance: object, attribute: Attribute[Any], value: frozenset[int]) -> None:
    if not all(isinstance(day, int) and 0 <= day <= 6 for day in value) or len(value) > 6:
        raise InvalidSettings(
            "must be weekday numbers 0 (Monday) to 6 (Sunday), leaving at least one working day",
            field=attribute.name,
            value=sorted(value),
        )


def _day_numbers(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


def _dates(value: Iterable[date]) -> frozenset[date]:
    return frozenset(value)


@frozen
class BusinessCalendar:
    """Which days are working days: not a weekend day, not a holiday."""

    weekend: frozenset[int] = field(
        default=frozenset({5, 6}), converter=_day_numbers, validator=_weekdays
    )
    holidays: frozenset[date] = field(default=frozenset(), converter=_dates)

    @classmethod
    def for_country(
        cls,
        country: str,
        years: Iterable[int],
        *,
        subdivision: str | None = None,
        weekend: Iterable[int] = (5, 6),
    ) -> BusinessCalendar:
        """A calendar with a country's public holidays from the ``holidays`` package.

        Needs the extra: ``pip install 'orderkit[holidays]'``. Raises
        :class:`InvalidSettings` for a country or subdivision the package does not know.
        """
        try:
            import holidays
        except ImportError:  # pragma: no cover - depends on the environment
            raise MissingExtra(
                "BusinessCalendar.for_country needs the holidays package: "
                "pip install 'orderkit[holidays]'"
            ) from None
        try:
            table = holidays.country_holidays(country, subdiv=subdivision, years=list(years))
        except NotImplementedError as error:
            raise InvalidSettings(str(error), field="country", value=country) from None
        return cls(weekend=_day_numbers(weekend), holidays=_dates(table.keys()))

    def with_holidays(self, days: Iterable[date]) -> BusinessCalendar:
        """A copy with ``days`` added as holidays (a shop's own closing days)."""
        return BusinessCalendar(self.weekend, self.holidays | _dates(days))

    def is_business_day(self, day: date) -> bool:
        """True when ``day`` is neither a weekend day nor a holiday."""
        return day.weekday() not in self.weekend and day not in self.holidays

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        for _ in range(_MAX_SEARCH_DAYS):
            day += timedelta(days=1)
            if self.is_business_day(day):
                return day
        raise InvalidSettings("no business day within ten years", field="holidays", value=day)

    def add_business_days(self, day: date, count: int) -> date:
        """The date ``count`` business days after ``day`` (``day`` itself for 0)."""
        for _ in range(count):
            day = self.next_business_day(day)
        return day


def _non_negative(_instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 365:
        raise InvalidSettings(
            "must be a whole number of days from 0 to 365", field=attribute.name, value=value
        )


def _zone(_instance: object, attribute: Attribute[Any], value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidSettings(
            "is not an IANA time zone name such as 'Europe/Berlin'",
            field=attribute.name,
            value=value,
        ) from None


@frozen
class DeliveryPromise:
    """How a shop computes the delivery date it promises at acknowledgement.

    ``handling_days`` business days to get an order out of the door (0 means
    same day if placed before ``cutoff``), ``transit_days`` business days for
    the carrier, ``cutoff`` the local time after which an order counts as
    placed the next business day, in ``timezone``.
    """

    handling_days: int = field(default=1, validator=_non_negative)
    transit_days: int = field(default=3, validator=_non_negative)
    cutoff: time = time(14, 0)
    timezone: str = field(default="UTC", validator=_zone)
    calendar: BusinessCalendar = field(factory=BusinessCalendar)

    def ship_date(self, placed_at: datetime) -> date:
        """The business day the order should leave the warehouse."""
        if placed_at.tzinfo is None:
            raise InvalidSettings(
                "must be timezone-aware", field="placed_at", value=placed_at.isoformat()
            )
        local = placed_at.astimezone(ZoneInfo(self.timezone))
        start = local.date()
        if not self.calendar.is_business_day(start) or local.time() >= self.cutoff:
            start = self.calendar.next_business_day(start)
        return self.calendar.add_business_days(start, self.handling_days)

    def promise(self, placed_at: datetime) -> date:
        """The promised delivery date for an order placed at ``placed_at`` (timezone-aware)."""
        return self.calendar.add_business_days(self.ship_date(placed_at), self.transit_days)
